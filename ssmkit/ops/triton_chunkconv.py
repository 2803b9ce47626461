"""Triton version of ops.chunkconv_act: the chunked SSM convolution + activation, read and written batch-first.

Per part, three launches forward and three backward (tiles of BC chunks × T steps of one channel h and batch row b):

    forward   states:   S_c = U_c Win                              (B, L, H) -> (H, B, n, S)
              scan:     X_c = A X_{c−1} + S_{c−1}                  ops/triton_chunk_scan.py
              outputs:  y = U_c ToepT + X_c WoutT (+ earlier parts) -> pre-activation and act(y), both (B, L, H)
    backward  states:   R_c = Ġ_c Wout with Ġ = ∂out ⊙ act'(pre)   (the gradient reaching each X_c)
              scan:     ∂S = the reverse scan of R with Aᵀ
              grads:    ∂U_c = Ġ_c ToepTᵀ + ∂S_c Winᵀ, and per (h, b) the sums Σ_c U_cᵀĠ_c, X_cᵀĠ_c, U_cᵀ∂S_c
                        (∂ToepT, ∂WoutT, ∂Win; summed over b in torch), ∂A by einsum.

A part's positions: virtual position p = c·T + i of the front-padded sequence is t = p − pad (masked when < 0),
read at t (causal) or at L − 1 − t (reversed part). Matrix products use tl.dot with 3xTF32 (float32 accuracy on
tensor cores); the scan is IEEE float32.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .chunkconv_act import ACTIVATIONS, ChunkPart, chunkconv_act_torch
from .dispatch import register
from .triton_chunk_scan import scan_grad_A, scan_launch

ACT_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}  # gelu 0, silu 1, relu 2, id 3
PRECISION = "tf32x3"


@triton.jit
def _act(y, ACT: tl.constexpr):
    if ACT == 0:
        y = 0.5 * y * (1.0 + tl.math.erf(y * 0.7071067811865476))
    elif ACT == 1:
        y = y * tl.sigmoid(y)
    elif ACT == 2:
        y = tl.maximum(y, 0.0)
    return y


@triton.jit
def _act_grad(y, ACT: tl.constexpr):
    if ACT == 0:
        d = 0.5 * (1.0 + tl.math.erf(y * 0.7071067811865476)) + y * tl.exp(-0.5 * y * y) * 0.3989422804014327
    elif ACT == 1:
        s = tl.sigmoid(y)
        d = s * (1.0 + y * (1.0 - s))
    elif ACT == 2:
        d = (y > 0).to(tl.float32)
    else:
        d = y * 0.0 + 1.0
    return d


@triton.jit
def _positions(c0, L, pad, REVERSE: tl.constexpr, BC: tl.constexpr, T: tl.constexpr):
    """(BC, T) sequence positions of chunks c0 .. c0 + BC − 1 and their validity."""
    rc = tl.arange(0, BC)
    ri = tl.arange(0, T)
    t = (c0 + rc)[:, None] * T + ri[None, :] - pad
    valid = (t >= 0) & (t < L)
    if REVERSE:
        t = L - 1 - t
    return t, valid


@triton.jit
def _load_grad(G, PRE, b, h, pos, valid, L, H, sgb, sgl, sgh, ACT: tl.constexpr):
    """Ġ = ∂out ⊙ act'(pre) at pos: (BC, T)."""
    g = tl.load(G + b * sgb + pos * sgl + h * sgh, mask=valid, other=0.0).to(tl.float32)
    if ACT != 3:
        pre = tl.load(PRE + (b * L + pos) * H + h, mask=valid, other=0.0)
        g = g * _act_grad(pre, ACT)
    return g


@triton.jit
def _states_kernel(V, PRE, W, S, L, n, pad, svb, svl, svh, swi, sws, SR,
                   GRAD: tl.constexpr, ACT: tl.constexpr, REVERSE: tl.constexpr, BC: tl.constexpr,
                   T: tl.constexpr, SD: tl.constexpr, PREC: tl.constexpr):
    h, b, c0 = tl.program_id(0), tl.program_id(1), tl.program_id(2) * BC
    H, B = tl.num_programs(0), tl.num_programs(1)
    pos, valid = _positions(c0, L, pad, REVERSE, BC, T)
    if GRAD:  # backward: V is ∂out, taken through act'
        v = _load_grad(V, PRE, b, h, pos, valid, L, H, svb, svl, svh, ACT)
    else:  # forward: V is the input u
        v = tl.load(V + b * svb + pos * svl + h * svh, mask=valid, other=0.0).to(tl.float32)
    ri, rs, rc = tl.arange(0, T), tl.arange(0, SD), tl.arange(0, BC)
    w = tl.load(W + h * T * SR + ri[:, None] * swi + rs[None, :] * sws, mask=(rs < SR)[None, :], other=0.0)
    z = tl.dot(v, w, input_precision=PREC)
    rows = c0 + rc
    tl.store(S + ((h * B + b) * n + rows[:, None]) * SR + rs[None, :], z,
             mask=(rows < n)[:, None] & (rs < SR)[None, :])


