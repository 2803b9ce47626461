"""Kill a training run with SIGKILL at random moments, resume it each time, and check that nothing was lost.

    python benchmarks/kill_resume.py --kills 70          # 21 minutes on our shared 2-core CPU
    python benchmarks/kill_resume.py --kills 3 --seed 1  # what the test suite runs (tests/train/test_kill_resume.py)

A reference run trains uninterrupted. Another run of the same config is started with `ssmkit train`, killed (kill -9)
at a moment drawn uniformly over the training it has left (estimated from the reference run's output: the time from
its "run ..." line to its last line — epochs, checkpoint writes, the final test — less the epochs already saved),
resumed with `ssmkit train --resume`, killed again, ... up to once per epoch, then resumed to the end;
then the next run, until `--kills` kills are spent. The checks, printed as a table, then exit status 1 if any fails:
- every resume reads the run (no unreadable checkpoint, no refused folder);
- each run's final weights of `last` and `best` equal the reference's bit for bit, and so does its test score;
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


def _train(args: list[str], kill_after: float | None = None) -> tuple[str, list[float]]:
    """Run `ssmkit train ARGS`; with kill_after, SIGKILL it that many seconds after it starts training (its "run ..."
    line: data loaded, model built). Returns (how it ended, the times of its epoch lines and of its last line, in
    seconds after the "run ..." line)."""
    proc = subprocess.Popen([sys.executable, "-m", "ssmkit", "train", *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("run "):
            break
    start, times = time.perf_counter(), []
    timer = threading.Timer(kill_after, proc.send_signal, (signal.SIGKILL,)) if kill_after is not None else None
    if timer is not None:
        timer.start()
    for line in proc.stdout:
        if line.startswith("epoch") or not times:
            times.append(time.perf_counter() - start)
        else:
            times[-1] = time.perf_counter() - start
    err = proc.stderr.read()
    proc.wait()
    if timer is not None:
        timer.cancel()
    if proc.returncode == -signal.SIGKILL:
        return "killed", times
    if proc.returncode != 0:
        raise RuntimeError(f"ssmkit train {' '.join(args)} failed ({proc.returncode}): {err.strip()[-500:]}")
    return "finished", times


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def _weights(run: Path, which: str) -> dict:
    from ssmkit.train.checkpoint import read_weights
    return read_weights(run / "checkpoints", which)


def _saved_epoch(run: Path) -> int:
    last = run / "checkpoints" / "last"
    return int(last.read_text().strip()[len("epoch-"):]) if last.is_file() else 0


def _interrupted_run(run: Path, base: list[str], kills: int, times: list[float], rng) -> list[tuple[str, int]]:
    """Start run, kill it `kills` times (each resume at a moment uniform over what it has left), then let it finish.
    Returns (how each attempt ended, the epoch saved after it)."""
    attempts = []
    for _ in range(kills):
        args = ["--resume", str(run)] if run.exists() else base + [f"run_name={run.name}"]
        done = _saved_epoch(run)  # a resumed run trains epochs done+1.. (the first with the warm-up of epoch 1)
        remaining = times[-1] - (times[done - 1] - times[0] if done else 0.0)
        attempts.append((_train(args, kill_after=rng.uniform(0.0, remaining))[0], _saved_epoch(run)))
    _train(["--resume", str(run)] if run.exists() else base + [f"run_name={run.name}"])
    return attempts


def _differences(run: Path, ref: Path) -> list[str]:
    """What of run differs from the reference run (empty: nothing)."""
    import torch

    problems = []
    for which in ("last", "best"):
        a, b = _weights(ref, which), _weights(run, which)
        if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
            problems.append(f"{which} weights")
    score = [json.loads((r / "results.json").read_text())["test_acc"] for r in (ref, run)]
    if score[0] != score[1]:
        problems.append(f"test accuracy {score[1]} vs {score[0]}")
    if _rows(run) != _rows(ref):
        problems.append(f"metrics.csv ({len(_rows(run))} rows)")
    named = {(run / "checkpoints" / p).read_text().strip() for p in ("last", "best")}
    problems += [f"left {p.name}" for p in (run / "checkpoints").iterdir() if p.name not in named | {"last", "best"}]
    return problems


def kill_and_resume(kills: int, seed: int, workdir: Path) -> list[tuple[str, bool, str]]:
    """Run the experiment in workdir: runs of up to EPOCHS kills each until `kills` kills are spent. Returns the
    checks as (what, passed, detail)."""
    rng = random.Random(seed)
    base = CONFIG + [f"out_dir={workdir}"]
    _, times = _train(base + ["run_name=reference"])  # epoch e's line at times[e - 1]; the last line at times[-1]
    attempts, problems, n_runs = [], [], 0
    while len(attempts) < kills:
        n_runs += 1
        run = workdir / f"cut-{n_runs}"
        attempts += _interrupted_run(run, base, min(EPOCHS, kills - len(attempts)), times, rng)
        problems += [f"{run.name}: {p}" for p in _differences(run, workdir / "reference")]
    killed = [epoch for how, epoch in attempts if how == "killed"]
    spread = ", ".join(f"{killed.count(e)} at epoch {e}" for e in sorted(set(killed)))
    return [(f"{len(killed)} kills over {n_runs} runs, each resumed to the end", len(killed) > 0,
             f"epochs saved when killed: {spread}; {len(attempts) - len(killed)} attempts ended before their kill"),
            ("every run equals the uninterrupted one: last and best weights bit for bit, test score, metrics.csv "
             "rows, no leftover checkpoint", not problems, "; ".join(problems[:5]))]


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
