"""Zero-shot resolution change: S4ND with and without bandlimit beside a 3x3 Conv2D baseline, trained at one
resolution and tested at others. A table row per run as it finishes, the means last.

    python benchmarks/s4nd_resolution.py [--task digits|pathfinder] [--seeds 0 1] [--bandlimits off 1.0 0.5]
                                         [--out runs/resolution] [key=value ...]

digits: the bundled 8x8 digits; each run is `ssmkit train s4nd-digits-small` (or cnn-digits-small), tested on the
whole test split (360 images) at 8x8 and bilinearly upsampled to 16x16 and 32x32 (`--set size=SIZE`).

pathfinder: images of our Pathfinder generator at 32 and 64 pixels, both resolutions' folders in one data_dir
(`ssmkit data pathfinder DIR --level easy --resolution 32`, and again with 64); s4nd-pathfinder-small (or
cnn-pathfinder-small) trained at each resolution and tested on the other resolution's own drawings
(`--set resolution=R`): the generator scales strokes and gaps with the image, so the scenes are alike.

S4ND is evaluated at rate = trained side / tested side: it samples its kernels at Δ·rate with round(l_max/rate)
samples per axis; the Conv2D runs its 3x3 kernels unchanged. key=value overrides go to every training run
(data_dir=..., num_workers=8, max_minutes=3, ...).
"""
from __future__ import annotations

import argparse
import statistics
from typing import NamedTuple

from ssmkit.train import evaluate_run, load_experiment, make_config, train


class Task(NamedTuple):
    s4nd: str
    conv: str
    key: str  # the dataset option that sets the resolution
    train: tuple[int, ...]
    test: tuple[int, ...]


TASKS = {"digits": Task("s4nd-digits-small", "cnn-digits-small", "size", (8,), (8, 16, 32)),
         "pathfinder": Task("s4nd-pathfinder-small", "cnn-pathfinder-small", "resolution", (32, 64), (32, 64))}


def run(task: Task, name: str, experiment: str, side: int, seed: int, out: str, extra: list[str]) -> list[float]:
    """Test accuracies at task.test of one run trained at side x side."""
    run_name = f"{name}-{side}px-seed{seed}"
    config = make_config([f"seed={seed}", f"out_dir={out}", f"run_name={run_name}",
                          f"dataset_options.{task.key}={side}", *extra], load_experiment(experiment),
                         source=experiment)
    train(config, log=lambda *_: None)
    conv = experiment == task.conv
    return [evaluate_run(f"{out}/{run_name}", "test", rate=1.0 if conv else side / size,
                         dataset_options={task.key: size}, subset=0)["acc"] for size in task.test]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="digits", choices=sorted(TASKS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--bandlimits", nargs="*", default=["off", "1.0", "0.5"], help="none given: the conv alone")
    p.add_argument("--no-conv", action="store_true", help="leave out the Conv2D baseline")
    p.add_argument("--out", default="runs/resolution")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_args()
    task = TASKS[args.task]
    variants = [(f"s4nd-bandlimit-{b}", task.s4nd, [] if b == "off" else [f"model_options.bandlimit={b}"])
                for b in args.bandlimits] + ([] if args.no_conv else [("conv2d-3x3", task.conv, [])])
    results: dict[tuple[str, int], list[list[float]]] = {}
    header = " | ".join(f"test {s}x{s}" for s in task.test)
    print(f"| model | trained at | seed | {header} |", flush=True)
    print("|---|---|---|" + "---|" * len(task.test), flush=True)
    for seed in args.seeds:
        for side in task.train:
            for name, experiment, extra in variants:
                accs = run(task, name, experiment, side, seed, args.out, extra + args.overrides)
                results.setdefault((name, side), []).append(accs)
                print(f"| {name} | {side}x{side} | {seed} | " + " | ".join(f"{a:.1%}" for a in accs) + " |",
                      flush=True)
    print("\nmeans over seeds " + ", ".join(map(str, args.seeds)) + ":")
    for (name, side), rows in results.items():
        means = [statistics.mean(col) for col in zip(*rows)]
        print(f"| {name} | {side}x{side} | mean | " + " | ".join(f"{a:.1%}" for a in means) + " |")


if __name__ == "__main__":
    main()
