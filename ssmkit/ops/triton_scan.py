"""Triton version of ops.scan (S5's recurrence x_k = a_k x_{k−1} + b_k over complex or real channels).

A program holds a block of channels of one batch row and walks the length in tiles of 64 steps: inside a tile
tl.associative_scan composes the pairs (a, b) ∘ (a', b') = (a'a, a'b + b') (complex arithmetic on (Re, Im)), and the
state carried from the previous tile enters as x = A_cum x_carry + B_cum. The gradient is the same scan run backwards,

    λ_k = g_k + conj(a_{k+1}) λ_{k+1},    ∂b_k = λ_k,    ∂a_k = λ_k conj(x_{k−1})

(PyTorch's convention for complex gradients). complex64 / float32; other dtypes take the reference.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import register
from .grid_math import cdiv, next_power_of_2
from .scan import scan_torch


@triton.jit
def _compose(ar1, ai1, br1, bi1, ar2, ai2, br2, bi2):
    return (ar2 * ar1 - ai2 * ai1, ar2 * ai1 + ai2 * ar1,
            ar2 * br1 - ai2 * bi1 + br2, ar2 * bi1 + ai2 * br1 + bi2)


@triton.jit(do_not_specialize=["L"])
def _scan_kernel(A, Bv, X, L, P, sab, sal, sap, sbb, sbl, sbp, COMPLEX: tl.constexpr, REVERSE: tl.constexpr,
                 BL: tl.constexpr, BP: tl.constexpr):
    """X[b, k] = A[b, k'] X[b, k_prev] + Bv[b, k] walking k forwards, or backwards with k' = k + 1 and conj(A)
    (REVERSE: the adjoint recurrence). Complex tensors are read as interleaved (Re, Im) floats."""
    b, rp = tl.program_id(0), tl.program_id(1) * BP + tl.arange(0, BP)
    mp = rp < P
    W: tl.constexpr = 2 if COMPLEX else 1
    cr = tl.zeros((BP,), dtype=tl.float32)
    ci = tl.zeros((BP,), dtype=tl.float32)
    t0 = 0
    while t0 < L:
        s = t0 + tl.arange(0, BL)  # step of the walk
        k = (L - 1 - s) if REVERSE else s
        ka = k + 1 if REVERSE else k  # the coefficient's index
        mk = (s < L)[:, None] & mp[None, :]
        ma = mk & (ka < L)[:, None]
        a_off = b * sab + ka[:, None] * sal + rp[None, :] * sap
        b_off = b * sbb + k[:, None] * sbl + rp[None, :] * sbp
        ar = tl.load(A + W * a_off, mask=ma, other=0.0)
        br = tl.load(Bv + W * b_off, mask=mk, other=0.0)
        if COMPLEX:
            ai = tl.load(A + W * a_off + 1, mask=ma, other=0.0)
            bi = tl.load(Bv + W * b_off + 1, mask=mk, other=0.0)
            if REVERSE:
                ai = -ai
        else:
            ai = ar * 0.0
            bi = br * 0.0
        Ar, Ai, Br, Bi = tl.associative_scan((ar, ai, br, bi), axis=0, combine_fn=_compose)
        xr = Ar * cr[None, :] - Ai * ci[None, :] + Br
        xi = Ar * ci[None, :] + Ai * cr[None, :] + Bi
        x_off = (b * L + k[:, None]) * P + rp[None, :]
        tl.store(X + W * x_off, xr, mask=mk)
        if COMPLEX:
            tl.store(X + W * x_off + 1, xi, mask=mk)
        last = (tl.arange(0, BL) == tl.minimum(L - 1 - t0, BL - 1))[:, None]
        cr = tl.sum(tl.where(last, xr, 0.0), axis=0)
        ci = tl.sum(tl.where(last, xi, 0.0), axis=0)
        t0 += BL


def _launch(a: torch.Tensor, b: torch.Tensor, reverse: bool) -> torch.Tensor:
    B, L, P = b.shape
    x = torch.empty(B, L, P, device=b.device, dtype=b.dtype)
    real = (lambda t: torch.view_as_real(t)) if b.is_complex() else (lambda t: t)
    # a program walks the whole length: narrow channel blocks keep ~2 programs per SM busy (16 rows × 64 channels in
    # blocks of 64 left 16 programs for 132 SMs, slower than the torch reference at L = 64k)
    BP = max(2, min(64, next_power_of_2(max(1, B * P // 264))))
    _scan_kernel[(B, cdiv(P, BP))](real(a), real(b), real(x), L, P, *a.stride(), *b.stride(),
                                   COMPLEX=b.is_complex(), REVERSE=reverse, BL=64, BP=BP, num_warps=4)
    return x


class _Scan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        x = _launch(a, b, reverse=False)
        ctx.save_for_backward(a, x)
        return x

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        lam = _launch(a, g.contiguous(), reverse=True)
        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        grad_a = lam * x_prev.conj() if ctx.needs_input_grad[0] else None
        return grad_a, lam


@register("scan", "triton")
def scan_triton(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a may be an expanded view (stride 0 over the batch): the kernel reads it through its strides."""
    if b.dtype not in (torch.complex64, torch.float32) or a.dtype != b.dtype:
        return scan_torch(a, b)
    return _Scan.apply(a, b.contiguous())
