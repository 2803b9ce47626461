"""A/B of the two forms of the Triton ssm_step (ops/triton_step.py) inside the generation graph: the tile form
(tl.dot on blocks of 16 rows) against the row form (M in registers, a matrix-vector product per row) at several rows
per program and warps, by batch. Sets the module's ROW_FORMS for each variant, then restores it.

    python benchmarks/step_forms.py [--batches 1,4,16,64,256] [--kind S4D]

Stack as benchmarks/generation.py (4 layers of width 256, N = 64), tokens/s of the CUDA graph; a table last, then
the ROW_FORMS these measurements choose: the fastest row form for each batch up to the first where the tile wins.
"""
from __future__ import annotations

import argparse

import torch

from generation import graphed, ours, tokens_per_second
from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from ssmkit.ops import triton_step

VARIANTS = {"tile": (), **{f"r{r} w{w}": ((1 << 30, r, w),) for r, w in [(1, 2), (2, 2), (4, 2), (8, 2), (8, 4),
                                                                          (16, 4)]}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,4,16,64,256")
    p.add_argument("--kind", default="S4D", choices=["S4", "S4D"])
    a = p.parse_args()
    require_cuda()
    default = triton_step.ROW_FORMS
    batches = [int(b) for b in a.batches.split(",")]
    table = {}
    with torch.no_grad():
        layers = ours(a.kind)
        for name, forms in VARIANTS.items():
            for B in batches:
                triton_step.ROW_FORMS = forms
                table[name, B] = tokens_per_second(graphed(layers, B), B)
                print(name, B, f"{table[name, B]:,.0f}", flush=True)
    triton_step.ROW_FORMS = default
    print(f"\n4 x {a.kind} graph tok/s on {torch.cuda.get_device_name()}\n| form | " +
          " | ".join(f"batch {b}" for b in batches) + " |\n|---|" + "---|" * len(batches))
    for name in VARIANTS:
        best = [table[name, b] == max(table[n, b] for n in VARIANTS) for b in batches]
        print(f"| {name} | " + " | ".join(f"**{table[name, b]:,.0f}**" if top else f"{table[name, b]:,.0f}"
                                          for b, top in zip(batches, best)) + " |")

    forms = []
    for b in batches:
        best = max(VARIANTS, key=lambda n: table[n, b])
        if best == "tile":
            break
        forms.append((b, *VARIANTS[best][0][1:]))
    if len(forms) == len(batches):
        forms[-1] = (1 << 30, *forms[-1][1:])
    print(f"\nROW_FORMS = {tuple(forms)!r}")


if __name__ == "__main__":
    main()
