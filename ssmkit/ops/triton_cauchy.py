"""Triton version of ops.cauchy: out[b, l] = Σ_n v_bn/(z_bl − w_bn) + v̄_bn/(z_bl − w̄_bn), forward and backward,
complex64 or complex128 (real and imaginary parts as separate float32 / float64 numbers; the arithmetic runs in the
inputs' precision).

No (rows, N, L) intermediate is stored: a program holds one (BL points × BN poles) tile of reciprocals at a time.
- forward and ∂z: one program per (row, block of points), walking the poles;
- ∂v and ∂w: one program per (row, block of poles), walking the points:
      ∂v = Σ_l conj(r1)·g + r2·conj(g),   ∂w = conj(v)·Σ_l conj(r1²)·g + r2²·conj(g),
      ∂z = −conj(Σ_n v·r1² + v̄·r2²)·g,     r1 = 1/(z − w), r2 = 1/(z − w̄)
  (PyTorch's convention for complex gradients: ∂x = conj(∂out/∂x)·g + (∂out/∂x̄)·conj(g)).
An operand whose batch dimensions are all 1 (the S4 kernel's roots of unity, shared by every row) is read with a
row stride of 0, not copied per row; others are expanded to the full batch.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._chunks import sum_to_shape
from .dispatch import register

BL, BN, WARPS = 64, 32, 4


@triton.jit
def _recip(re, im):
    """1/(re + i·im)."""
    d = re * re + im * im
    return re / d, -im / d


@triton.jit
def _mul(ar, ai, br, bi):
    return ar * br - ai * bi, ar * bi + ai * br


@triton.jit
def _tile(Z, W, V, row, l0, n0, L, N, szb, swb, svb, BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """A tile's reciprocals r1 = 1/(z − w), r2 = 1/(z − w̄) (BLK_L, BLK_N), v, and the masks of its points and poles."""
    rl = l0 + tl.arange(0, BLK_L)
    rn = n0 + tl.arange(0, BLK_N)
    ml, mn = rl < L, rn < N
    zr = tl.load(Z + row * szb + 2 * rl, mask=ml, other=0.0)
    zi = tl.load(Z + row * szb + 2 * rl + 1, mask=ml, other=0.0)
    wr = tl.load(W + row * swb + 2 * rn, mask=mn, other=1.0)  # a masked pole sits away from a masked point (0)
    wi = tl.load(W + row * swb + 2 * rn + 1, mask=mn, other=0.0)
    vr = tl.load(V + row * svb + 2 * rn, mask=mn, other=0.0)
    vi = tl.load(V + row * svb + 2 * rn + 1, mask=mn, other=0.0)
    m = ml[:, None] & mn[None, :]
    dr = zr[:, None] - wr[None, :]
    dr = tl.where(m, dr, 1.0)
    r1r, r1i = _recip(dr, tl.where(m, zi[:, None] - wi[None, :], 0.0))
    r2r, r2i = _recip(dr, tl.where(m, zi[:, None] + wi[None, :], 0.0))
    return r1r, r1i, r2r, r2i, vr, vi, rl, rn, ml, mn


