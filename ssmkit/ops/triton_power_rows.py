"""Triton version of ops.power_rows (the rows and the recursion: ops/power_rows.py), for n = T + 1 rows with T a
power of two (what the chunked form asks for), float32, S ≤ MAX_S and T ≤ MAX_T.

One program per channel runs the whole doubling chain. Forward, with P = M^k at level k = 1, 2, …, T/2:

    V[k:2k] = V[:k] Pᵀ,   R[:, k:2k] = R[:, :k] P,   P ← P²,

and at the top, k = T, row T alone from row 0 (the same step on fewer rows, as the reference's top level). The rows go
to the outputs as they are formed and are read back from there by the next level (global memory, within the program: a
barrier between levels); the powers M^(2^i) are kept for the backward (an output without gradient). Backward, the
levels walked down with the adjoints (as in the reference):

    Ṗ += V̇[k:2k]ᵀ V[:k] + R[:k]ᵀ Ṙ[k:2k],   V̇[:k] += V̇[k:2k] P,   Ṙ[:k] += Ṙ[k:2k] Pᵀ,   Q̇ = Ṗ Qᵀ + Qᵀ Ṗ  (P = Q²)

on working copies of V̇ and Ṙ, in one program per channel too. Products are tl.dot tiles in 3xTF32 (float32
accuracy); the tiles are at least 16 × 16 (tl.dot's smallest), masked to the rows each level forms. The reference
takes ~35 launches forward and ~42 backward at T = 64; these take one each. Under torch.func.vmap (a group of layers,
layers/stack_parts.py) the mapped axis joins the channels.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from .dispatch import register
from .float32_backward import float32_backward
from .grid_math import next_power_of_2
from .power_rows import power_rows_torch

MAX_S = 64  # the real state (S4's N = 64): a program holds a few S × S tiles in registers
MAX_T = 64  # the chunk length: a program holds a T × S tile of rows
PRECISION = "tf32x3"


@triton.jit
def _layout(S, SP: tl.constexpr, TP: tl.constexpr):
    """This program's channel h, the state index s (SP,) and its mask, the row index t (TP,), the S × S tile's mask
    and offsets, and the offsets of a TP × S tile of rows."""
    s = tl.arange(0, SP)
    t = tl.arange(0, TP)
    ms = s < S
    return (tl.program_id(0).to(tl.int64), s, ms, t, ms[:, None] & ms[None, :], s[:, None] * S + s[None, :],
            t[:, None] * S + s[None, :])


@triton.jit
def _forward_kernel(M, B, C, V, R, PS, LAST, H, S, Cch, n, SP: tl.constexpr, TP: tl.constexpr,
                    LEVELS: tl.constexpr, PREC: tl.constexpr):
    h, s, ms, t, mat, sq, rows = _layout(S, SP, TP)
    v_base = V + h * n * S
    P = tl.load(M + h * S * S + sq, mask=mat, other=0.0)
    tl.store(PS + h * (LEVELS + 1) * S * S + sq, P, mask=mat)
    b = tl.load(B + h * S + s, mask=ms, other=0.0)
    tl.store(v_base + s, b, mask=ms)
    ch = 0
    while ch < Cch:  # row 0 of R: c
        tl.store(R + (h * Cch + ch) * n * S + s, tl.load(C + (ch * H + h) * S + s, mask=ms, other=0.0), mask=ms)
        ch += 1
    tl.debug_barrier()
    k = 1
    for i in range(LEVELS + 1):  # level k = 2^i: rows k..k+m−1 from rows 0..m−1 (m = k, 1 at the top), P = M^k
        lo = (t < tl.minimum(k, n - k))[:, None] & ms[None, :]
        v = tl.load(v_base + rows, mask=lo, other=0.0)
        tl.store(v_base + k * S + rows, tl.dot(v, tl.trans(P), input_precision=PREC), mask=lo)
        ch = 0
        while ch < Cch:
            r_base = R + (h * Cch + ch) * n * S
            r = tl.load(r_base + rows, mask=lo, other=0.0)
            tl.store(r_base + k * S + rows, tl.dot(r, P, input_precision=PREC), mask=lo)
            ch += 1
        if i < LEVELS:
            P = tl.dot(P, P, input_precision=PREC)
            tl.store(PS + (h * (LEVELS + 1) + i + 1) * S * S + sq, P, mask=mat)
        tl.debug_barrier()
        k *= 2
    tl.store(LAST + h * S * S + sq, P, mask=mat)


@triton.jit
def _backward_kernel(PS, V, R, DV, DR, DP, DM, S, Cch, n, SP: tl.constexpr, TP: tl.constexpr,
                     LEVELS: tl.constexpr, PREC: tl.constexpr):
    h, s, ms, t, mat, sq, rows = _layout(S, SP, TP)
    v_base, dv_base = V + h * n * S, DV + h * n * S
    dP = tl.load(DP + h * S * S + sq, mask=mat, other=0.0)
    k = n - 1
    for step in range(LEVELS + 1):  # level i = LEVELS − step, k = 2^i: rows 0..m−1 formed rows k..k+m−1
        i = LEVELS - step
        P = tl.load(PS + (h * (LEVELS + 1) + i) * S * S + sq, mask=mat, other=0.0)
        lo = (t < tl.minimum(k, n - k))[:, None] & ms[None, :]
        dv_hi = tl.load(dv_base + k * S + rows, mask=lo, other=0.0)
        dP += tl.dot(tl.trans(dv_hi), tl.load(v_base + rows, mask=lo, other=0.0), input_precision=PREC)
        dv_lo = tl.load(dv_base + rows, mask=lo, other=0.0) + tl.dot(dv_hi, P, input_precision=PREC)
        tl.debug_barrier()
        tl.store(dv_base + rows, dv_lo, mask=lo)
        ch = 0
        while ch < Cch:
            r_base, dr_base = R + (h * Cch + ch) * n * S, DR + (h * Cch + ch) * n * S
            dr_hi = tl.load(dr_base + k * S + rows, mask=lo, other=0.0)
            dP += tl.dot(tl.trans(tl.load(r_base + rows, mask=lo, other=0.0)), dr_hi, input_precision=PREC)
            dr_lo = tl.load(dr_base + rows, mask=lo, other=0.0) + tl.dot(dr_hi, tl.trans(P), input_precision=PREC)
            tl.debug_barrier()
            tl.store(dr_base + rows, dr_lo, mask=lo)
            ch += 1
        tl.debug_barrier()
        if i > 0:  # P = Q², Q = M^(k/2): Ṗ Qᵀ + Qᵀ Ṗ
            Q = tl.load(PS + (h * (LEVELS + 1) + i - 1) * S * S + sq, mask=mat, other=0.0)
            dP = tl.dot(dP, tl.trans(Q), input_precision=PREC) + tl.dot(tl.trans(Q), dP, input_precision=PREC)
        k = k // 2
    tl.store(DM + h * S * S + sq, dP, mask=mat)


def _tiles(S: int, n: int) -> dict:
    T = n - 1
    return dict(SP=max(16, next_power_of_2(S)), TP=max(16, T), LEVELS=T.bit_length() - 1, PREC=PRECISION)


class _TritonPowerRows(torch.autograd.Function):
    """(V, R, M^T, the powers M^(2^i) for the backward); backward as the module docstring. Once differentiable."""

    @staticmethod
    def forward(b, c, M, n: int):
        (H, S), Cch = b.shape, c.shape[0]
        tiles = _tiles(S, n)
        V = b.new_empty(H, n, S)
        R = b.new_empty(H, Cch, n, S)
        PS = b.new_empty(H, tiles["LEVELS"] + 1, S, S)
        last = b.new_empty(H, S, S)
        _forward_kernel[(H,)](M.contiguous(), b.contiguous(), c.contiguous(), V, R, PS, last, H, S, Cch, n,
                              **tiles, num_warps=4)
        return V, R, last, PS

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.n = inputs[3]
        ctx.mark_non_differentiable(output[3])
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*output[:2], output[3])

    @staticmethod
    @float32_backward
    @once_differentiable
    def backward(ctx, dV, dR, dLast, _):
        V, R, PS = ctx.saved_tensors
        H, Cch, n, S = R.shape
        DV = torch.zeros_like(V) if dV is None else dV.clone(memory_format=torch.contiguous_format)
        DR = torch.zeros_like(R) if dR is None else dR.clone(memory_format=torch.contiguous_format)
        DP = PS.new_zeros(H, S, S) if dLast is None else dLast.contiguous()
        DM = PS.new_empty(H, S, S)
        _backward_kernel[(H,)](PS, V, R, DV, DR, DP, DM, S, Cch, n, **_tiles(S, n), num_warps=4)
        return DV[:, 0], DR[:, :, 0].transpose(0, 1), DM, None

    @staticmethod
    def vmap(info, in_dims, b, c, M, n):
        """The mapped axis joins H: b (G, H, S), c (G, Cch, H, S), M (G, H, S, S) solved as G·H channels."""
        G = info.batch_size
        b, c, M = (t.movedim(d, 0) if d is not None else t.expand(G, *t.shape) for t, d in zip((b, c, M), in_dims))
        H, S = b.shape[1:]
        outs = _TritonPowerRows.apply(b.reshape(G * H, S), c.transpose(0, 1).reshape(c.shape[1], G * H, S),
                                      M.reshape(G * H, S, S), n)
        return tuple(o.view(G, H, *o.shape[1:]) for o in outs), (0, 0, 0, 0)


@register("power_rows", "triton")
def power_rows_triton(b, c, M, n: int):
    """float32 with n − 1 a power of two up to MAX_T and S up to MAX_S; anything else takes the reference."""
    T, S = n - 1, M.shape[-1]
    if (not b.dtype == c.dtype == M.dtype == torch.float32 or T < 1 or T & (T - 1) or T > MAX_T or S > MAX_S
            or b.shape[0] == 0):
        return power_rows_torch(b, c, M, n)
    return _TritonPowerRows.apply(b, c, M, n)[:3]
