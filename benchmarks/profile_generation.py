"""Where a token step of the generation stack spends GPU time: torch.profiler's kernels of the plain loop (the same
kernels the CUDA graph replays), per token step, and the graph's own time per step beside them.

    python benchmarks/profile_generation.py [--batches 1,16,256] [--kind S4D]

Stack as benchmarks/generation.py: 4 layers of width 256, N = 64, x <- x + layer.step(x), float32.
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from generation import graphed, ours, stack_stepper, tokens_per_second
from needs_cuda import require_cuda  # benchmarks/needs_cuda.py

STEPS = 50


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,16,256")
    p.add_argument("--kind", default="S4D", choices=["S4", "S4D"])
    a = p.parse_args()
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():
        layers = ours(a.kind)
        for B in (int(b) for b in a.batches.split(",")):
            for layer in layers:
                layer.step_in_place = False
            step = stack_stepper(layers, B, False)
            for _ in range(10):
                step()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(STEPS):
                    step()
                torch.cuda.synchronize()
            graph_us = 1e6 * B / tokens_per_second(graphed(layers, B), B)
            print(f"\n4 x {a.kind}, batch {B}: graph {graph_us:.1f} µs per token step; plain loop's kernels per step:")
            events = [e for e in prof.key_averages() if e.self_device_time_total > 0]  # the kernels and copies
            events.sort(key=lambda e: -e.self_device_time_total)
            total = sum(e.self_device_time_total for e in events) / STEPS
            for e in events[:10]:
                print(f"  {e.self_device_time_total / STEPS:8.1f} µs  x{e.count // STEPS:<3d} {e.key[:90]}")
            print(f"  {total:8.1f} µs  all kernels")


if __name__ == "__main__":
    main()
