"""Which kernels make a layer's step differ between processes that run the same code: each process times the step
(speed.py's measure) and then each GPU kernel's time per step (torch.profiler, 5 steps), under a seed of its own.

    python benchmarks/kernel_spread.py [--kind S4D] [--length 16384] [--bf16] [--seeds 0,0,1,1]

Two processes with one seed draw the same parameters and input, and differ only in what the process does not fix
(where tensors land, the order things compile): S4D at 16k under bf16 on one H100 took 3.58-4.66 ms in four
processes of one call (2026-12-07), S4 within 0.04 ms. Table last: each kernel's ms per step in each process, the
kernels that differ most first, then the step's time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py

CHILD = """
import json, sys
import torch
from torch.profiler import ProfilerActivity, profile
sys.path.insert(0, sys.argv[1])  # benchmarks/
from kernel_events import device_kernels
from speed import B, H, fwd_bwd, measure, ours
kind, L, bf16, seed = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
torch.manual_seed(seed)
layer = ours(kind, L).cuda()
u = torch.randn(B, L, H, device="cuda", requires_grad=True)
g = torch.randn(B, L, H, device="cuda")
run = fwd_bwd(layer, u, g, bf16)
ms, mib = measure(run)
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(5):
        run()
    torch.cuda.synchronize()
kernels = {}
for e in device_kernels(prof.key_averages()):
    kernels[e.key] = kernels.get(e.key, 0.0) + e.self_device_time_total / 5e3
print(json.dumps({"ms": ms, "mib": mib, "kernels": kernels}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", default="S4D", choices=["S4", "S4D"])
    p.add_argument("--length", type=int, default=16384)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--seeds", default="0,0,1,1")
    p.add_argument("--top", type=int, default=14)
    a = p.parse_args()
    require_cuda()
    here = str(Path(__file__).resolve().parent)
    seeds = [int(s) for s in a.seeds.split(",")]
    runs = []
    for seed in seeds:
        out = subprocess.run([sys.executable, "-c", CHILD, here, a.kind, str(a.length), str(int(a.bf16)), str(seed)],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"seed {seed}: the child failed\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"seed {seed}: {runs[-1]['ms']:.3f} ms, {runs[-1]['mib']:.0f} MiB", flush=True)
    names = {k for r in runs for k in r["kernels"]}
    times = {k: [r["kernels"].get(k, 0.0) for r in runs] for k in names}
    order = sorted(names, key=lambda k: -(max(times[k]) - min(times[k])))[:a.top]
    print(f"\n{a.kind}, L = {a.length}, {'bf16' if a.bf16 else 'fp32'}: ms per step in each process (seed)")
    print("| kernel | " + " | ".join(f"seed {s}" for s in seeds) + " | max - min |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for k in order:
        print(f"| {k[:70]} | " + " | ".join(f"{t:.3f}" for t in times[k]) + f" | {max(times[k]) - min(times[k]):.3f} |")
    busy = [sum(r["kernels"].values()) for r in runs]
    print("| all kernels | " + " | ".join(f"{t:.3f}" for t in busy) + f" | {max(busy) - min(busy):.3f} |")
    steps = [r["ms"] for r in runs]
    print("| step (do_bench) | " + " | ".join(f"{t:.3f}" for t in steps) + f" | {max(steps) - min(steps):.3f} |")


if __name__ == "__main__":
    main()
