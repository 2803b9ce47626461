"""Triton version of ops.cauchy: out[b, l] = Σ_n v_bn/(z_l − w_bn) + v̄_bn/(z_l − w̄_bn), forward and backward,
complex64 or complex128 (real and imaginary parts as separate float32 / float64 numbers; the arithmetic runs in the
inputs' precision).

No (rows, N, L) intermediate is stored: a program holds one (points × poles) tile of reciprocals at a time.
- forward: one program per (row, block of points), walking the poles;
- backward: one program per (row, block of poles), walking the points:
      ∂v = Σ_l conj(r1)·g + r2·conj(g),   ∂w = conj(v)·Σ_l conj(r1²)·g + r2²·conj(g),   r1 = 1/(z − w), r2 = 1/(z − w̄)
  (PyTorch's convention for complex gradients: ∂x = conj(∂out/∂x)·g + (∂out/∂x̄)·conj(g)).
v and w are expanded to the rows of the batch (N numbers each); the points z are shared by every row.
On an H200 at the S4 kernel's shapes (256 rows, forward + backward) this is 3.7-18× the torch reference in complex64
and 2.4-7× in complex128, more at longer L (benchmarks/kernel_sums.py; docs/speed.md).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._triton_sums import as_rows, gradients, load_pairs, mode_block, store_gradients, tile_side
from .dispatch import register
from .grid_math import cdiv

BL, BN, WARPS = 64, 32, 4  # the largest tile (points × poles) and its warps


@triton.jit
def _recip(re, im):
    """1/(re + i·im)."""
    d = re * re + im * im
    return re / d, -im / d


@triton.jit
def _tile(Z, W, V, row, l0, n0, L, N, BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """A tile's reciprocals r1 = 1/(z − w), r2 = 1/(z − w̄) (BLK_L, BLK_N), v, and the indices and masks of its
    points and poles (masked entries are 1 and add nothing: v is 0 there, and g in backward)."""
    rl = l0 + tl.arange(0, BLK_L)
    rn = n0 + tl.arange(0, BLK_N)
    ml, mn = rl < L, rn < N
    zr, zi = load_pairs(Z, rl, ml)
    wr, wi = load_pairs(W + row * 2 * N, rn, mn)
    vr, vi = load_pairs(V + row * 2 * N, rn, mn)
    m = ml[:, None] & mn[None, :]
    dr = tl.where(m, zr[:, None] - wr[None, :], 1.0)
    r1r, r1i = _recip(dr, tl.where(m, zi[:, None] - wi[None, :], 0.0))
    r2r, r2i = _recip(dr, tl.where(m, zi[:, None] + wi[None, :], 0.0))
    return r1r, r1i, r2r, r2i, vr, vi, rl, rn, ml, mn


@triton.jit
def _forward_kernel(Z, W, V, OUT, L, N, BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """OUT[row, l] = Σ_n v r1 + v̄ r2."""
    row = tl.program_id(0)
    l0 = tl.program_id(1) * BLK_L
    accr = tl.zeros([BLK_L], dtype=tl.float32).to(Z.dtype.element_ty)
    acci = accr
    for n0 in range(0, N, BLK_N):
        r1r, r1i, r2r, r2i, vr, vi, rl, rn, ml, mn = _tile(Z, W, V, row, l0, n0, L, N, BLK_L, BLK_N)
        accr += tl.sum(vr[None, :] * (r1r + r2r) - vi[None, :] * (r1i - r2i), axis=1)
        acci += tl.sum(vr[None, :] * (r1i + r2i) + vi[None, :] * (r1r - r2r), axis=1)
    rl = l0 + tl.arange(0, BLK_L)
    tl.store(OUT + row * 2 * L + 2 * rl, accr, mask=rl < L)
    tl.store(OUT + row * 2 * L + 2 * rl + 1, acci, mask=rl < L)


@triton.jit
def _backward_kernel(Z, W, V, G, GV, GW, L, N, BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """GV[row, n] = Σ_l conj(r1) g + r2 conj(g); GW[row, n] = conj(v)·Σ_l conj(r1²) g + r2² conj(g)."""
    row, n0, rn, mn, vr, vi = mode_block(V, N, BLK_N)
    svr = vr * 0.0
    svi, swr, swi = svr, svr, svr
    for l0 in range(0, L, BLK_L):
        r1r, r1i, r2r, r2i, _, _, rl, _, ml, _ = _tile(Z, W, V, row, l0, n0, L, N, BLK_L, BLK_N)
        gr, gi = load_pairs(G + row * 2 * L, rl, ml)
        gr, gi = gr[:, None], gi[:, None]
        # conj(r)·g + r'·conj(g) = (rr gr + ri gi + r'r gr + r'i gi) + i (rr gi − ri gr − r'r gi + r'i gr)
        svr += tl.sum(r1r * gr + r1i * gi + r2r * gr + r2i * gi, axis=0)
        svi += tl.sum(r1r * gi - r1i * gr - r2r * gi + r2i * gr, axis=0)
        q1r, q1i = r1r * r1r - r1i * r1i, 2 * r1r * r1i
        q2r, q2i = r2r * r2r - r2i * r2i, 2 * r2r * r2i
        swr += tl.sum(q1r * gr + q1i * gi + q2r * gr + q2i * gi, axis=0)
        swi += tl.sum(q1r * gi - q1i * gr - q2r * gi + q2i * gr, axis=0)
    store_gradients(GV, GW, row, N, rn, mn, vr, vi, svr, svi, swr, swi)


class _CauchyTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, z, w):
        batch, V, W = as_rows(v, w)
        rows, N, L = batch.numel(), v.shape[-1], z.shape[-1]
        Z = torch.view_as_real(z.to(V.dtype.to_complex()).contiguous())
        out = torch.empty(*batch, L, 2, device=v.device, dtype=V.dtype)
        if rows and L:
            bl = tile_side(L, BL)
            _forward_kernel[(rows, cdiv(L, bl))](Z, W, V, out, L, N, BLK_L=bl, BLK_N=tile_side(N, BN),
                                                 num_warps=WARPS)
        ctx.save_for_backward(V, W, Z)
        ctx.shapes = (batch, v.shape, w.shape)
        return torch.view_as_complex(out)

    @staticmethod
    def backward(ctx, g):
        V, W, Z = ctx.saved_tensors
        batch, v_shape, w_shape = ctx.shapes
        rows, N, L = batch.numel(), V.shape[-2], Z.shape[-2]
        G = torch.view_as_real(g.to(V.dtype.to_complex()).contiguous())
        gv, gw = torch.zeros_like(V), torch.zeros_like(V)  # (*batch, N, 2)
        if rows and L:
            bn = tile_side(N, BN)
            _backward_kernel[(rows, cdiv(N, bn))](Z, W, V, G, gv, gw, L, N, BLK_L=tile_side(L, BL), BLK_N=bn,
                                                  num_warps=WARPS)
        grad_v, grad_w = gradients(gv, gw, v_shape, w_shape, (ctx.needs_input_grad[0], ctx.needs_input_grad[2]))
        return grad_v, None, grad_w


@register("cauchy", "triton")
def cauchy_triton(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return _CauchyTriton.apply(v, z, w)
