"""Two versions of ssmkit's S4 and S4D layers on one GPU: forward + backward time and peak memory, each version in its
own process, alternated A, B, B, A (a host or GPU whose speed drifts during the call favours neither).

    python benchmarks/layer_ab.py --code DIR_A DIR_B [--lengths 16384,65536] [--precision fp32 bf16] [--kinds S4 S4D]

DIR: a folder holding an ssmkit package (a checkout's root, or `git archive REV ssmkit | tar x -C DIR`). The layer is
speed.py's (GELU + Linear(H→2H) + GLU, B = 16, H = 256, N = 64, the Triton path), timed by speed.py's measure. Table
last: each run's ms (MiB), then each version's median of its two runs and B's ratio to A.
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
rows = []
for kind in sys.argv[3].split(","):
    for L in map(int, sys.argv[4].split(",")):
        for precision in sys.argv[5].split(","):
            layer = ours(kind, L).cuda()
            u = torch.randn(B, L, H, device="cuda", requires_grad=True)
            g = torch.randn(B, L, H, device="cuda")
            ms, mib = measure(fwd_bwd(layer, u, g, precision == "bf16"))
            rows.append([kind, L, precision, ms, mib])
            del layer, u, g
            torch.cuda.empty_cache()
print(json.dumps(rows))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", nargs=2, required=True, metavar=("DIR_A", "DIR_B"))
    p.add_argument("--lengths", default="16384,65536")
    p.add_argument("--precision", nargs="*", default=["fp32", "bf16"])
    p.add_argument("--kinds", nargs="*", default=["S4", "S4D"])
    a = p.parse_args()
    require_cuda()
    here = str(Path(__file__).resolve().parent)
    runs = {0: [], 1: []}
    for which in (0, 1, 1, 0):
        code = str(Path(a.code[which]).resolve())
        done = subprocess.run([sys.executable, "-c", CHILD, code, here, ",".join(a.kinds), a.lengths,
                               ",".join(a.precision)], env=child_env(code), capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{code}: the run failed\n{done.stderr[-3000:]}")
        check_package(code, done.stderr)
        runs[which].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print("ABBA"[len(runs[0]) + len(runs[1]) - 1], code, runs[which][-1], flush=True)
    print(f"\nA = {a.code[0]}, B = {a.code[1]}; ms (peak MiB), forward + backward")
    print("| layer | L | precision | A | B | B | A | A median | B median | B vs A |\n|---|---|---|---|---|---|---|---|---|---|")
    for i, (kind, L, precision, *_) in enumerate(runs[0][0]):
        cells = [runs[w][k][i] for w, k in ((0, 0), (1, 0), (1, 1), (0, 1))]
        a_ms = statistics.median([runs[0][0][i][3], runs[0][1][i][3]])
        b_ms = statistics.median([runs[1][0][i][3], runs[1][1][i][3]])
        print(f"| {kind} | {L:,} | {precision} | " + " | ".join(f"{c[3]:.2f} ({c[4]:.0f})" for c in cells) +
              f" | {a_ms:.2f} | {b_ms:.2f} | {a_ms / b_ms:.2f}× |")


if __name__ == "__main__":
    main()