@triton.jit
def _points_kernel(Z, W, V, G, OUT, GZ, L, N, szb, swb, svb, GRAD: tl.constexpr,
                   BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """Forward (GRAD false): OUT[row, l] = Σ_n v r1 + v̄ r2. GRAD: GZ[row, l] = −conj(Σ_n v r1² + v̄ r2²)·g."""
    row = tl.program_id(0)
    l0 = tl.program_id(1) * BLK_L
    rl = l0 + tl.arange(0, BLK_L)
    ml = rl < L
    accr = tl.zeros([BLK_L], dtype=tl.float32).to(Z.dtype.element_ty)
    acci = tl.zeros([BLK_L], dtype=tl.float32).to(Z.dtype.element_ty)
    for n0 in range(0, N, BLK_N):
        r1r, r1i, r2r, r2i, vr, vi, rl, rn, ml, mn = _tile(Z, W, V, row, l0, n0, L, N, szb, swb, svb, BLK_L, BLK_N)
        if GRAD:
            r1r, r1i = _mul(r1r, r1i, r1r, r1i)
            r2r, r2i = _mul(r2r, r2i, r2r, r2i)
        # v·r1 + v̄·r2
        accr += tl.sum(vr[None, :] * (r1r + r2r) - vi[None, :] * (r1i - r2i), axis=1)
        acci += tl.sum(vr[None, :] * (r1i + r2i) + vi[None, :] * (r1r - r2r), axis=1)
    if GRAD:
        gr = tl.load(G + row * 2 * L + 2 * rl, mask=ml, other=0.0)
        gi = tl.load(G + row * 2 * L + 2 * rl + 1, mask=ml, other=0.0)
        outr, outi = _mul(-accr, acci, gr, gi)
        tl.store(GZ + row * 2 * L + 2 * rl, outr, mask=ml)
        tl.store(GZ + row * 2 * L + 2 * rl + 1, outi, mask=ml)
    else:
        tl.store(OUT + row * 2 * L + 2 * rl, accr, mask=ml)
        tl.store(OUT + row * 2 * L + 2 * rl + 1, acci, mask=ml)


@triton.jit
def _poles_kernel(Z, W, V, G, GV, GW, L, N, szb, swb, svb, BLK_L: tl.constexpr, BLK_N: tl.constexpr):
    """GV[row, n] = Σ_l conj(r1) g + r2 conj(g); GW[row, n] = conj(v)·Σ_l conj(r1²) g + r2² conj(g)."""
    row = tl.program_id(0)
    n0 = tl.program_id(1) * BLK_N
    rn = n0 + tl.arange(0, BLK_N)
    mn = rn < N
    vr = tl.load(V + row * svb + 2 * rn, mask=mn, other=0.0)
    vi = tl.load(V + row * svb + 2 * rn + 1, mask=mn, other=0.0)
    svr = vr * 0.0
    svi, swr, swi = svr, svr, svr
    for l0 in range(0, L, BLK_L):
        r1r, r1i, r2r, r2i, vr, vi, rl, rn, ml, mn = _tile(Z, W, V, row, l0, n0, L, N, szb, swb, svb, BLK_L, BLK_N)
        gr = tl.load(G + row * 2 * L + 2 * rl, mask=ml, other=0.0)[:, None]
        gi = tl.load(G + row * 2 * L + 2 * rl + 1, mask=ml, other=0.0)[:, None]
        # conj(r)·g and r·conj(g): (rr gr + ri gi) ± i (rr gi − ri gr)
        svr += tl.sum(r1r * gr + r1i * gi + r2r * gr + r2i * gi, axis=0)
        svi += tl.sum(r1r * gi - r1i * gr - r2r * gi + r2i * gr, axis=0)
        q1r, q1i = _mul(r1r, r1i, r1r, r1i)
        q2r, q2i = _mul(r2r, r2i, r2r, r2i)
        swr += tl.sum(q1r * gr + q1i * gi + q2r * gr + q2i * gi, axis=0)
        swi += tl.sum(q1r * gi - q1i * gr - q2r * gi + q2i * gr, axis=0)
    tl.store(GV + row * 2 * N + 2 * rn, svr, mask=mn)
    tl.store(GV + row * 2 * N + 2 * rn + 1, svi, mask=mn)
    wr, wi = _mul(vr, -vi, swr, swi)
    tl.store(GW + row * 2 * N + 2 * rn, wr, mask=mn)
    tl.store(GW + row * 2 * N + 2 * rn + 1, wi, mask=mn)


def _rows(t: torch.Tensor, batch: torch.Size, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
    """t (..., K) as interleaved (re, im) numbers per row of the batch, and its row stride: 0 when every row shares
    it (its batch dimensions are all 1), else expanded to the batch."""
    t = t.to(dtype)
    if all(d == 1 for d in t.shape[:-1]):
        return torch.view_as_real(t.reshape(t.shape[-1]).contiguous()), 0
    t = torch.view_as_real(t.expand(*batch, t.shape[-1]).contiguous())
    return t, 2 * t.shape[-2]


class _CauchyTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, z, w):
        dtype = torch.promote_types(torch.promote_types(v.dtype, w.dtype), z.dtype)
        batch = torch.broadcast_shapes(v.shape[:-1], w.shape[:-1], z.shape[:-1])
        rows, N, L = batch.numel(), v.shape[-1], z.shape[-1]
        (V, svb), (W, swb), (Z, szb) = (_rows(t, batch, dtype) for t in (v, w, z))
        out = torch.empty(*batch, L, 2, device=v.device, dtype=V.dtype)
        if rows:
            _points_kernel[(rows, triton.cdiv(L, BL))](Z, W, V, out, out, out, L, N, szb, swb, svb, GRAD=False,
                                                       BLK_L=BL, BLK_N=BN, num_warps=WARPS)
        ctx.save_for_backward(V, W, Z)
        ctx.meta = (svb, swb, szb, batch, N, L, v.shape, z.shape, w.shape)
        return torch.view_as_complex(out)

    @staticmethod
    def backward(ctx, g):
        V, W, Z = ctx.saved_tensors
        svb, swb, szb, batch, N, L, v_shape, z_shape, w_shape = ctx.meta
        rows = batch.numel()
        G = torch.view_as_real(g.to(V.dtype.to_complex()).contiguous())
        grad_v = grad_z = grad_w = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[2]:
            gv, gw = (torch.empty(*batch, N, 2, device=G.device, dtype=V.dtype) for _ in range(2))
            if rows:
                _poles_kernel[(rows, triton.cdiv(N, BN))](Z, W, V, G, gv, gw, L, N, szb, swb, svb, BLK_L=BL,
                                                          BLK_N=BN, num_warps=WARPS)
            grad_v = sum_to_shape(torch.view_as_complex(gv), v_shape) if ctx.needs_input_grad[0] else None
            grad_w = sum_to_shape(torch.view_as_complex(gw), w_shape) if ctx.needs_input_grad[2] else None
        if ctx.needs_input_grad[1]:
            gz = torch.empty(*batch, L, 2, device=G.device, dtype=V.dtype)
            if rows:
                _points_kernel[(rows, triton.cdiv(L, BL))](Z, W, V, G, gz, gz, L, N, szb, swb, svb, GRAD=True,
                                                           BLK_L=BL, BLK_N=BN, num_warps=WARPS)
            grad_z = sum_to_shape(torch.view_as_complex(gz), z_shape)
        return grad_v, grad_z, grad_w


@register("cauchy", "triton")
def cauchy_triton(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return _CauchyTriton.apply(v, z, w)
