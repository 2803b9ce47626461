"""Triton version of ops.vandermonde: out[b, l] = Σ_n v_bn·exp(l·x_bn), l < L, forward and backward, complex64 or
complex128 (real and imaginary parts as separate float32 / float64 numbers).

No (rows, N, L) table of powers is stored: a program forms one (BL positions × BN modes) tile of exp(l·x) at a time.
- forward: one program per (row, block of positions), walking the modes;
- backward: one program per (row, block of modes), walking the positions:
      ∂v = Σ_l conj(E_l)·g_l,   ∂x = conj(v)·Σ_l l·conj(E_l)·g_l,   E_l = exp(l·x).
The phase l·Im x is formed and reduced modulo 2π in float64 before its cosine and sine are taken in the inputs'
precision, so a float32 kernel keeps its phases accurate at long L (a float32 product l·Im x at l = 65536 would carry
errors of ~1e-2 rad where Im x is ~10). On an H200 at 256 rows, forward + backward, it is 2.3-6.5× the torch
reference in complex64 and 1.2-2.4× in complex128 (benchmarks/kernel_sums.py; docs/speed.md).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._triton_sums import as_rows, gradients, load_pairs, mode_block, store_gradients, tile_side
from .dispatch import register
from .grid_math import cdiv

BL, BN, WARPS = 64, 32, 4  # the largest tile (positions × modes) and its warps


@triton.jit
def _powers(X, row, l0, n0, L, N, BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """exp(l·x) on a tile (BLK_L, BLK_N), zero outside it, with the indices and masks of its positions and modes."""
    rl = l0 + tl.arange(0, BLK_L)
    rn = n0 + tl.arange(0, BLK_N)
    ml, mn = rl < L, rn < N
    xr, xi = load_pairs(X + row * 2 * N, rn, mn)
    two_pi = tl.full([1], 6.283185307179586, tl.float64)  # a bare literal would be a float32 constant
    theta = xi.to(tl.float64)
    theta = theta - two_pi * tl.floor(theta / two_pi + 0.5)  # Im x in [−π, π)
    phase = rl.to(tl.float64)[:, None] * theta[None, :]
    phase = (phase - two_pi[None, :] * tl.floor(phase / two_pi[None, :] + 0.5)).to(xr.dtype)
    m = ml[:, None] & mn[None, :]
    mag = tl.where(m, tl.exp(rl.to(xr.dtype)[:, None] * xr[None, :]), 0.0)
    return mag * tl.cos(phase), mag * tl.sin(phase), rl, rn, ml, mn


@triton.jit
def _forward_kernel(X, V, OUT, L, N, BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """OUT[row, l] = Σ_n v_n exp(l x_n)."""
    row = tl.program_id(0)
    l0 = tl.program_id(1) * BLK_L
    rl = l0 + tl.arange(0, BLK_L)
    accr = tl.zeros([BLK_L], dtype=tl.float32).to(X.dtype.element_ty)
    acci = accr
    for n0 in range(0, N, BLK_N):
        er, ei, rl, rn, ml, mn = _powers(X, row, l0, n0, L, N, BLK_L, BLK_N)
        vr, vi = load_pairs(V + row * 2 * N, rn, mn)
        vr, vi = vr[None, :], vi[None, :]
        accr += tl.sum(vr * er - vi * ei, axis=1)
        acci += tl.sum(vr * ei + vi * er, axis=1)
    tl.store(OUT + row * 2 * L + 2 * rl, accr, mask=rl < L)
    tl.store(OUT + row * 2 * L + 2 * rl + 1, acci, mask=rl < L)


@triton.jit
def _backward_kernel(X, V, G, GV, GX, L, N, BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """GV[row, n] = Σ_l conj(E) g; GX[row, n] = conj(v)·Σ_l l·conj(E) g."""
    row, n0, rn, mn, vr, vi = mode_block(V, N, BLK_N)
    svr = vr * 0.0
    svi, sxr, sxi = svr, svr, svr
    for l0 in range(0, L, BLK_L):
        er, ei, rl, _, ml, _ = _powers(X, row, l0, n0, L, N, BLK_L, BLK_N)
        gr, gi = load_pairs(G + row * 2 * L, rl, ml)
        gr, gi = gr[:, None], gi[:, None]
        cr, ci = er * gr + ei * gi, er * gi - ei * gr  # conj(E)·g
        lf = rl.to(er.dtype)[:, None]
        svr += tl.sum(cr, axis=0)
        svi += tl.sum(ci, axis=0)
        sxr += tl.sum(lf * cr, axis=0)
        sxi += tl.sum(lf * ci, axis=0)
    store_gradients(GV, GX, row, N, rn, mn, vr, vi, svr, svi, sxr, sxi)


class _VandermondeTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, x, L):
        batch, V, X = as_rows(v, x)
        rows, N = batch.numel(), v.shape[-1]
        out = torch.empty(*batch, L, 2, device=v.device, dtype=V.dtype)
        if rows:
            bl = tile_side(L, BL)
            _forward_kernel[(rows, cdiv(L, bl))](X, V, out, L, N, BLK_L=bl, BLK_N=tile_side(N, BN),
                                                 num_warps=WARPS)
        ctx.save_for_backward(V, X)
        ctx.shapes = (batch, v.shape, x.shape, L)
        return torch.view_as_complex(out)

    @staticmethod
    def backward(ctx, g):
        V, X = ctx.saved_tensors
        batch, v_shape, x_shape, L = ctx.shapes
        rows, N = batch.numel(), V.shape[-2]
        G = torch.view_as_real(g.to(V.dtype.to_complex()).contiguous())
        gv, gx = torch.zeros_like(V), torch.zeros_like(V)  # (*batch, N, 2)
        if rows:
            bn = tile_side(N, BN)
            _backward_kernel[(rows, cdiv(N, bn))](X, V, G, gv, gx, L, N, BLK_L=tile_side(L, BL), BLK_N=bn,
                                                  num_warps=WARPS)
        return (*gradients(gv, gx, v_shape, x_shape, ctx.needs_input_grad[:2]), None)


@register("vandermonde", "triton")
def vandermonde_triton(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    return _VandermondeTriton.apply(v, x, L)
