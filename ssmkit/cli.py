"""The command line: ``ssmkit train [key=value ...] | train --resume RUN_DIR | eval RUN_DIR | layers | datasets``.

Thin: parse, then call the library.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ssmkit", description="Structured state space sequence models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train a model (default: S4D on sequential digits, ~1 min on a CPU)")
    p_train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. layer=s4 lr=3e-3")
    p_train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    p_eval = sub.add_parser("eval", help="evaluate a run's checkpoint")
    p_eval.add_argument("run_dir")
    p_eval.add_argument("--split", default="test", choices=["train", "val", "test"])
    p_eval.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p_eval.add_argument("--device", default="auto")
    sub.add_parser("layers", help="list the registered layers")
    sub.add_parser("datasets", help="list the registered datasets")
    args = parser.parse_args(argv)

    from . import data, layers, train as training  # after parsing, so that --help is instant

    try:
        if args.command == "train":
            if args.resume and args.overrides:
                raise ValueError("--resume continues a run with its saved config; it takes no key=value overrides")
            config = None if args.resume else training.make_config(args.overrides)
            training.train(config, resume=args.resume)
        elif args.command == "eval":
            m = training.evaluate_run(args.run_dir, args.split, args.checkpoint, args.device)
            print(f"{args.split}: accuracy {m['acc']:.2%}, loss {m['loss']:.4f}")
        elif args.command == "layers":
            for name, cls in sorted(layers.LAYERS.items()):
                print(f"{name:8} {cls.__name__}: {(cls.__doc__ or '').strip().splitlines()[0]}")
        elif args.command == "datasets":
            for name, builder in sorted(data.DATASETS.items()):
                print(f"{name:8} {builder.summary}")
    except (ValueError, FileNotFoundError) as e:
        print(f"ssmkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
