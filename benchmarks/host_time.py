"""Where the host's time goes in a short step: at L = 1k one layer's forward + backward waits on Python and launches.

    python benchmarks/host_time.py [--kinds S4,S4D] [--length 1024] [--bf16] [--top 25] [--official DIR]

For each layer (B=16, H=256, N=64, GELU + Linear + GLU output as in speed.py): the step's wall time (synchronized),
the host's time to issue it (no synchronization, with the GPU idle at the start so that no launch waits on a full
queue), cProfile's functions by their own time over 50 steps (cProfile slows each Python call, so read the shares, not
the sums; the backward runs on autograd's device thread, which cProfile does not see: it shows as run_backward's own
time), and torch.profiler's ops by their own host time, both threads. --official DIR: the official S4Block's wall and issue times too (as
in speed.py). A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch
from torch.profiler import ProfilerActivity, profile

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from speed import fwd_bwd, official, ours  # benchmarks/speed.py

B, H, N = 16, 256, 64


def times(step) -> tuple[float, float]:
    """Medians of 30 (ms): the synchronized step, and the host's time to issue it onto an idle GPU."""
    for _ in range(10):
        step()
    walls, issues = [], []
    for _ in range(30):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        walls.append(time.perf_counter() - t0)
        issues.append(t1 - t0)
    return sorted(walls)[15] * 1e3, sorted(issues)[15] * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kinds", default="S4,S4D")
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--official", default=None, help="checkout of github:state-spaces/s4 (extension built)")
    args = p.parse_args()
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    L = args.length
    u = torch.randn(B, L, H, device="cuda", requires_grad=True)
    g = torch.randn(B, L, H, device="cuda")
    for kind in args.kinds.split(","):
        step = fwd_bwd(ours(kind, L).cuda(), u, g, args.bf16)
        wall, issue = times(step)
        if args.official:
            o_wall, o_issue = times(fwd_bwd(official(kind, L, args.official).cuda(), u, g, args.bf16))
            print(f"\nofficial {kind}: step {o_wall:.2f} ms, host issues it in {o_issue:.2f} ms")
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(50):
            step()
        torch.cuda.synchronize()
        prof.disable()
        print(f"\n=== {kind} L={L} {'bf16' if args.bf16 else 'float32'}: step {wall:.2f} ms, host issues it in "
              f"{issue:.2f} ms (medians of 30)")
        stats = pstats.Stats(prof)
        total = sum(v[2] for v in stats.stats.values())
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:args.top]
        print(f"cProfile, own time per step (share of {total / 50 * 1e3:.2f} ms profiled), calls per step:")
        for (file, line, name), (cc, nc, tt, ct, _) in rows:
            where = f"{file.split('site-packages/')[-1].split('ssmkit/')[-1]}:{line}"
            print(f"  {tt / 50 * 1e3:6.3f} ms {100 * tt / total:5.1f}% {nc / 50:6.1f}  {name[:40]:40} {where[-60:]}")
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(20):
                step()
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=50))


if __name__ == "__main__":
    main()
