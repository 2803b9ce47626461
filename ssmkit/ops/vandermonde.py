"""Vandermonde product — the kernel of every diagonal SSM (S4D, DSS, DLR, the Mega EMA).

    vandermonde(v, x, L)[..., l] = Σ_n v_n · exp(l · x_n),   l = 0 .. L−1

i.e. Σ_n v_n Ā_n^l with x = log Ā (for ZOH, x = Δλ exactly, so no logarithm is taken). v (..., N) and x (..., N)
complex, broadcastable. The torch reference walks L in chunks and recomputes the powers in backward: memory
O(numel(x)·chunk + output), forward and backward. The Triton version (ops/triton_vandermonde.py, CUDA) forms one tile
of powers at a time, with its phases reduced in float64.
"""
from __future__ import annotations

import torch

from ._chunks import chunk_length, sum_to_shape
from .dispatch import implementation, register


POWER_BLOCK = 32  # _powers' inner block: exp(l·x) = exp(q·x)·exp(r·x), q a multiple of it, r < it


def _polar_powers(x: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    # exp(l·x) as e^{l·Re x}·(cos + i sin)(l·Im x): real exp/sin/cos are vectorized where complex exp is not (3.6x
    # faster on CPU)
    return torch.polar(torch.exp(x.real[..., None] * l), x.imag[..., None] * l)


def _powers(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """exp(l·x) for l in [start, stop): (..., N, stop − start). Past 8 blocks, as the outer product of exp(q·x) over
    the block starts q and exp(r·x) over r < POWER_BLOCK: two short tables of sines and cosines and one complex
    product per entry, each factor exact to rounding (on 2 CPU cores, H = 64, N = 32, L = 784: 0.6 ms instead of 16)."""
    n = stop - start
    real = x.real.dtype
    if n < 8 * POWER_BLOCK:
        return _polar_powers(x, torch.arange(start, stop, device=x.device, dtype=real))
    head = _polar_powers(x, torch.arange(start, stop, POWER_BLOCK, device=x.device, dtype=real))  # (..., N, Q)
    tail = _polar_powers(x, torch.arange(POWER_BLOCK, device=x.device, dtype=real))  # (..., N, POWER_BLOCK)
    return (head[..., :, None] * tail[..., None, :]).flatten(-2)[..., :n]


class _Vandermonde(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, x, L):
        batch = torch.broadcast_shapes(v.shape[:-1], x.shape[:-1])
        out = torch.empty(*batch, L, dtype=torch.promote_types(v.dtype, x.dtype), device=v.device)
        step = chunk_length(x.numel(), L)
        vr = v[..., None, :]
        for s in range(0, L, step):
            out[..., s:s + step] = (vr @ _powers(x, s, min(L, s + step))).squeeze(-2)
        ctx.save_for_backward(v, x)
        ctx.L = L
        return out

    @staticmethod
    def backward(ctx, g):
        v, x = ctx.saved_tensors
        L = ctx.L
        step = chunk_length(x.numel(), L)
        # Σ_l conj(exp(l x)) ġ_l, as conj(Σ_l exp(l x) conj(ġ_l)): the small ġ conjugated, not the powers (a matmul
        # copies a conjugated operand whole)
        sv = sx = 0
        for s in range(0, L, step):
            e = step if s + step <= L else L - s
            E = _powers(x, s, s + e)
            gc = g[..., s:s + e, None].conj_physical()
            l = torch.arange(s, s + e, device=g.device, dtype=x.real.dtype)[:, None]
            sv = sv + E @ gc
            sx = sx + E @ (l * gc)
        sv, sx = sv.conj().squeeze(-1), sx.conj().squeeze(-1)
        grad_v = sum_to_shape(sv, v.shape) if ctx.needs_input_grad[0] else None
        grad_x = sum_to_shape(v.conj() * sx, x.shape) if ctx.needs_input_grad[1] else None
        return grad_v, grad_x, None


def powers(x: torch.Tensor, L: int) -> torch.Tensor:
    """exp(l·x) for l < L: x (..., N) complex -> (..., N, L) (materialized: for the chunked-state drive term)."""
    return _powers(x, 0, L)


@register("vandermonde", "torch")
def vandermonde_torch(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    return _Vandermonde.apply(v, x, L)


def vandermonde(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """Σ_n v_n exp(l·x_n) for l < L: v, x (..., N) complex -> (..., L) complex."""
    if not (v.is_complex() and x.is_complex()):
        raise ValueError(f"vandermonde: expected complex v and x, got {v.dtype} and {x.dtype}")
    if v.shape[-1] != x.shape[-1]:
        raise ValueError(f"v, x: expected the same last dimension N, got {v.shape[-1]} and {x.shape[-1]}")
    if not isinstance(L, int) or L < 1:
        raise ValueError(f"L: expected a positive integer, got {L!r}")
    return implementation("vandermonde", v.device)(v, x, L)
