"""The command line: ``ssmkit train [EXPERIMENT] [key=value ...] | train --resume RUN_DIR | eval RUN_DIR |
generate RUN_DIR | impute RUN_DIR | plot RUN_DIR | data listops|pathfinder|spoken-digits OUT_DIR | layers | datasets |
experiments``.

Thin: parse, then call the library.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `ssmkit layers | head` ends quietly, like other command-line tools
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = argparse.ArgumentParser(prog="ssmkit", description="Structured state space sequence models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train a model (default: S4D on sequential digits, ~20 s on a CPU)")
    p_train.add_argument("overrides", nargs="*", metavar="[EXPERIMENT] key=value",
                         help="an experiment (shipped name or YAML path), then config overrides, e.g. layer=s4 lr=3e-3")
    p_train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    p_eval = sub.add_parser("eval", help="evaluate a run's checkpoint")
    p_eval.add_argument("run_dir", help="a run directory written by `ssmkit train`")
    p_eval.add_argument("--split", default="test", choices=["train", "val", "test"], help="the split to score")
    p_eval.add_argument("--checkpoint", default="best", choices=["best", "last"],
                        help="the best validation checkpoint, or the last one written")
    p_eval.add_argument("--device", default="auto", help="auto (a GPU if there is one), cpu, cuda or cuda:N")
    p_eval.add_argument("--rate", type=float, default=1.0,
                        help="sample the SSM kernels at rate·Δ: 2 evaluates a model trained at 16 kHz on 8 kHz audio")
    p_eval.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="dataset_options",
                        help="dataset options replacing the run's, e.g. --set sample_rate=8000, or --set data_dir=DIR "
                             "where the run's data now is")
    p_eval.add_argument("--subset", type=int, default=None, metavar="N",
                        help="score a seeded subset of N samples (default: the run's train_subset / eval_subset, "
                             "as in its results.json; 0: the whole split)")
    p_gen = sub.add_parser("generate", help="sample from a run's per-step (language) model in recurrent mode")
    p_gen.add_argument("run_dir", metavar="MODEL", help="a run directory, a folder with config.json and "
                                                        "model.safetensors, or a Hub id owner/name")
    p_gen.add_argument("--prompt", default=None, help="text to continue (bytes for byte-level models; default a "
                                                    "newline); audio models start from silence and take none")
    p_gen.add_argument("--length", type=int, default=200, help="tokens to generate")
    p_gen.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    p_gen.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    p_gen.add_argument("--top-p", type=float, default=1.0, help="sample among the most likely tokens of mass p")
    p_gen.add_argument("--repetition-penalty", type=float, default=1.0,
                       help="divide a seen token's positive logit by this (multiply a negative one)")
    p_gen.add_argument("--eos", default=None, help="a character (byte) that ends a sample")
    p_gen.add_argument("--no-graph", action="store_true",
                       help="step in a plain Python loop instead of replaying a CUDA graph (for debugging)")
    p_gen.add_argument("--batch", type=int, default=1, help="samples generated together")
    p_gen.add_argument("--seed", type=int, default=0)
    p_gen.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p_gen.add_argument("--device", default="auto")
    p_gen.add_argument("--out", metavar="DIR", help="write the samples there: WAV files for audio models (required), "
                                                   "ranked by likelihood; text files otherwise")
    p_gen.add_argument("--sample-rate", type=int, default=None, metavar="HZ",
                       help="for a model folder or Hub id (which carry no dataset): an audio model at this rate "
                            "(WAV files); a run directory knows its own")
    p_imp = sub.add_parser("impute", help="fill in the missing values of a series (CSV) with a trained SSSD run")
    p_imp.add_argument("run_dir")
    p_imp.add_argument("--input", required=True, metavar="CSV", help="the series: a row per step, a column per "
                                                                     "channel, optional header; missing cells may be "
                                                                     "empty")
    p_imp.add_argument("--mask", required=True, metavar="CSV", help="the same shape: 1 observed, 0 missing")
    p_imp.add_argument("--samples", type=int, default=10, help="imputations drawn (median and 5-95 %% band)")
    p_imp.add_argument("--out", metavar="DIR", help="where to write median.csv, low.csv, high.csv, imputation.png "
                                                    "(default RUN_DIR/imputation)")
    p_imp.add_argument("--seed", type=int, default=0)
    p_imp.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p_imp.add_argument("--device", default="auto")
    p_plot = sub.add_parser("plot", help="training curves and learned kernels of a run, as PNG (needs matplotlib)")
    p_plot.add_argument("run_dir")
    p_data = sub.add_parser("data", help="generate a dataset's files in its release's format: listops OUT_DIR | "
                                         "pathfinder OUT_DIR (LRA) | spoken-digits OUT_DIR (SC09; espeak-ng, sox) | "
                                         "music OUT_DIR (Beethoven/YouTubeMix layout; music21, fluidsynth)")
    p_data.add_argument("name", choices=["listops", "pathfinder", "spoken-digits", "music"])
    p_data.add_argument("out_dir")
    p_data.add_argument("--size", choices=["small", "lra"], default=None,
                        help="listops small (default): 5000/500/500 expressions of 50-300 tokens; lra: the "
                             "release's 96000/2000/2000 of 500-2000 tokens. pathfinder small: 4000 images; lra: "
                             "200000")
    p_data.add_argument("--resolution", type=int, default=None, help="pathfinder: 32 (default), 64, 128 (Path-X) or "
                                                                     "256")
    p_data.add_argument("--level", default=None, help="pathfinder: easy, intermediate or hard (LRA's; the default)")
    p_data.add_argument("--images", type=int, default=None, help="pathfinder: how many images (instead of --size)")
    p_data.add_argument("--workers", type=int, default=None, help="pathfinder: processes writing folders (1)")
    p_data.add_argument("--speakers", type=int, default=None, help="spoken-digits: voices, each saying zero … nine "
                                                                    "once (default 200: 2000 clips, 64 MB)")
    p_data.add_argument("--composer", default=None, help="music: whose scores in music21's corpus (bach, the "
                                                           "default: ~430 chorales; beethoven, mozart, haydn: string "
                                                           "quartets)")
    p_data.add_argument("--pieces", type=int, default=None, help="music: how many scores (default: all of them)")
    p_data.add_argument("--instrument", default=None, help="music: the General MIDI program playing every part "
                                                            "(default 0: piano), or 'score' for the score's own "
                                                            "instruments")
    p_data.add_argument("--seed", type=int, default=0)
    sub.add_parser("layers", help="list the registered layers")
    sub.add_parser("datasets", help="list the registered datasets")
    sub.add_parser("experiments", help="list the shipped experiments")
    args = parser.parse_args(argv)
    import warnings  # a warning is one line here, as an error is
    warnings.formatwarning = lambda message, category, *_: f"ssmkit {args.command}: {category.__name__}: {message}\n"

    from . import data, layers, train as training  # after parsing, so that --help is instant

    try:
        if args.command == "data":
            _data_options(args)
        if args.command == "train":
            if args.resume and args.overrides:
                raise ValueError("--resume continues a run with its saved config; it takes no key=value overrides")
            words = args.overrides
            named = bool(words) and "=" not in words[0]
            experiment = words[0] if named else "digits"  # the embedded default
            config = None if args.resume else training.make_config(
                words[1:] if named else words, training.load_experiment(experiment), source=f"experiment {experiment}")
            training.train(config, resume=args.resume)
        elif args.command == "eval":
            from .train.config import parse_assignments
            options = dict(parse_assignments(args.dataset_options, "dataset option"))
            m = training.evaluate_run(args.run_dir, args.split, args.checkpoint, args.device, args.rate, options,
                                      args.subset)
            shown = (f"accuracy {m['acc']:.2%}" if "acc" in m else f"rmse {m['rmse']:.4f}" if "rmse" in m else
                     f"mse {m['mse']:.4f}" if "mse" in m else f"NLL {m['bits']:.4f} bits per sample")
            print(f"{args.split}: {shown}, loss {m['loss']:.4f} ({m['samples']} samples)")
        elif args.command == "layers":
            for name, cls in sorted(layers.LAYERS.items()):
                print(f"{name:10} ssmkit.{cls.__name__:18} {_summary(cls.__doc__)}")
            print(f"{'(N-D)':10} ssmkit.{'S4ND':18} {_summary(layers.S4ND.__doc__)} (model=s4nd in the trainer)")
        elif args.command == "data" and args.name == "listops":
            from .data.listops import write_listops
            sizes = {"small": dict(n_train=5000, n_val=500, n_test=500, min_length=50, max_length=300),
                     "lra": dict(n_train=96000, n_val=2000, n_test=2000, min_length=500, max_length=2000)}
            n = sum(v for k, v in sizes[args.size].items() if k.startswith("n_"))
            print(f"generating {n:,} ListOps expressions into {args.out_dir} ...", flush=True)
            print(write_listops(args.out_dir, seed=args.seed, **sizes[args.size]))
        elif args.command == "data" and args.name == "spoken-digits":
            from .data.spoken_digits import write_spoken_digits
            print(write_spoken_digits(args.out_dir, args.speakers, args.seed))
        elif args.command == "data" and args.name == "music":
            from .data.music_render import write_music
            if args.instrument != "score" and not args.instrument.isdigit():
                raise ValueError(f"--instrument: expected a General MIDI program 0-127 or 'score', got "
                                 f"{args.instrument!r}")
            instrument = args.instrument if args.instrument == "score" else int(args.instrument)
            print(write_music(args.out_dir, args.composer, args.pieces, instrument))
        elif args.command == "data":
            from .data.pathfinder_gen import write_pathfinder
            n_images = {"small": 4000, "lra": 200_000}[args.size] if args.images is None else args.images
            print(write_pathfinder(args.out_dir, n_images, args.resolution, args.level, args.seed,
                                   workers=args.workers))
        elif args.command == "plot":
            from .train.plots import plot_run
            for path in plot_run(args.run_dir):
                print(path)
        elif args.command == "generate":
            _generate(args, training)
        elif args.command == "impute":
            from .train.distributed import setup
            from .train.imputing import impute_files
            for path in impute_files(args.run_dir, args.input, args.mask, args.samples, args.out, args.seed,
                                     args.checkpoint, setup(args.device)[2]):
                print(path)
        elif args.command == "experiments":
            names = training.experiment_names()
            width = max(map(len, names))
            for name in names:
                config = training.make_config([], training.load_experiment(name), source=f"experiment {name}")
                print(f"{name:{width}}  {config.dataset}: {config.model} of {config.blocks} x{config.n_layers}")
        elif args.command == "datasets":
            width = max(map(len, data.DATASETS))
            for name, builder in sorted(data.DATASETS.items()):
                print(f"{name:{width}}  {builder.summary}")
    except (ValueError, OSError, FloatingPointError) as e:  # bad input, a file or disk problem, a diverging run
        print(f"ssmkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


DATA_OPTIONS = {"listops": dict(size="small"),
                "pathfinder": dict(size="small", resolution=32, level="hard", images=None, workers=1),
                "spoken-digits": dict(speakers=200), "music": dict(composer="bach", pieces=None, instrument="0")}


def _data_options(args) -> None:
    """An option of another dataset is an error (it would be ignored); the dataset's own take their defaults."""
    own = DATA_OPTIONS[args.name]
    for option in sorted({o for options in DATA_OPTIONS.values() for o in options} - set(own)):
        if getattr(args, option) is not None:
            takers = " and ".join(n for n, options in DATA_OPTIONS.items() if option in options)
            raise ValueError(f"--{option} is an option of {takers}, not of {args.name}")
    for option, default in own.items():
        if getattr(args, option) is None:
            setattr(args, option, default)
    if args.name == "pathfinder" and args.images is not None and args.images < 1:
        raise ValueError(f"--images: expected a positive integer, got {args.images}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("ssmkit")
    except PackageNotFoundError:  # run from a checkout without installing it
        return "(not installed)"


def program() -> None:
    """The `ssmkit` program (python -m ssmkit, the console script): main(), then exit with its code. A process that
    torchrun started leaves through os._exit once its output is flushed, so that the interpreter's exit does not
    destroy the distributed runtime's C++ objects: there about one 2-process gloo run in ten aborted after it had
    finished and written everything ("terminate called without an active exception"; 0 in 80 this way, 7 in 80
    before, on 2 CPU cores)."""
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _summary(doc: str | None, width: int = 100) -> str:
    """The first sentences (at least 40 characters) of a docstring's first paragraph, cut at a word to ``width``."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split())
    end = text.find(". ")
    while 0 <= end < 40:
        end = text.find(". ", end + 2)
    text = text if end < 0 else text[:end + 1]
    return text if len(text) <= width else text[:text.rfind(" ", 0, width - 1)] + " …"


def _generate(args, training) -> None:
    from pathlib import Path

    import torch

    from .data import DATASETS
    from .data.audio import audio_quantization, write_ranked_audio
    from .data.sc09 import ZERO_LEVEL
    from .models import generate
    from .train.distributed import setup
    from .train.trainer import read_run_config

    for flag, value in (("--length", args.length), ("--batch", args.batch)):
        if value < 1:
            raise ValueError(f"{flag}: expected an integer >= 1, got {value}")
    quantization = "mu-law"
    if (Path(args.run_dir) / "config.yaml").is_file():  # a run directory: its dataset says whether it is audio
        config = read_run_config(args.run_dir)
        sample_rate, quantization = DATASETS[config.dataset].sample_rate, audio_quantization(config)
        if args.sample_rate is not None and args.sample_rate != sample_rate:
            kind = f"an audio model at {sample_rate} Hz" if sample_rate else f"not audio (dataset {config.dataset})"
            raise ValueError(f"--sample-rate: the run {args.run_dir} is {kind}; got {args.sample_rate}")
    else:  # a model folder or a Hub id
        if args.sample_rate is not None and args.sample_rate < 1:
            raise ValueError(f"--sample-rate: expected a rate in Hz >= 1, got {args.sample_rate}")
        sample_rate = args.sample_rate
    if sample_rate and not args.out:
        raise ValueError("--out: an audio model's samples are written as WAV files; name a folder")
    eos = None
    if args.eos is not None:
        if len(args.eos.encode()) != 1 or sample_rate:
            raise ValueError(f"--eos: expected one single-byte character of a text model, got {args.eos!r}")
        eos = args.eos.encode()[0]
    device = setup(args.device)[2]
    model = training.load_model(args.run_dir, args.checkpoint, device=device)
    if not sample_rate and type(model).__name__ == "Sashimi":  # a model folder does not say what its tokens are
        raise ValueError(f"--sample-rate: {args.run_dir} holds a SaShiMi model, which generates audio; give the rate "
                         f"of the audio it was trained on (16000 for SC09)")
    if sample_rate and args.prompt is not None:
        raise ValueError("--prompt: an audio model starts from silence; it takes no text prompt")
    start = [ZERO_LEVEL] if sample_rate else list((args.prompt if args.prompt is not None else "\n").encode())
    prompt = torch.tensor(start, device=device).repeat(args.batch, 1)
    if prompt.shape[1] == 0:
        raise ValueError("--prompt: expected at least one character")
    timings = {}
    try:
        tokens, logits = generate(model, prompt, args.length, args.temperature, args.top_k, top_p=args.top_p,
                                  repetition_penalty=args.repetition_penalty, eos=eos, seed=args.seed,
                                  cuda_graph=not args.no_graph, timings=timings)
    except ValueError as e:  # the sampling options' errors name generate's arguments: name the flags instead
        name, _, rest = str(e).partition(":")
        flag = {"top_k": "--top-k", "top_p": "--top-p", "temperature": "--temperature",
                "repetition_penalty": "--repetition-penalty"}.get(name)
        raise (ValueError(f"{flag}:{rest}") if flag else e) from None
    new = tokens[:, prompt.shape[1]:]
    if sample_rate:
        log_p = torch.log_softmax(logits.double(), -1).gather(-1, new[..., None])[..., 0].sum(1)
        for path, bits in write_ranked_audio(new, log_p, Path(args.out), sample_rate, quantization):
            print(f"{path}  {bits:.3f} bits per sample")
    else:
        rows, P = tokens.tolist(), prompt.shape[1]
        if eos is not None:  # a sample ends at its first eos (generate repeats it in rows that finished early)
            rows = [row[:P + row[P:].index(eos) + 1] if eos in row[P:] else row for row in rows]
        texts = [bytes(row).decode("utf-8", errors="replace") for row in rows]
        for i, text in enumerate(texts):
            print(text)
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                (Path(args.out) / f"sample_{i:03d}.txt").write_text(text)
        if args.out:
            print(f"\n{len(texts)} samples written to {Path(args.out) / 'sample_*.txt'}")
    made, unit = args.batch * new.shape[1], "samples" if sample_rate else "tokens"
    setup = "compilation, CUDA graph capture" if device.type == "cuda" and not args.no_graph else "states"
    print(f"\n{made} {unit} in {timings['setup'] + timings['steps']:.2f} s: {timings['setup']:.2f} s to set up (prompt "
          f"of {prompt.shape[1]} tokens by the chunked view, {setup}), then {made / timings['steps']:,.0f} {unit}/s "
          f"(recurrent mode, {device}, batch {args.batch})")


if __name__ == "__main__":
    program()
