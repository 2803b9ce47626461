"""The trainer's own step time on an experiment over ListOps or IMDB text (lra-listops, lra-text, their DSS and S5
versions; real training: data loader, padded batches with lengths,
the loss read back), one GPU. What experiment_throughput.py does not see: its loop passes no lengths and reads
nothing back, so it cannot show the host waiting for the device (StepSums in train/step_sums.py, the lengths check in
layers/checks.py).

    python benchmarks/trainer_step.py [--experiment NAME] [--code DIR ...] [--precision fp32 bf16]
        [--steps 150] [--epochs 3] [--eval 64] [--set KEY=VALUE ...] [--host N]

Generates the data once (in /tmp/ssmkit-<experiment>-bench): ListOps at the LRA lengths (500-2000 tokens), or for
lra-text an aclImdb folder of random words whose lengths in characters follow a log-normal close to IMDB's (median
~975, mean ~1,300, 2.7 % above the 4,096 kept: the real reviews' shape, not their text), one batch_size·steps
training examples. Then for each ssmkit checkout given by --code (default: this one; two run as A, B, B, A) and each
precision trains the experiment for --epochs epochs (3) of ``steps`` steps in a subprocess and prints each epoch
after the first's ms per step and seconds (validation over --eval examples included, 64 by default; the first
compiles and captures). --eval 25000 with lra-text validates as the experiment does, on all the test reviews: the
seconds beside a run with the default give what its validation costs. The shipped
warm-up stays: at the full lr from the first step the ListOps loss grows from 2.3 to ~12 per expression within three
steps (fp32, on the CPU). A checkout of an older commit (git worktree, or git archive of its ssmkit folder) beside
the current one gives a before/after on one GPU in one call.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from other_code import PACKAGE_LINE, check_package, child_env  # benchmarks/other_code.py

CHILD = PACKAGE_LINE + """  # each epoch's seconds from the run's metrics.csv (written by every ssmkit version)
import csv, json, pathlib, sys
from ssmkit.train import load_experiment, make_config
from ssmkit.train.trainer import train
config = make_config(json.loads(sys.argv[1]), load_experiment(sys.argv[2]), source=sys.argv[2])
if len(sys.argv) > 3:  # --host: the run's Python functions by their own time, on stderr
    import cProfile, pstats
    profiler = cProfile.Profile()
    result = profiler.runcall(train, config, log=lambda *a, **k: None)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(int(sys.argv[3]))
else:
    result = train(config, log=lambda *a, **k: None)
rows = list(csv.DictReader(open(pathlib.Path(result["run_dir"], "metrics.csv"))))
print(json.dumps([float(r["seconds"]) for r in rows]))
"""


def write_reviews(root: Path, n_train: int, n_test: int) -> Path:
    """An aclImdb folder (train and test, pos and neg, <id>_<rating>.txt) of random words from a 2,000-word
    vocabulary of lowercase letters, each review's length in characters log-normal (median 975, σ 0.75 in the log);
    returns the aclImdb folder. Kept across calls of the same sizes."""
    folder = root / "aclImdb"
    if (folder / f"n{n_train}-{n_test}").is_file():
        return folder
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(2000)]
    for part, n in (("train", n_train), ("test", n_test)):
        for label, rating in (("pos", 9), ("neg", 2)):
            (folder / part / label).mkdir(parents=True, exist_ok=True)
            for i in range(n // 2 + 1):
                length = int(np.exp(rng.normal(np.log(975), 0.75)))
                text = " ".join(rng.choice(words, length // 5 + 1))[:length]
                (folder / part / label / f"{i}_{rating}.txt").write_text(text)
    (folder / f"n{n_train}-{n_test}").touch()
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="lra-listops", help="a shipped experiment on ListOps or IMDB text")
    p.add_argument("--code", nargs="*", default=[str(Path(__file__).resolve().parents[1])],
                   help="folders holding an ssmkit package (a checkout's root)")
    p.add_argument("--precision", nargs="*", default=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--eval", type=int, default=64, metavar="N", help="validation examples per epoch")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run")
    p.add_argument("--host", type=int, default=0, metavar="N",
                   help="also print each run's N Python functions with the most host time of their own (cProfile)")
    a = p.parse_args()
    from ssmkit.train import load_experiment
    experiment = load_experiment(a.experiment)
    if experiment.get("dataset") not in ("listops", "lra-text"):
        raise SystemExit(f"--experiment: expected an experiment on listops or lra-text, got {a.experiment!r} "
                         f"(dataset {experiment.get('dataset')!r})")
    batch = experiment["batch_size"]
    data = Path(f"/tmp/ssmkit-{experiment['dataset']}-bench")
    n_train = batch * a.steps
    if experiment["dataset"] == "listops":
        tsv = data / "basic_train.tsv"
        val = data / "basic_val.tsv"
        if (not tsv.is_file() or len(tsv.read_text().splitlines()) < n_train
                or len(val.read_text().splitlines()) < a.eval):
            from ssmkit.data.listops import write_listops
            write_listops(data, n_train=n_train, n_val=a.eval, n_test=64, seed=0)
    else:
        data = write_reviews(data, n_train, a.eval)
    rows = []
    # two checkouts run in the order A, B, B, A, so that a host whose speed drifts during the call does not favour
    # the one that ran first (one A/B of an H100 call read 22.6 against 28.2 ms the other way round)
    order = a.code + a.code[::-1] if len(a.code) == 2 else a.code
    for code in order:
        for precision in a.precision:
            with tempfile.TemporaryDirectory() as out:
                overrides = [f"data_dir={data}", f"out_dir={out}", "run_name=bench", f"epochs={a.epochs}",
                             f"train_subset={n_train}", f"eval_subset={a.eval}",
                             f"precision={precision}", *a.set]
                env = child_env(code)
                done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(overrides), a.experiment,
                                       *([str(a.host)] if a.host else [])], env=env, capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr[-2000:], file=sys.stderr)
                    rows.append((code, precision, "failed", "-"))
                    continue
                check_package(code, done.stderr)
                if a.host:
                    print(f"=== {code}, {precision}: host time by function (cProfile, all epochs)\n{done.stderr}")
                seconds = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append((code, precision, " / ".join(f"{1000 * s / a.steps:.1f}" for s in seconds[1:]),
                             " / ".join(f"{s:.1f}" for s in seconds[1:])))
            print(rows[-1], flush=True)
    settings = " ".join(a.set) or "as shipped"
    print(f"\n{a.experiment}, {a.steps} steps of {batch} and validation on {a.eval} per epoch, each epoch after the "
          f"first ({settings})")
    print("| code | precision | ms/step | s/epoch |\n|---|---|---|---|")
    for code, precision, ms, sec in rows:
        print(f"| {code} | {precision} | {ms} | {sec} |")



if __name__ == "__main__":
    main()
