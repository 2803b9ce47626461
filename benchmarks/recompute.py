"""Time and peak memory of an SSM layer with ``recompute`` (activations recomputed in backward, in batch slices)
against keeping them, and the official S4Block's peak beside them. A GPU benchmark, not a test.

    python benchmarks/recompute.py [--lengths 16384,65536] [--rows 1,2,4,8] [--official DIR]

Rows: one layer as benchmarks/speed.py times it (B=16, H=256, N=64, GELU + Linear(H→2H) + GLU, forward + backward,
float32 with TF32 off); "rows" is the recompute slice (batch rows per slice), "auto" recompute=True.
"""
from __future__ import annotations

import argparse

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from speed import B, H, N, fwd_bwd, measure, official


def layer(kind: str, L: int, recompute):
    if kind == "S4":
        return ssmkit.S4(d_model=H, d_state=N, l_max=L, recompute=recompute).cuda()
    return ssmkit.S4D(d_model=H, d_state=N, init="lin", recompute=recompute).cuda()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="16384,65536")
    p.add_argument("--rows", default="1,2,4,8")
    p.add_argument("--official", default=None, help="checkout of github:state-spaces/s4 (extension built)")
    a = p.parse_args()
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    variants = [False, True] + [int(r) for r in a.rows.split(",")]
    lines = []
    for L in (int(v) for v in a.lengths.split(",")):
        for kind in ("S4", "S4D"):
            u = torch.randn(B, L, H, device="cuda", requires_grad=True)
            g = torch.randn(B, L, H, device="cuda")
            off = measure(fwd_bwd(official(kind, L, a.official).cuda(), u, g, False)) if a.official else None
            for rec in variants:
                ms, mib = measure(fwd_bwd(layer(kind, L, rec), u, g, False))
                name = "off" if rec is False else "auto" if rec is True else f"{rec} rows"
                ratio = f"{off[0] / ms:.2f}x | {mib / off[1]:.2f}" if off else "- | -"
                lines.append(f"| {kind} | {L} | {name} | {ms:.2f} | {mib:.0f} | {ratio} |")
                print(lines[-1], flush=True)
            if off:
                lines.append(f"| {kind} | {L} | official | {off[0]:.2f} | {off[1]:.0f} | 1.00x | 1.00 |")
            del u, g
            torch.cuda.empty_cache()
    print(f"\n{torch.cuda.get_device_name()}\n| layer | L | recompute | ms | peak MiB | speed vs official | "
          "memory vs official |\n|---|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
