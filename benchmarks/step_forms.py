"""A/B of the two forms of the Triton ssm_step (ops/triton_step.py) inside the generation graph: the tile form
(tl.dot on blocks of 16 rows) against the row form (M in registers, a matrix-vector product per row) at several rows
per program and warps, by batch. Sets the module's constants for each variant; the defaults are not changed.

    python benchmarks/step_forms.py [--batches 1,4,16,64,256] [--kind S4D]

Stack as benchmarks/generation.py (4 layers of width 256, N = 64), tokens/s of the CUDA graph; a table last.
"""
from __future__ import annotations

import argparse

import torch

from generation import graphed, ours, tokens_per_second
from ssmkit.ops import triton_step

VARIANTS = {"tile": dict(ROWS_MAX=0), **{f"r{r} w{w}": dict(ROWS_MAX=1 << 30, ROWS=r, ROW_WARPS=w)
                                         for r, w in [(1, 2), (2, 2), (4, 2), (8, 2), (8, 4), (16, 4)]}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,4,16,64,256")
    p.add_argument("--kind", default="S4D", choices=["S4", "S4D"])
    a = p.parse_args()
    defaults = {k: getattr(triton_step, k) for k in ("ROWS_MAX", "ROWS", "ROW_WARPS")}
    batches = [int(b) for b in a.batches.split(",")]
    table = {}
    with torch.no_grad():
        layers = ours(a.kind)
        for name, constants in VARIANTS.items():
            for B in batches:
                for k, v in {**defaults, **constants}.items():
                    setattr(triton_step, k, v)
                table[name, B] = tokens_per_second(graphed(layers, B), B)
                print(name, B, f"{table[name, B]:,.0f}", flush=True)
    for k, v in defaults.items():
        setattr(triton_step, k, v)
    print(f"\n4 x {a.kind} graph tok/s on {torch.cuda.get_device_name()}\n| form | " +
          " | ".join(f"batch {b}" for b in batches) + " |\n|---|" + "---|" * len(batches))
    for name in VARIANTS:
        best = [table[name, b] == max(table[n, b] for n in VARIANTS) for b in batches]
        print(f"| {name} | " + " | ".join(f"**{table[name, b]:,.0f}**" if top else f"{table[name, b]:,.0f}"
                                          for b, top in zip(batches, best)) + " |")


if __name__ == "__main__":
    main()
