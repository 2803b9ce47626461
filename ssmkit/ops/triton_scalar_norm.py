"""Triton version of ops.scalar_norm: y = s · (x − μ + m) · r over the last axis, r = 1/√(var + ε) (the formulas and
the gradients in ops/scalar_norm.py).

Each program takes BR whole rows as one (BR, BH) tile (BH the row length rounded up to a power of two), so the mean
is subtracted before the squares are summed and nothing is read twice. The sums are of x − x₀, x₀ the row's first
entry: a row far from zero (h = 1000 + N(0, 1)) keeps float32's accuracy in its mean, where a plain float32 sum
(and PyTorch's float32 LayerNorm) loses ~2e-5. Forward reads x and writes y with each row's mean of x − x₀ and r
(float32, kept for backward); backward reads x and ġ,
writes ∂L/∂x, and each program's partial sums of ∂L/∂s and ∂L/∂m, added up by one torch sum. s and m are read on the
device (no host sync: the op can run inside a CUDA graph). float32, bfloat16 and float16 rows up to MAX_H long;
float64 and longer rows take the reference.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from .dispatch import register
from .grid_math import cdiv, next_power_of_2
from .scalar_norm import scalar_norm_torch

MAX_H = 8192  # one row in one tile: above this the tile would spill its registers
TILE = 4096  # elements of a program's tile (BR rows × BH)


@triton.jit
def _tile(X, rows, H, BR: tl.constexpr, BH: tl.constexpr):
    """This program's rows r (BR,), columns c (BH,), the live mask, and x − x₀ of the tile (float32, 0 where dead)."""
    r = (tl.program_id(0) * BR + tl.arange(0, BR)).to(tl.int64)
    c = tl.arange(0, BH)
    live = (r < rows)[:, None] & (c < H)[None, :]
    x0 = tl.load(X + r * H, mask=r < rows, other=0.0).to(tl.float32)
    x = tl.load(X + r[:, None] * H + c[None, :], mask=live, other=0.0).to(tl.float32)
    return r, c, live, tl.where(live, x - x0[:, None], 0.0)


@triton.jit(do_not_specialize=["rows"])
def _forward_kernel(X, Y, MEAN, RSTD, S, M, rows, H, eps, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, xs = _tile(X, rows, H, BR, BH)
    mean = tl.sum(xs, axis=1) / H  # of x − x₀
    d = tl.where(live, xs - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(d * d, axis=1) / H + eps)
    s = tl.load(S)
    m = tl.load(M)
    y = s * (d + m) * rstd[:, None]
    tl.store(Y + r[:, None] * H + c[None, :], y.to(Y.dtype.element_ty), mask=live)
    tl.store(MEAN + r, mean, mask=r < rows)
    tl.store(RSTD + r, rstd, mask=r < rows)


@triton.jit(do_not_specialize=["rows"])
def _backward_kernel(X, G, MEAN, RSTD, S, M, DX, PART, rows, H, BR: tl.constexpr, BH: tl.constexpr,
                     WANT_DX: tl.constexpr):
    r, c, live, xs = _tile(X, rows, H, BR, BH)
    g = tl.load(G + r[:, None] * H + c[None, :], mask=live, other=0.0).to(tl.float32)
    mean = tl.load(MEAN + r, mask=r < rows, other=0.0)
    rstd = tl.load(RSTD + r, mask=r < rows, other=0.0)
    s = tl.load(S)
    m = tl.load(M)
    xh = tl.where(live, (xs - mean[:, None]) * rstd[:, None], 0.0)
    a = s * g
    a_bar = tl.sum(a, axis=1) / H
    axh = tl.sum(a * xh, axis=1) / H
    if WANT_DX:
        dx = rstd[:, None] * (a - a_bar[:, None] - xh * (axh + m * rstd * a_bar)[:, None])
        tl.store(DX + r[:, None] * H + c[None, :], dx.to(DX.dtype.element_ty), mask=live)
    ds = tl.sum(tl.sum(g * (xh + m * rstd[:, None]), axis=1), axis=0)
    dm = tl.sum(tl.sum(g, axis=1) * s * rstd, axis=0)
    tl.store(PART + tl.program_id(0) * 2, ds)
    tl.store(PART + tl.program_id(0) * 2 + 1, dm)


def _blocks(H: int) -> tuple[int, int]:
    BH = next_power_of_2(H)
    return max(1, TILE // BH), BH


class _ScalarNorm(torch.autograd.Function):
    """x (rows, H) contiguous -> y; backward from the saved x and each row's μ and r. Once differentiable: a second
    derivative (create_graph) raises, where the PyTorch reference's ops would give it; so does torch.func's vmap."""

    @staticmethod
    def forward(ctx, x, s, m, eps):
        rows, H = x.shape
        BR, BH = _blocks(H)
        y = torch.empty_like(x)
        mean = torch.empty(rows, device=x.device, dtype=torch.float32)
        rstd = torch.empty_like(mean)
        _forward_kernel[(cdiv(rows, BR),)](x, y, mean, rstd, s, m, rows, H, eps, BR=BR, BH=BH,
                                            num_warps=4)
        ctx.save_for_backward(x, s, m, mean, rstd)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, s, m, mean, rstd = ctx.saved_tensors
        rows, H = x.shape
        BR, BH = _blocks(H)
        programs = cdiv(rows, BR)
        want_dx = ctx.needs_input_grad[0]
        dx = torch.empty_like(x) if want_dx else None
        part = torch.empty(programs, 2, device=x.device, dtype=torch.float32)
        _backward_kernel[(programs,)](x, dy.contiguous(), mean, rstd, s, m, x if dx is None else dx, part, rows, H,
                                      BR=BR, BH=BH, WANT_DX=want_dx, num_warps=4)
        sums = part.sum(0)
        return dx, sums[:1].to(s.dtype), sums[1:].to(m.dtype), None


@register("scalar_norm", "triton")
def scalar_norm_triton(x, s, m, eps):
    """Rows of float32, bfloat16 or float16 up to MAX_H long with float32 s and m; anything else (float64, longer
    rows, empty inputs) takes the reference."""
    H = x.shape[-1]
    if (x.dtype not in (torch.float32, torch.bfloat16, torch.float16) or not s.dtype == m.dtype == torch.float32
            or H == 0 or H > MAX_H or x.numel() == 0):
        return scalar_norm_torch(x, s, m, eps)
    return _ScalarNorm.apply(x.reshape(-1, H).contiguous(), s, m, eps).view(x.shape)
