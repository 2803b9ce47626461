"""Triton version of ops.window_norm: BatchNorm over the channels of x (B, L, H) with the statistics of each row's
first ``count`` positions (the formulas and the gradients in ops/window_norm.py).

x is read as rows r = b·L + l of H channels, in (BR, BH) tiles, as x − x₀ (x₀ = x[0, 0], a position of the window:
a channel far from zero, h = 1000 + N(0, 1), keeps float32's accuracy in μ, where a plain float32 sum loses ~1e-4).
Forward: each tile's count of window rows, and its channels' mean and sum of squared deviations over them (centered
within the tile, in float32); the tiles are merged by Chan's rule (a few PyTorch ops over (tiles, H)); then
y = (x − μ) a + β, a = γ/√(σ² + ε), written in x's dtype. Backward: each tile's Σ ġ and Σ ġ x̂ per channel, summed over
the tiles by PyTorch, then ∂L/∂x = a ġ − w (p + q (x − μ)) with per-channel p = a ∂L/∂β / n, q = a s ∂L/∂γ / n. Four
passes over x in all, against about forty for the reference's autograd. ``count`` is read on the device.
float32, bfloat16 and float16 x with float32 γ and β; anything else (float64, empty inputs) takes the reference.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from .dispatch import register
from .window_norm import window_norm_torch

TILE = 8192  # elements of a program's tile (BR rows × BH channels)
MAX_BH = 128


@triton.jit
def _tile(X, SHIFT, rows, H, BR: tl.constexpr, BH: tl.constexpr):
    """This program's rows r (BR,), channels c (BH,), the live mask and x − x₀ (float32, 0 where dead)."""
    r = (tl.program_id(0) * BR + tl.arange(0, BR)).to(tl.int64)
    c = tl.program_id(1) * BH + tl.arange(0, BH)
    live = (r < rows)[:, None] & (c < H)[None, :]
    x = tl.load(X + r[:, None] * H + c[None, :], mask=live, other=0.0).to(tl.float32)
    x0 = tl.load(SHIFT + c, mask=c < H, other=0.0)
    return r, c, live, tl.where(live, x - x0[None, :], 0.0)


@triton.jit(do_not_specialize=["rows", "L"])
def _stats_kernel(X, SHIFT, COUNT, MEANS, M2S, KS, rows, L, H, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, x = _tile(X, SHIFT, rows, H, BR, BH)
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
def _scale_kernel(X, SHIFT, Y, MEAN, A, BIAS, rows, H, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, x = _tile(X, SHIFT, rows, H, BR, BH)
    mean = tl.load(MEAN + c, mask=c < H, other=0.0)
    a = tl.load(A + c, mask=c < H, other=0.0)
    bias = tl.load(BIAS + c, mask=c < H, other=0.0)
    y = (x - mean[None, :]) * a[None, :] + bias[None, :]
    tl.store(Y + r[:, None] * H + c[None, :], y.to(Y.dtype.element_ty), mask=live)


@triton.jit(do_not_specialize=["rows"])
def _grad_sums_kernel(X, SHIFT, G, MEAN, INV, PART, rows, H, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, x = _tile(X, SHIFT, rows, H, BR, BH)
    g = tl.load(G + r[:, None] * H + c[None, :], mask=live, other=0.0).to(tl.float32)
    mean = tl.load(MEAN + c, mask=c < H, other=0.0)
    inv = tl.load(INV + c, mask=c < H, other=0.0)
    xh = tl.where(live, (x - mean[None, :]) * inv[None, :], 0.0)
    t = tl.program_id(0)
    tl.store(PART + 2 * t * H + c, tl.sum(g, axis=0), mask=c < H)
    tl.store(PART + (2 * t + 1) * H + c, tl.sum(g * xh, axis=0), mask=c < H)


@triton.jit(do_not_specialize=["rows", "L"])
def _dx_kernel(X, SHIFT, G, DX, COUNT, MEAN, A, P, Q, rows, L, H, BR: tl.constexpr, BH: tl.constexpr):
    r, c, live, x = _tile(X, SHIFT, rows, H, BR, BH)
    g = tl.load(G + r[:, None] * H + c[None, :], mask=live, other=0.0).to(tl.float32)
    in_window = (r % L < tl.load(COUNT))[:, None]
    mean = tl.load(MEAN + c, mask=c < H, other=0.0)[None, :]
    a = tl.load(A + c, mask=c < H, other=0.0)[None, :]
    p = tl.load(P + c, mask=c < H, other=0.0)[None, :]
    q = tl.load(Q + c, mask=c < H, other=0.0)[None, :]
    dx = a * g - tl.where(in_window, p + q * (x - mean), 0.0)
    tl.store(DX + r[:, None] * H + c[None, :], dx.to(DX.dtype.element_ty), mask=live)


def _grid(rows: int, H: int) -> tuple[int, int, tuple[int, int]]:
    BH = min(triton.next_power_of_2(H), MAX_BH)
    BR = TILE // BH
    return BR, BH, (triton.cdiv(rows, BR), triton.cdiv(H, BH))


class _WindowNorm(torch.autograd.Function):
    """x (B, L, H) contiguous -> (y, μ, σ²); backward from the saved x, μ and the per-channel scales. Once
    differentiable: a second derivative raises, where the reference's ops would give it."""

    @staticmethod
    def forward(ctx, x, count, weight, bias, eps):
        B, L, H = x.shape
        rows = B * L
        BR, BH, grid = _grid(rows, H)
        means = torch.empty(grid[0], H, device=x.device, dtype=torch.float32)
        m2s, ks = torch.empty_like(means), torch.empty(grid[0], 1, device=x.device, dtype=torch.float32)
        shift = x[0, 0].float()  # x₀: a position of the window (count ≥ 1), so that the sums are of small numbers
        _stats_kernel[grid](x, shift, count, means, m2s, ks, rows, L, H, BR=BR, BH=BH, num_warps=4)
        n = ks.sum()
        mean = (ks * means).sum(0) / n
        var = (m2s.sum(0) + (ks * (means - mean).square()).sum(0)) / n  # Chan's merge of the tiles
        inv = torch.rsqrt(var + eps)
        a = weight * inv
        y = torch.empty_like(x)
        _scale_kernel[grid](x, shift, y, mean, a, bias, rows, H, BR=BR, BH=BH, num_warps=4)
        ctx.save_for_backward(x, shift, count, mean, inv, a, n)
        mean = shift + mean
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, _mean, _var):
        x, shift, count, mean, inv, a, n = ctx.saved_tensors
        B, L, H = x.shape
        rows = B * L
        BR, BH, grid = _grid(rows, H)
        dy = dy.contiguous()
        part = torch.empty(grid[0], 2, H, device=x.device, dtype=torch.float32)
        _grad_sums_kernel[grid](x, shift, dy, mean, inv, part, rows, H, BR=BR, BH=BH, num_warps=4)
        dbias, dweight = part.sum(0)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.empty_like(x)
            _dx_kernel[grid](x, shift, dy, dx, count, mean, a, a * dbias / n, a * inv * dweight / n, rows, L, H, BR=BR,
                             BH=BH, num_warps=4)
        return dx, None, dweight, dbias, None


@register("window_norm", "triton")
def window_norm_triton(x, count, weight, bias, eps):
    if (x.dtype not in (torch.float32, torch.bfloat16, torch.float16) or not weight.dtype == bias.dtype == torch.float32
            or x.numel() == 0):
        return window_norm_torch(x, count, weight, bias, eps)
    return _WindowNorm.apply(x.contiguous(), count, weight, bias, eps)
