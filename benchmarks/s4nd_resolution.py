"""Zero-shot resolution change on the bundled digits: train at 8x8, test at 8x8, 16x16 and 32x32 (bilinear upsampling),
S4ND with and without bandlimit beside the 3x3 Conv2D baseline. A table row per run as it finishes, the means last.

    python benchmarks/s4nd_resolution.py [--seeds 0 1] [--bandlimits off 1.0 0.5] [--out runs/resolution]

Each run is `ssmkit train s4nd-digits-small` (or cnn-digits-small) with seed=S (and model_options.bandlimit=B), then
`ssmkit eval RUN --rate 8/size --set size=SIZE` on the whole test split (360 images): S4ND samples its kernels at
Δ·rate with round(l_max/rate) samples per axis; the Conv2D runs its 3x3 kernels unchanged on the larger grid.
"""
from __future__ import annotations

import argparse
import statistics

from ssmkit.train import evaluate_run, load_experiment, make_config, train

SIZES = (8, 16, 32)


def run(name: str, experiment: str, seed: int, out: str, extra: list[str]) -> list[float]:
    """Test accuracies at SIZES of one trained run."""
    config = make_config([f"seed={seed}", f"out_dir={out}", f"run_name={name}-seed{seed}", *extra],
                         load_experiment(experiment), source=experiment)
    train(config, log=lambda *_: None)
    conv = experiment.startswith("cnn")
    return [evaluate_run(f"{out}/{name}-seed{seed}", "test", rate=1.0 if conv else 8 / size,
                         dataset_options={"size": size}, subset=0)["acc"] for size in SIZES]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--bandlimits", nargs="*", default=["off", "1.0", "0.5"], help="none given: the conv alone")
    p.add_argument("--out", default="runs/resolution")
    args = p.parse_args()
    variants = [(f"s4nd-bandlimit-{b}", "s4nd-digits-small", [] if b == "off" else [f"model_options.bandlimit={b}"])
                for b in args.bandlimits] + [("conv2d-3x3", "cnn-digits-small", [])]
    results: dict[str, list[list[float]]] = {}
    print("| model | seed | " + " | ".join(f"{s}x{s}" for s in SIZES) + " | drop 8 -> 32 |", flush=True)
    print("|---|---|" + "---|" * (len(SIZES) + 1), flush=True)
    for seed in args.seeds:
        for name, experiment, extra in variants:
            accs = run(name, experiment, seed, args.out, extra)
            results.setdefault(name, []).append(accs)
            print(f"| {name} | {seed} | " + " | ".join(f"{a:.1%}" for a in accs) + f" | {accs[0] - accs[-1]:+.1%} |",
                  flush=True)
    print("\nmeans over seeds " + ", ".join(map(str, args.seeds)) + ":")
    for name, rows in results.items():
        means = [statistics.mean(col) for col in zip(*rows)]
        print(f"| {name} | mean | " + " | ".join(f"{a:.1%}" for a in means) + f" | {means[0] - means[-1]:+.1%} |")


if __name__ == "__main__":
    main()