@triton.jit
def _outputs_kernel(U, TOEPT, X, WOUTT, OUT, PRE, L, n, pad, sub, sul, suh, SR,
                    ACT: tl.constexpr, ADD: tl.constexpr, LAST: tl.constexpr, REVERSE: tl.constexpr,
                    BC: tl.constexpr, T: tl.constexpr, SD: tl.constexpr, PREC: tl.constexpr):
    h, b, c0 = tl.program_id(0), tl.program_id(1), tl.program_id(2) * BC
    H, B = tl.num_programs(0), tl.num_programs(1)
    pos, valid = _positions(c0, L, pad, REVERSE, BC, T)
    u = tl.load(U + b * sub + pos * sul + h * suh, mask=valid, other=0.0).to(tl.float32)
    ri, rs, rc = tl.arange(0, T), tl.arange(0, SD), tl.arange(0, BC)
    toep = tl.load(TOEPT + h * T * T + ri[:, None] * T + ri[None, :])
    rows = c0 + rc
    x = tl.load(X + ((h * B + b) * n + rows[:, None]) * SR + rs[None, :],
                mask=(rows < n)[:, None] & (rs < SR)[None, :], other=0.0)
    wout = tl.load(WOUTT + h * SR * T + rs[:, None] * T + ri[None, :], mask=(rs < SR)[:, None], other=0.0)
    y = tl.dot(u, toep, input_precision=PREC) + tl.dot(x, wout, input_precision=PREC)
    o = (b * L + pos) * H + h
    if ADD:
        y += tl.load(PRE + o, mask=valid, other=0.0)
    tl.store(PRE + o, y, mask=valid)
    if LAST:
        tl.store(OUT + o, _act(y, ACT), mask=valid)


@triton.jit
def _grads_kernel(G, PRE, U, X, DS, TOEPT, WIN, DU, P_TOEP, P_WOUT, P_WIN, L, n, pad,
                  sgb, sgl, sgh, sub, sul, suh, SR,
                  ACT: tl.constexpr, ADD: tl.constexpr, REVERSE: tl.constexpr, BC: tl.constexpr, T: tl.constexpr,
                  SD: tl.constexpr, PREC: tl.constexpr):
    h, b = tl.program_id(0), tl.program_id(1)
    H, B = tl.num_programs(0), tl.num_programs(1)
    ri, rs, rc = tl.arange(0, T), tl.arange(0, SD), tl.arange(0, BC)
    smask = rs < SR
    toep_t = tl.load(TOEPT + h * T * T + ri[None, :] * T + ri[:, None])  # [j, i] = ToepT[i, j]
    win_t = tl.load(WIN + h * T * SR + ri[None, :] * SR + rs[:, None], mask=smask[:, None], other=0.0)  # [s, i]
    acc_toep = tl.zeros((T, T), dtype=tl.float32)
    acc_wout = tl.zeros((SD, T), dtype=tl.float32)
    acc_win = tl.zeros((T, SD), dtype=tl.float32)
    c0 = 0
    while c0 < n:
        pos, valid = _positions(c0, L, pad, REVERSE, BC, T)
        gy = _load_grad(G, PRE, b, h, pos, valid, L, H, sgb, sgl, sgh, ACT)
        u = tl.load(U + b * sub + pos * sul + h * suh, mask=valid, other=0.0).to(tl.float32)
        rows = c0 + rc
        st = ((h * B + b) * n + rows[:, None]) * SR + rs[None, :]
        smask2 = (rows < n)[:, None] & smask[None, :]
        x = tl.load(X + st, mask=smask2, other=0.0)
        ds = tl.load(DS + st, mask=smask2, other=0.0)
        du = tl.dot(gy, toep_t, input_precision=PREC) + tl.dot(ds, win_t, input_precision=PREC)
        o = (b * L + pos) * H + h
        if ADD:
            du += tl.load(DU + o, mask=valid, other=0.0)
        tl.store(DU + o, du, mask=valid)
        acc_toep += tl.dot(tl.trans(u), gy, input_precision=PREC)
        acc_wout += tl.dot(tl.trans(x), gy, input_precision=PREC)
        acc_win += tl.dot(tl.trans(u), ds, input_precision=PREC)
        c0 += BC
    part = h * B + b
    tl.store(P_TOEP + part * T * T + ri[:, None] * T + ri[None, :], acc_toep)
    tl.store(P_WOUT + part * SR * T + rs[:, None] * T + ri[None, :], acc_wout, mask=smask[:, None])
    tl.store(P_WIN + part * T * SR + ri[:, None] * SR + rs[None, :], acc_win, mask=smask[None, :])


