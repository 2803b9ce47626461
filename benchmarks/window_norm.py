"""The BatchNorm of padded LRA batches at one length (ops.window_norm: statistics over each row's first ``count``
positions) forward + backward on the GPU: the Triton kernels against the PyTorch reference (what ran before them) and
nn.BatchNorm1d over every row (cuDNN's, which the trimmed batches take), at lra-listops' shape (32 expressions padded
to 2,000 tokens, width 256, the longest at 1,875) and a longer one, float32 and bf16 inputs.

    python benchmarks/window_norm.py [--shapes 32x2000x256,16x16384x256] [--tiles 8192,4096]

Checks the values and gradients against float64 first. The floor: forward reads x twice and writes y, backward reads
x and ġ twice and writes ∂x: 8 passes over the rows in x's dtype at the measured copy bandwidth. Table last.
"""
from __future__ import annotations

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from speed import bandwidth  # benchmarks/speed.py
from tile_table import arguments, print_table, row  # benchmarks/tile_table.py
from ssmkit.ops import triton_window_norm as twn
from ssmkit.ops.window_norm import window_norm_torch

EPS = 1e-5


def main():
    shapes, tiles = arguments(__doc__, "32x2000x256,16x16384x256", twn.TILE)
    require_cuda()
    bw = bandwidth()
    rows = []
    for B, L, H in shapes:
        count = torch.tensor(L * 15 // 16, device="cuda")
        weight = torch.rand(H, device="cuda", requires_grad=True)
        bias = torch.randn(H, device="cuda", requires_grad=True)
        bn = torch.nn.BatchNorm1d(H, eps=EPS, device="cuda")
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(B, L, H, device="cuda").to(dtype).requires_grad_()
            dy = torch.randn_like(x)
            ref = [t.detach().double().requires_grad_() for t in (x, weight, bias)]
            y_ref = window_norm_torch(ref[0], count, ref[1], ref[2], EPS)[0]
            want = [y_ref, *torch.autograd.grad(y_ref, ref, dy.double())]
            y = twn.window_norm_triton(x, count, weight, bias, EPS)[0]
            got = [y, *torch.autograd.grad(y, (x, weight, bias), dy)]
            err = max(((g.double() - w).norm() / w.norm()).item() for g, w in zip(got, want))

            floor = 8 * x.numel() * x.element_size() / bw * 1e3
            rows.append(row([f"{B} × {L:,} × {H}", str(dtype)[6:], f"{err:.1e}"], twn, tiles,
                            lambda: twn.window_norm_triton(x, count, weight, bias, EPS)[0],
                            [lambda: window_norm_torch(x, count, weight, bias, EPS)[0],
                             lambda: bn(x.view(-1, H)).view(x.shape)], dy, floor))
    print_table(bw, ["shape", "x", "Triton rel. error (values, ∂x, ∂γ, ∂β)"], tiles,
                ["PyTorch reference", "nn.BatchNorm1d, every row"], rows)


if __name__ == "__main__":
    main()
