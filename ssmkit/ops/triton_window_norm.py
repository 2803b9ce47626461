"""Triton version of ops.window_norm: BatchNorm over the channels of x (B, L, H) with the statistics of each row's
first ``count`` positions (the formulas and the gradients in ops/window_norm.py).

x is read as rows r = b·L + l of H channels, in (BR, BH) tiles, as x − x₀ (x₀ = x[0, 0], a position of the window:
a channel far from zero, h = 1000 + N(0, 1), keeps float32's accuracy in μ, where a plain float32 sum loses ~1e-4).
Forward: each tile's count of window rows, and its channels' mean and sum of squared deviations over them (centered
within the tile, in float32); one small kernel merges the tiles by Chan's rule; then y = (x − μ) a + β,
a = γ/√(σ² + ε), written in x's dtype. Backward: each tile's Σ ġ and Σ ġ x̂ per channel, summed over the tiles by
a small kernel, then ∂L/∂x = a ġ − w (p + q (x − μ)) with per-channel p = a ∂L/∂β / n, q = a s ∂L/∂γ / n. Four
passes over x in all, against about forty for the reference's autograd, in six launches (the merges were ~20 small
PyTorch ops). ``count`` is read on the device.
float32, bfloat16 and float16 x with float32 γ and β; anything else (float64, empty inputs) takes the reference.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from .dispatch import register
from .grid_math import cdiv, next_power_of_2
from .window_norm import window_norm_torch

TILE = 8192  # elements of a program's tile (BR rows × BH channels)
MAX_BH = 128
MERGE_ROWS, MERGE_BH = 32, 32  # the merge programs' blocks: tiles' partial rows read at once, channels per program


@triton.jit
def _tile(X, rows, H, BR: tl.constexpr, BH: tl.constexpr):
    """This program's rows r (BR,), channels c (BH,), the live mask and x − x₀ (float32, 0 where dead; x₀ = row 0)."""
    r = (tl.program_id(0) * BR + tl.arange(0, BR)).to(tl.int64)
    c = tl.program_id(1) * BH + tl.arange(0, BH)
    live = (r < rows)[:, None] & (c < H)[None, :]
    x = tl.load(X + r[:, None] * H + c[None, :], mask=live, other=0.0).to(tl.float32)
    x0 = tl.load(X + c, mask=c < H, other=0.0).to(tl.float32)
    return r, c, live, tl.where(live, x - x0[None, :], 0.0)


