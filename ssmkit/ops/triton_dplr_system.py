"""Triton version of the bilinear DPLR system's real form and B̄ (kernels/dplr.py dplr_system), rank 1 with Q = P
(S4's), complex64 parameters: one program per channel forms, in float64, what the reference forms in ~50 batched
kernels forward and ~110 backward (S4's parameter side, ~340 small kernels in all, replayed from CUDA graphs at
~3-5 µs each).

With half = Δ/2, for the N2 modes of one channel:

    d = 1/(1 − half·Λ),   g = 2 Σ_n |P_n|² Re d_n,   cap = 1/(1 + half·g),   κ = Δ·cap,
    E = κ·d·P,   V = conj(P)·d,   a = 2d − 1,   w = Δ·B,   s = Re Σ_n V_n w_n,
    M = blockdiag([[Re a, −Im a], [Im a, Re a]]) − e vᵀ,   e = (Re E, Im E),   v = 2 (Re V, −Im V)   (interleaved),
    B̄ = d·w − E·s.

The program holds each quantity as a vector over the S = 2·N2 interleaved positions i (mode i // 2, both positions of a
mode holding its value), so that M is one S × S tile built from outer products; sums over modes read the even
positions. The backward recomputes these and walks the chain down with the adjoints written out (PyTorch's convention
for a complex z of a real loss: ż = ∂/∂Re z + i ∂/∂Im z, so a product z = x·y sends ż·conj(y) to x):

    ė = −Ṁ v,   v̇ = −Ṁᵀ e,   ȧ from Ṁ's diagonal blocks,   Ḃ̄ → ḋ += Ḃ̄·conj(w), ẇ = Ḃ̄·conj(d), Ė −= Ḃ̄·s,
    ṡ = −Re Σ conj(Ḃ̄)·E → V̇ += ṡ·conj(w), ẇ += ṡ·conj(V);   then E, V, a → d, P, κ;   κ → Δ, cap → g, half;
    g → P, d;   d → t = 1 − half·Λ (ṫ = −ḋ·conj(d²)) → Λ, half;   w → B, Δ.

Under torch.func.vmap (a group of layers, layers/stack_parts.py) the mapped axis joins the channels.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from .dispatch import reference, register
from .grid_math import next_power_of_2

MAX_S = 256  # the real state: a program holds a few S × S float64 tiles


@triton.jit
def _pair(ptr, off, mask):
    """(Re, Im) of complex values stored as float32 pairs, in float64."""
    return (tl.load(ptr + off, mask=mask, other=0.0).to(tl.float64),
            tl.load(ptr + off + 1, mask=mask, other=0.0).to(tl.float64))


@triton.jit
def _system(LAM, P, B, DT, h, N2, SP: tl.constexpr):
    """The channel's quantities over the interleaved positions (module docstring)."""
    i = tl.arange(0, SP)
    S = 2 * N2
    mi = i < S
    par = i % 2
    off = h * S + (i // 2) * 2
    lre, lim = _pair(LAM, off, mi)
    pre, pim = _pair(P, off, mi)
    bre, bim = _pair(B, off, mi)
    dt = tl.load(DT + h).to(tl.float64)
    half = dt * 0.5
    tre = 1.0 - half * lre
    tim = -half * lim
    den = tre * tre + tim * tim
    dre = tre / den
    dim = -tim / den
    even = (par == 0) & mi
    g = 2.0 * tl.sum(tl.where(even, (pre * pre + pim * pim) * dre, 0.0), axis=0)
    cap = 1.0 / (1.0 + half * g)
    kap = dt * cap
    dpre = dre * pre - dim * pim
    dpim = dre * pim + dim * pre
    vre = pre * dre + pim * dim
    vim = pre * dim - pim * dre
    wre = dt * bre
    wim = dt * bim
    s = tl.sum(tl.where(even, vre * wre - vim * wim, 0.0), axis=0)
    ere = kap * dpre
    eim = kap * dpim
    e = tl.where(par == 0, ere, eim)
    v = 2.0 * tl.where(par == 0, vre, -vim)
    return (i, mi, par, even, lre, lim, pre, pim, bre, bim, dt, half, dre, dim, g, cap, kap, dpre, dpim, vre, vim,
            wre, wim, s, ere, eim, e, v)


@triton.jit
def _tile(i, par, mi, h, S):
    """The S × S tile: whether positions i and j hold one mode, their parities as column and row, the mask, and the
    offsets of channel h's matrix."""
    return ((i // 2)[:, None] == (i // 2)[None, :], par[:, None], par[None, :], mi[:, None] & mi[None, :],
            h * S * S + i[:, None] * S + i[None, :])


@triton.jit
def _forward_kernel(LAM, P, B, DT, M64, M32, DB, N2, SP: tl.constexpr):
    h = tl.program_id(0).to(tl.int64)
    (i, mi, par, even, lre, lim, pre, pim, bre, bim, dt, half, dre, dim, g, cap, kap, dpre, dpim, vre, vim,
     wre, wim, s, ere, eim, e, v) = _system(LAM, P, B, DT, h, N2, SP)
    S = 2 * N2
    same, pr, pc, tile, sq = _tile(i, par, mi, h, S)
    are = 2.0 * dre - 1.0
    aim = 2.0 * dim
    block = tl.where(pr == pc, are[:, None], tl.where(pr == 0, -aim[:, None], aim[:, None]))
    M = tl.where(same, block, 0.0) - e[:, None] * v[None, :]
    tl.store(M64 + sq, M, mask=tile)
    tl.store(M32 + sq, M.to(tl.float32), mask=tile)
    dbre = dre * wre - dim * wim - ere * s
    dbim = dre * wim + dim * wre - eim * s
    tl.store(DB + h * S + i, tl.where(par == 0, dbre, dbim).to(tl.float32), mask=mi)


@triton.jit
def _pair_sum(x, same, pc, PARITY: tl.constexpr):
    """At each position i: Σ over the positions j of i's mode with parity PARITY of x_j (−1: both)."""
    keep = same if PARITY < 0 else same & (pc == PARITY)
    return tl.sum(tl.where(keep, x[None, :], 0.0), axis=1)


@triton.jit
def _backward_kernel(LAM, P, B, DT, GM64, GM32, GDB, GLAM, GP, GB, GDT, N2, SP: tl.constexpr,
                     HAS_M64: tl.constexpr, HAS_M32: tl.constexpr, HAS_DB: tl.constexpr):
    h = tl.program_id(0).to(tl.int64)
    (i, mi, par, even, lre, lim, pre, pim, bre, bim, dt, half, dre, dim, g, cap, kap, dpre, dpim, vre, vim,
     wre, wim, s, ere, eim, e, v) = _system(LAM, P, B, DT, h, N2, SP)
    S = 2 * N2
    same, pr, pc, tile, sq = _tile(i, par, mi, h, S)
    gM = tl.zeros((SP, SP), dtype=tl.float64)
    if HAS_M64:
        gM += tl.load(GM64 + sq, mask=tile, other=0.0)
    if HAS_M32:
        gM += tl.load(GM32 + sq, mask=tile, other=0.0).to(tl.float64)
    # M = blockdiag(a) − e vᵀ
    edot = -tl.sum(gM * v[None, :], axis=1)
    vdot = -tl.sum(gM * e[:, None], axis=0)
    diag = tl.sum(tl.where(i[:, None] == i[None, :], gM, 0.0), axis=0)
    are_dot = _pair_sum(diag, same, pc, -1)
    sign = tl.where((pr == 1) & (pc == 0), 1.0, tl.where((pr == 0) & (pc == 1), -1.0, 0.0))
    rows = tl.sum(tl.where(same, sign * gM, 0.0), axis=1)
    aim_dot = _pair_sum(rows, same, pc, -1)
    ere_dot = _pair_sum(edot, same, pc, 0)
    eim_dot = _pair_sum(edot, same, pc, 1)
    vre_dot = 2.0 * _pair_sum(vdot, same, pc, 0)
    vim_dot = -2.0 * _pair_sum(vdot, same, pc, 1)
    ddre = 2.0 * are_dot
    ddim = 2.0 * aim_dot
    # B̄ = d·w − E·s
    if HAS_DB:
        gre, gim = _pair(GDB, h * S + (i // 2) * 2, mi)
    else:
        gre = tl.zeros((SP,), dtype=tl.float64)
        gim = tl.zeros((SP,), dtype=tl.float64)
    ddre += gre * wre + gim * wim
    ddim += gim * wre - gre * wim
    wdre = gre * dre + gim * dim
    wdim = gim * dre - gre * dim
    ere_dot -= gre * s
    eim_dot -= gim * s
    sdot = -tl.sum(tl.where(even, gre * ere + gim * eim, 0.0), axis=0)
    vre_dot += sdot * wre
    vim_dot -= sdot * wim
    wdre += sdot * vre
    wdim -= sdot * vim
    # E = κ·(d·P)
    kap_dot = tl.sum(tl.where(even, ere_dot * dpre + eim_dot * dpim, 0.0), axis=0)
    xre = kap * ere_dot
    xim = kap * eim_dot
    ddre += xre * pre + xim * pim
    ddim += xim * pre - xre * pim
    pdre = xre * dre + xim * dim
    pdim = xim * dre - xre * dim
    # V = conj(P)·d
    ddre += vre_dot * pre - vim_dot * pim
    ddim += vre_dot * pim + vim_dot * pre
    pdre += vre_dot * dre + vim_dot * dim
    pdim += vre_dot * dim - vim_dot * dre
    # w = Δ·B;  κ = Δ·cap;  cap = 1/(1 + half·g);  g = 2 Σ |P|² Re d
    bdre = dt * wdre
    bdim = dt * wdim
    dt_dot = tl.sum(tl.where(even, wdre * bre + wdim * bim, 0.0), axis=0) + kap_dot * cap
    cap_dot = kap_dot * dt
    g_dot = -cap_dot * cap * cap * half
    half_dot = -cap_dot * cap * cap * g
    pdre += 4.0 * g_dot * dre * pre
    pdim += 4.0 * g_dot * dre * pim
    ddre += 2.0 * g_dot * (pre * pre + pim * pim)
    # d = 1/t, t = 1 − half·Λ
    d2re = dre * dre - dim * dim
    d2im = 2.0 * dre * dim
    tdre = -(ddre * d2re + ddim * d2im)
    tdim = -(ddim * d2re - ddre * d2im)
    ldre = -half * tdre
    ldim = -half * tdim
    half_dot -= tl.sum(tl.where(even, tdre * lre + tdim * lim, 0.0), axis=0)
    dt_dot += 0.5 * half_dot
    out = h * S + i
    tl.store(GLAM + out, tl.where(par == 0, ldre, ldim).to(tl.float32), mask=mi)
    tl.store(GP + out, tl.where(par == 0, pdre, pdim).to(tl.float32), mask=mi)
    tl.store(GB + out, tl.where(par == 0, bdre, bdim).to(tl.float32), mask=mi)
    tl.store(GDT + h, dt_dot.to(tl.float32))


def _real(z: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(z.resolve_conj().contiguous())


class _TritonDPLRSystem(torch.autograd.Function):
    """(M in float64, M in float32, B̄) of one rank-1 tied DPLR system per channel; Lambda, P, B (H, N2) complex64,
    dt (H,) float32. Once differentiable."""

    @staticmethod
    def forward(Lambda, P, B, dt):
        H, N2 = Lambda.shape
        S = 2 * N2
        M64 = dt.new_empty(H, S, S, dtype=torch.float64)
        M32 = dt.new_empty(H, S, S)
        dB = Lambda.new_empty(H, N2)
        if H:
            _forward_kernel[(H,)](_real(Lambda), _real(P), _real(B), dt.contiguous(), M64, M32,
                                  torch.view_as_real(dB), N2, SP=max(16, next_power_of_2(S)), num_warps=4)
        return M64, M32, dB

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*inputs)

    @staticmethod
    @once_differentiable
    def backward(ctx, gM64, gM32, gdB):
        Lambda, P, B, dt = ctx.saved_tensors
        H, N2 = Lambda.shape
        grads = [torch.empty(H, N2, 2, device=dt.device) for _ in range(3)]
        gdt = torch.empty_like(dt)
        if H:
            dummy = grads[0]  # stands for an absent cotangent (never read)
            _backward_kernel[(H,)](
                _real(Lambda), _real(P), _real(B), dt.contiguous(),
                dummy if gM64 is None else gM64.contiguous(), dummy if gM32 is None else gM32.contiguous(),
                dummy if gdB is None else _real(gdB), *grads, gdt, N2,
                SP=max(16, next_power_of_2(2 * N2)), HAS_M64=gM64 is not None, HAS_M32=gM32 is not None,
                HAS_DB=gdB is not None, num_warps=4)
        return (*(torch.view_as_complex(g) for g in grads), gdt)

    @staticmethod
    def vmap(info, in_dims, Lambda, P, B, dt):
        """The mapped axis joins the channels: (G, H, ...) solved as G·H channels."""
        G = info.batch_size
        ins = [t.movedim(d, 0) if d is not None else t.expand(G, *t.shape)
               for t, d in zip((Lambda, P, B, dt), in_dims)]
        H = ins[0].shape[1]
        outs = _TritonDPLRSystem.apply(*(t.reshape(G * H, *t.shape[2:]) for t in ins))
        return tuple(o.view(G, H, *o.shape[1:]) for o in outs), (0, 0, 0)


def supported(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, dt: torch.Tensor, Q) -> bool:
    """What the kernels take: rank 1 with Q = P, complex64 (H, N2) parameters, dt (H,) float32, S up to MAX_S."""
    return (Q is None and P.dim() == 3 and P.shape[0] == 1 and Lambda.dtype == P.dtype == B.dtype == torch.complex64
            and dt.dtype == torch.float32 and dt.dim() == 1 and Lambda.dim() == 2
            and Lambda.shape == P.shape[1:] == B.shape and dt.shape[0] == Lambda.shape[0]
            and 2 * Lambda.shape[1] <= MAX_S)


@register("dplr_system", "triton")
def dplr_system_triton(Lambda, P, B, dt, Q=None):
    """Rank 1 with Q = P in complex64 (supported); anything else takes the reference."""
    if not supported(Lambda, P, B, dt, Q):
        return reference("dplr_system")(Lambda, P, B, dt, Q)
    return _TritonDPLRSystem.apply(Lambda, P.reshape(P.shape[1:]), B, dt)
