"""Kill a training run with SIGKILL at random moments, resume it each time, and check that nothing was lost.

    python benchmarks/kill_resume.py --kills 70          # about 5 minutes on 2 CPU cores
    python benchmarks/kill_resume.py --kills 3 --seed 1  # what the test suite runs (tests/train/test_kill_resume.py)

A reference run trains uninterrupted. A second run of the same config is started with `ssmkit train`, killed (kill -9)
at a moment drawn uniformly over the training it has left (the reference run's time from its "run ..." line to its
exit — epochs, checkpoint writes, the final test — times the share of epochs not yet saved), resumed with `ssmkit train --resume`, killed again, ... `--kills` times, then
resumed to the end. The checks, printed as a table, then exit status 1 if any fails:
- every resume reads the run (no unreadable checkpoint, no refused folder);
- the final weights of `last` and `best` equal the reference's bit for bit, and so does results.json's test score;
- metrics.csv has one row per epoch, equal to the reference's (all columns but the wall-clock seconds);
- no temporary or unreferenced checkpoint folder is left.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

EPOCHS = 6
CONFIG = ["d_model=16", "n_layers=1", "d_state=4", f"epochs={EPOCHS}", "batch_size=32", "warmup_epochs=0",
          "train_subset=128", "eval_subset=64", "dropout=0.1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
       "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _train(args: list[str], kill_after: float | None = None) -> tuple[str, float]:
    """Run `ssmkit train ARGS`; with kill_after, SIGKILL it that many seconds after it starts training (its "run ..."
    line: data loaded, model built). Returns (how it ended, seconds from that line to its last line)."""
    proc = subprocess.Popen([sys.executable, "-m", "ssmkit", "train", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("run "):
            break
    start = last = time.perf_counter()
    timer = threading.Timer(kill_after, proc.send_signal, (signal.SIGKILL,)) if kill_after is not None else None
    if timer is not None:
        timer.start()
    for _ in proc.stdout:
        last = time.perf_counter()
    err = proc.stderr.read()
    proc.wait()
    if timer is not None:
        timer.cancel()
    if proc.returncode == -signal.SIGKILL:
        return "killed", last - start
    if proc.returncode != 0:
        raise RuntimeError(f"ssmkit train {' '.join(args)} failed ({proc.returncode}): {err.strip()[-500:]}")
    return "finished", last - start


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def _weights(run: Path, which: str) -> dict:
    from ssmkit.train.checkpoint import read_weights
    return read_weights(run / "checkpoints", which)


def kill_and_resume(kills: int, seed: int, workdir: Path) -> list[tuple[str, bool, str]]:
    """Run the experiment in workdir; returns the checks as (what, passed, detail)."""
    import torch

    rng = random.Random(seed)
    base = CONFIG + [f"out_dir={workdir}"]
    _, span = _train(base + ["run_name=reference"])
    run = workdir / "cut"
    outcomes, reached = [], [0]
    for _ in range(kills):
        args = base + ["run_name=cut"] if not run.exists() else ["--resume", str(run)]
        remaining = span * max(1 - reached[-1] / EPOCHS, 0.1)  # the last tenth: the final test and results
        outcomes.append(_train(args, kill_after=rng.uniform(0.0, remaining))[0])
        last = run / "checkpoints" / "last"
        reached.append(int(last.read_text().strip()[len("epoch-"):]) if last.is_file() else 0)
    reached = reached[1:]
    _train(["--resume", str(run)] if run.exists() else base + ["run_name=cut"])
    ref = workdir / "reference"
    same_weights = all(torch.equal(a, b) for which in ("last", "best")
                       for a, b in zip(_weights(ref, which).values(), _weights(run, which).values()))
    scores = [json.loads((r / "results.json").read_text()) for r in (ref, run)]
    leftovers = sorted(p.name for p in (run / "checkpoints").iterdir()
                       if p.name.endswith(".tmp") or p.name not in ("last", "best", *(
                           (run / "checkpoints" / q).read_text().strip() for q in ("last", "best"))))
    return [
        (f"killed {outcomes.count('killed')} times, resumed each time, then finished", True,
         f"epochs saved at each kill: {reached}; {outcomes.count('finished')} runs ended before their kill"),
        ("last and best weights equal the uninterrupted run's", same_weights, ""),
        ("test score equals the uninterrupted run's", scores[0]["test_acc"] == scores[1]["test_acc"],
         f"{scores[1]['test_acc']:.4f} vs {scores[0]['test_acc']:.4f}"),
        ("metrics.csv: one row per epoch, equal to the reference's", _rows(run) == _rows(ref),
         f"{len(_rows(run))} rows"),
        ("no temporary or unreferenced checkpoint is left", not leftovers, ", ".join(leftovers)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where the two runs go (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checks = kill_and_resume(args.kills, args.seed, Path(args.workdir or tmp))
    width = max(len(what) for what, _, _ in checks)
    for what, passed, detail in checks:
        print(f"{'ok  ' if passed else 'FAIL'}  {what:<{width}}  {detail}")
    return 0 if all(passed for _, passed, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