@triton.jit(do_not_specialize=["rows", "L"])
def _stats_kernel(X, COUNT, MEANS, M2S, KS, rows, L, H, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, x = _tile(X, rows, H, BR, BH)
    in_window = (r < rows) & (r % L < tl.load(COUNT))
    window = in_window[:, None] & live
    k = tl.sum(in_window.to(tl.float32), axis=0)
    mean = tl.sum(tl.where(window, x, 0.0), axis=0) / tl.maximum(k, 1.0)
    d = tl.where(window, x - mean[None, :], 0.0)
    t = tl.program_id(0)
    tl.store(MEANS + t * H + c, mean, mask=c < H)
    tl.store(M2S + t * H + c, tl.sum(d * d, axis=0), mask=c < H)
    if tl.program_id(1) == 0:
        tl.store(KS + t, k)


@triton.jit(do_not_specialize=["rows"])
def _scale_kernel(X, Y, MEAN, A, BIAS, rows, H, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, x = _tile(X, rows, H, BR, BH)
    mean = tl.load(MEAN + c, mask=c < H, other=0.0)
    a = tl.load(A + c, mask=c < H, other=0.0)
    bias = tl.load(BIAS + c, mask=c < H, other=0.0)
    y = (x - mean[None, :]) * a[None, :] + bias[None, :]
    tl.store(Y + r[:, None] * H + c[None, :], y.to(Y.dtype.element_ty), mask=live)


@triton.jit(do_not_specialize=["rows"])
def _grad_sums_kernel(X, G, MEAN, INV, PART, rows, H, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, x = _tile(X, rows, H, BR, BH)
    g = tl.load(G + r[:, None] * H + c[None, :], mask=live, other=0.0).to(tl.float32)
    mean = tl.load(MEAN + c, mask=c < H, other=0.0)
    inv = tl.load(INV + c, mask=c < H, other=0.0)
    xh = tl.where(live, (x - mean[None, :]) * inv[None, :], 0.0)
    t = tl.program_id(0)
    tl.store(PART + 2 * t * H + c, tl.sum(g, axis=0), mask=c < H)
    tl.store(PART + (2 * t + 1) * H + c, tl.sum(g * xh, axis=0), mask=c < H)


@triton.jit(do_not_specialize=["rows", "L"])
def _dx_kernel(X, G, DX, COUNT, MEAN, A, P, Q, rows, L, H, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, x = _tile(X, rows, H, BR, BH)
    g = tl.load(G + r[:, None] * H + c[None, :], mask=live, other=0.0).to(tl.float32)
    in_window = (r % L < tl.load(COUNT))[:, None]
    mean = tl.load(MEAN + c, mask=c < H, other=0.0)[None, :]
    a = tl.load(A + c, mask=c < H, other=0.0)[None, :]
    p = tl.load(P + c, mask=c < H, other=0.0)[None, :]
    q = tl.load(Q + c, mask=c < H, other=0.0)[None, :]
    dx = a * g - tl.where(in_window, p + q * (x - mean), 0.0)
    tl.store(DX + r[:, None] * H + c[None, :], dx.to(DX.dtype.element_ty), mask=live)


@triton.jit(do_not_specialize=["tiles"])
def _merge_kernel(X, MEANS, M2S, KS, WEIGHT, MEAN, VAR, INV, A, TRUE_MEAN, N, tiles, H, eps, BT: tl.constexpr,
                  BH: tl.constexpr):
    """Chan's merge of the tiles' (count k, mean, M2) per channel: n = Σ k, μ = Σ k·mean / n (of x − x₀),
    σ² = (Σ M2 + Σ k (mean − μ)²) / n; then 1/√(σ² + ε), a = γ/√(σ² + ε), and x₀ + μ."""
    c = tl.program_id(0) * BH + tl.arange(0, BH)
    cm = c < H
    n = tl.zeros([BH], dtype=tl.float32)
    s1 = tl.zeros([BH], dtype=tl.float32)
    for t0 in range(0, tiles, BT):
        t = t0 + tl.arange(0, BT)
        k = tl.load(KS + t, mask=t < tiles, other=0.0)
        m = tl.load(MEANS + t[:, None] * H + c[None, :], mask=(t < tiles)[:, None] & cm[None, :], other=0.0)
        n += tl.sum(k, axis=0)
        s1 += tl.sum(k[:, None] * m, axis=0)
    mean = s1 / n
    m2 = tl.zeros([BH], dtype=tl.float32)
    for t0 in range(0, tiles, BT):
        t = t0 + tl.arange(0, BT)
        live = (t < tiles)[:, None] & cm[None, :]
        k = tl.load(KS + t, mask=t < tiles, other=0.0)
        d = tl.load(MEANS + t[:, None] * H + c[None, :], mask=live, other=0.0) - mean[None, :]
        m2 += tl.sum(tl.load(M2S + t[:, None] * H + c[None, :], mask=live, other=0.0) + k[:, None] * d * d, axis=0)
    var = m2 / n
    inv = 1.0 / tl.sqrt(var + eps)
    a = tl.load(WEIGHT + c, mask=cm, other=0.0) * inv
    tl.store(MEAN + c, mean, mask=cm)
    tl.store(VAR + c, var, mask=cm)
    tl.store(INV + c, inv, mask=cm)
    tl.store(A + c, a, mask=cm)
    tl.store(TRUE_MEAN + c, tl.load(X + c, mask=cm, other=0.0).to(tl.float32) + mean, mask=cm)
    tl.store(N + tl.arange(0, BH), n, mask=(tl.arange(0, BH) < 1) & (tl.program_id(0) == 0))


@triton.jit(do_not_specialize=["tiles"])
def _grad_merge_kernel(PART, A, INV, N, DBIAS, DWEIGHT, P, Q, tiles, H, BT: tl.constexpr, BH: tl.constexpr):
    """∂L/∂β = Σ ġ and ∂L/∂γ = Σ ġ x̂ from the tiles' partial sums, and the scales of ∂L/∂x: p = a ∂L/∂β / n,
    q = a s ∂L/∂γ / n."""
    c = tl.program_id(0) * BH + tl.arange(0, BH)
    cm = c < H
    g1 = tl.zeros([BH], dtype=tl.float32)
    g2 = tl.zeros([BH], dtype=tl.float32)
    for t0 in range(0, tiles, BT):
        t = t0 + tl.arange(0, BT)
        live = (t < tiles)[:, None] & cm[None, :]
        g1 += tl.sum(tl.load(PART + 2 * t[:, None] * H + c[None, :], mask=live, other=0.0), axis=0)
        g2 += tl.sum(tl.load(PART + (2 * t[:, None] + 1) * H + c[None, :], mask=live, other=0.0), axis=0)
    n = tl.load(N)
    a = tl.load(A + c, mask=cm, other=0.0)
    tl.store(DBIAS + c, g1, mask=cm)
    tl.store(DWEIGHT + c, g2, mask=cm)
    tl.store(P + c, a * g1 / n, mask=cm)
    tl.store(Q + c, a * tl.load(INV + c, mask=cm, other=0.0) * g2 / n, mask=cm)


def _grid(rows: int, H: int) -> tuple[int, int, tuple[int, int]]:
    BH = min(next_power_of_2(H), MAX_BH)
    BR = TILE // BH
    return BR, BH, (cdiv(rows, BR), cdiv(H, BH))


class _WindowNorm(torch.autograd.Function):
    """x (B, L, H) contiguous -> (y, μ, σ²); backward from the saved x, μ and the per-channel scales. Once
    differentiable: a second derivative raises, where the reference's ops would give it."""

    @staticmethod
    def forward(ctx, x, count, weight, bias, eps):
        B, L, H = x.shape
        rows = B * L
        BR, BH, grid = _grid(rows, H)
        means = torch.empty(grid[0], H, device=x.device, dtype=torch.float32)
        m2s, ks = torch.empty_like(means), torch.empty(grid[0], device=x.device, dtype=torch.float32)
        _stats_kernel[grid](x, count, means, m2s, ks, rows, L, H, BR=BR, BH=BH, num_warps=4)
        mean, var, inv, a, true_mean = torch.empty(5, H, device=x.device, dtype=torch.float32)
        n = torch.empty(1, device=x.device, dtype=torch.float32)
        _merge_kernel[(cdiv(H, MERGE_BH),)](x, means, m2s, ks, weight, mean, var, inv, a, true_mean, n, grid[0],
                                            H, eps, BT=MERGE_ROWS, BH=MERGE_BH, num_warps=4)
        y = torch.empty_like(x)
        _scale_kernel[grid](x, y, mean, a, bias, rows, H, BR=BR, BH=BH, num_warps=4)
        ctx.save_for_backward(x, count, mean, inv, a, n)
        ctx.mark_non_differentiable(true_mean, var)
        return y, true_mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _mean, _var):
        x, count, mean, inv, a, n = ctx.saved_tensors
        B, L, H = x.shape
        rows = B * L
        BR, BH, grid = _grid(rows, H)
        dy = dy.contiguous()
        part = torch.empty(grid[0], 2, H, device=x.device, dtype=torch.float32)
        _grad_sums_kernel[grid](x, dy, mean, inv, part, rows, H, BR=BR, BH=BH, num_warps=4)
        dbias, dweight, p, q = torch.empty(4, H, device=x.device, dtype=torch.float32)
        _grad_merge_kernel[(cdiv(H, MERGE_BH),)](part, a, inv, n, dbias, dweight, p, q, grid[0], H,
                                                 BT=MERGE_ROWS, BH=MERGE_BH, num_warps=4)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.empty_like(x)
            _dx_kernel[grid](x, dy, dx, count, mean, a, p, q, rows, L, H, BR=BR, BH=BH, num_warps=4)
        return dx, None, dweight, dbias, None


@register("window_norm", "triton")
def window_norm_triton(x, count, weight, bias, eps):
    if (x.dtype not in (torch.float32, torch.bfloat16, torch.float16) or not weight.dtype == bias.dtype == torch.float32
            or x.numel() == 0):
        return window_norm_torch(x, count, weight, bias, eps)
    return _WindowNorm.apply(x.contiguous(), count, weight, bias, eps)
