"""SaShiMi's block norm (the official scalar LayerNorm, ops.scalar_norm) forward + backward on the GPU: the Triton
kernels against the PyTorch reference (what ran before them) and nn.LayerNorm (the standalone build's norm, one
fused kernel each way), at the shapes of the sashimi-sc09 levels at batch 32 (full length 16,000, width 64; 4,000 ×
128; 1,000 × 256), float32 rows (the residual stream under bf16 autocast stays float32).

    python benchmarks/scalar_norm.py [--shapes 32x16000x64,32x4000x128,32x1000x256] [--tiles 4096,2048,1024]

Checks the values and gradients against float64 first. The floor: forward reads x and writes y, backward reads x
and ġ and writes ∂x: 5 passes over the rows at the measured copy bandwidth. --tiles: the Triton version with each
tile size (elements a program takes, ops/triton_scalar_norm.py TILE; its backward holds ~130-170 registers a thread
at 4096 in an offline sm_90 compile). Table last.
"""
from __future__ import annotations

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from speed import bandwidth  # benchmarks/speed.py
from tile_table import arguments, print_table, row  # benchmarks/tile_table.py
from ssmkit.ops import triton_scalar_norm as tsn
from ssmkit.ops.scalar_norm import scalar_norm_torch

EPS = 1e-12


def main():
    shapes, tiles = arguments(__doc__, "32x16000x64,32x4000x128,32x1000x256", tsn.TILE)
    require_cuda()
    bw = bandwidth()
    s = torch.tensor([1.3], device="cuda", requires_grad=True)
    m = torch.tensor([0.2], device="cuda", requires_grad=True)
    rows = []
    for B, L, H in shapes:
        x = torch.randn(B, L, H, device="cuda", requires_grad=True)
        dy = torch.randn_like(x)
        ln = torch.nn.LayerNorm(H, device="cuda")
        ref = [t.detach().double().requires_grad_() for t in (x, s, m)]
        y_ref = scalar_norm_torch(*ref, EPS)
        want = [y_ref, *torch.autograd.grad(y_ref, ref, dy.double())]
        y = tsn.scalar_norm_triton(x, s, m, EPS)
        got = [y, *torch.autograd.grad(y, (x, s, m), dy)]
        err = max(((g.double() - w).norm() / w.norm()).item() for g, w in zip(got, want))
        floor = 5 * x.numel() * 4 / bw * 1e3
        rows.append(row([f"{B} × {L:,} × {H}", f"{err:.1e}"], tsn, tiles,
                        lambda: tsn.scalar_norm_triton(x, s, m, EPS),
                        [lambda: scalar_norm_torch(x, s, m, EPS), lambda: ln(x)], dy, floor))
    print_table(bw, ["shape", "Triton rel. error (values, ∂x, ∂s, ∂m)"], tiles,
                ["PyTorch reference", "nn.LayerNorm"], rows)


if __name__ == "__main__":
    main()
