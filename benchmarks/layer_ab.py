"""Versions of ssmkit's S4 and S4D layers on one GPU: forward + backward time and peak memory, each version in its own
process, in the order A, B, …, then back (A, B, B, A for two; A, B, C, C, B, A for three): a host or GPU whose speed
drifts during the call favours none of them.

    python benchmarks/layer_ab.py --code DIR_A DIR_B [DIR_C ...] [--lengths 16384,65536] [--precision fp32 bf16]
        [--kinds S4 S4D] [--rounds 1]

--rounds R: the order A, B, …, then back, R times (2R runs of each version): for the host-bound short lengths,
whose runs scatter between processes (at L = 1k by up to 40 % in one call).

DIR: a folder holding an ssmkit package (a checkout's root, or `git archive REV ssmkit | tar x -C DIR`). The layer is
speed.py's (GELU + Linear(H→2H) + GLU, B = 16, H = 256, N = 64, the Triton path), timed by speed.py's measure, and
the host's time to issue one step onto an idle GPU (host_time.py's times: where it comes near the step's, the GPU
waits on the host). Table last: each version's runs as ms (peak MiB; host issue ms), its median, and A's median over
it (the speed-up against A).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from other_code import PACKAGE_LINE, check_package, child_env  # benchmarks/other_code.py

CHILD = PACKAGE_LINE + """
import json, sys
import torch
sys.path.insert(0, sys.argv[2])  # benchmarks/, for speed.py's layer and timer
from speed import B, H, fwd_bwd, measure, ours
from host_time import times
rows = []
for kind in sys.argv[3].split(","):
    for L in map(int, sys.argv[4].split(",")):
        for precision in sys.argv[5].split(","):
            layer = ours(kind, L).cuda()
            u = torch.randn(B, L, H, device="cuda", requires_grad=True)
            g = torch.randn(B, L, H, device="cuda")
            step = fwd_bwd(layer, u, g, precision == "bf16")
            ms, mib = measure(step)
            rows.append([kind, L, precision, ms, mib, times(step)[1]])
            del layer, u, g, step
            torch.cuda.empty_cache()
print(json.dumps(rows))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", nargs="+", required=True, metavar="DIR")
    p.add_argument("--lengths", default="16384,65536")
    p.add_argument("--precision", nargs="*", default=["fp32", "bf16"])
    p.add_argument("--kinds", nargs="*", default=["S4", "S4D"])
    p.add_argument("--rounds", type=int, default=1)
    a = p.parse_args()
    if len(a.code) < 2:
        raise SystemExit(f"--code: expected two or more folders, got {len(a.code)}")
    if a.rounds < 1:
        raise SystemExit(f"--rounds: expected a positive number, got {a.rounds}")
    require_cuda()
    here = str(Path(__file__).resolve().parent)
    names = [chr(ord("A") + i) for i in range(len(a.code))]
    runs = {i: [] for i in range(len(a.code))}
    for which in [*range(len(a.code)), *reversed(range(len(a.code)))] * a.rounds:
        code = str(Path(a.code[which]).resolve())
        done = subprocess.run([sys.executable, "-c", CHILD, code, here, ",".join(a.kinds), a.lengths,
                               ",".join(a.precision)], env=child_env(code), capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{code}: the run failed\n{done.stderr[-3000:]}")
        check_package(code, done.stderr)
        runs[which].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(names[which], code, runs[which][-1], flush=True)
    print("\n" + ", ".join(f"{n} = {c}" for n, c in zip(names, a.code))
          + "; ms (peak MiB; host issue ms), forward + backward")
    head = [f"{n} (its runs) | {n} median" + ("" if n == "A" else f" | A / {n}") for n in names]
    print("| layer | L | precision | " + " | ".join(head) + " |")
    print("|---|---|---|" + "---|" * (3 * len(names) - 1))
    for i, (kind, L, precision, *_) in enumerate(runs[0][0]):
        medians = [statistics.median(r[i][3] for r in runs[w]) for w in runs]
        cells = []
        for w, name in enumerate(names):
            cells.append(" / ".join(f"{r[i][3]:.2f} ({r[i][4]:.0f}; {r[i][5]:.2f})" for r in runs[w])
                         + f" | {medians[w]:.2f}")
            if w:
                cells[-1] += f" | {medians[0] / medians[w]:.2f}×"
        print(f"| {kind} | {L:,} | {precision} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