def _geometry(u: torch.Tensor, part: ChunkPart) -> dict:
    B, L, H = u.shape
    T, SR = part.ToepT.shape[-1], part.Win.shape[-1]
    n = triton.cdiv(L, T)
    return dict(B=B, L=L, H=H, T=T, SR=SR, n=n, pad=n * T - L, SD=max(16, triton.next_power_of_2(SR)),
                BC=max(16, min(64, triton.next_power_of_2(n))))


class _ChunkConvAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, activation, reverses, *mats):
        parts = [ChunkPart(*mats[4 * k:4 * k + 4], reverse=r) for k, r in enumerate(reverses)]
        g = _geometry(u, parts[0])
        B, L, H, n, BC = g["B"], g["L"], g["H"], g["n"], g["BC"]
        out = torch.empty(B, L, H, device=u.device, dtype=torch.float32)
        pre = torch.empty_like(out)
        grid = (H, B, triton.cdiv(n, BC))
        common = dict(T=g["T"], SD=g["SD"], BC=BC, PREC=PRECISION, num_warps=4)
        states = []
        for k, p in enumerate(parts):
            S = torch.empty(H, B, n, g["SR"], device=u.device, dtype=torch.float32)
            _states_kernel[grid](u, pre, p.Win, S, L, n, g["pad"], *u.stride(), g["SR"], 1, g["SR"],
                                 GRAD=False, ACT=3, REVERSE=p.reverse, **common)
            X = scan_launch(p.A, S, reverse=False)
            _outputs_kernel[grid](u, p.ToepT, X, p.WoutT, out, pre, L, n, g["pad"], *u.stride(), g["SR"],
                                  ACT=ACT_CODE[activation], ADD=k > 0, LAST=k == len(parts) - 1, REVERSE=p.reverse,
                                  **common)
            states.append(X)
        ctx.activation, ctx.reverses = activation, reverses
        ctx.save_for_backward(u, pre, *mats, *states)
        return out

    @staticmethod
    def backward(ctx, grad):
        u, pre, *rest = ctx.saved_tensors
        k_parts = len(ctx.reverses)
        mats, states = rest[:4 * k_parts], rest[4 * k_parts:]
        parts = [ChunkPart(*mats[4 * k:4 * k + 4], reverse=r) for k, r in enumerate(ctx.reverses)]
        g = _geometry(u, parts[0])
        B, L, H, n, T, SR = g["B"], g["L"], g["H"], g["n"], g["T"], g["SR"]
        act = ACT_CODE[ctx.activation]
        du = torch.empty(B, L, H, device=u.device, dtype=torch.float32)
        grads = []
        for k, (p, X) in enumerate(zip(parts, states)):
            R = torch.empty(H, B, n, SR, device=u.device, dtype=torch.float32)
            _states_kernel[(H, B, triton.cdiv(n, g["BC"]))](
                grad, pre, p.WoutT, R, L, n, g["pad"], *grad.stride(), 1, T, SR,
                GRAD=True, ACT=act, REVERSE=p.reverse, T=T, SD=g["SD"], BC=g["BC"], PREC=PRECISION, num_warps=4)
            dS = scan_launch(p.A, R, reverse=True)
            P_toep = torch.empty(H, B, T, T, device=u.device, dtype=torch.float32)
            P_wout = torch.empty(H, B, SR, T, device=u.device, dtype=torch.float32)
            P_win = torch.empty(H, B, T, SR, device=u.device, dtype=torch.float32)
            _grads_kernel[(H, B)](grad, pre, u, X, dS, p.ToepT, p.Win, du, P_toep, P_wout, P_win, L, n, g["pad"],
                                  *grad.stride(), *u.stride(), SR, ACT=act, ADD=k > 0, REVERSE=p.reverse,
                                  BC=min(g["BC"], 32), T=T, SD=g["SD"], PREC=PRECISION, num_warps=8)
            grads += [P_toep.sum(1), P_win.sum(1), P_wout.sum(1), scan_grad_A(p.A, dS, X)]
        return (du.to(u.dtype), None, None, *grads)


@register("chunkconv_act", "triton")
def chunkconv_act_triton(u: torch.Tensor, parts: list[ChunkPart], activation: str) -> torch.Tensor:
    if parts[0].Win.dtype != torch.float32:  # float64 (tests, oracles) takes the reference
        return chunkconv_act_torch(u, parts, activation)
    mats = [t.contiguous() for p in parts for t in (p.ToepT, p.Win, p.WoutT, p.A)]
    return _ChunkConvAct.apply(u, activation, tuple(p.reverse for p in parts), *mats)

