"""Cauchy kernel over conjugate pairs — the inner sum of the S4 (DPLR) kernel.

    cauchy(v, z, w)[..., l] = Σ_n  v_n / (z_l − w_n)  +  v̄_n / (z_l − w̄_n)

v (..., N) and w (..., N) complex, broadcastable against each other; z (L,) complex evaluation points (constants).
The torch reference walks the L axis in chunks and recomputes the (..., N, chunk) reciprocals in backward, so memory
is O(numel(w)·chunk + output) forward and backward instead of the O(numel(w)·L) of the broadcast expression; the
Triton version (ops/triton_cauchy.py, CUDA) holds one tile of them in registers.
"""
from __future__ import annotations

import torch

from ._chunks import chunk_length, sum_to_shape
from .dispatch import implementation, register


def _reciprocals(z: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # 1/(z − w) and 1/(z − w̄) for one chunk of z: each (..., N, chunk), inverted in place (1.0 / t is a reciprocal
    # and then a product with 1.0: one more pass over the largest tensor of the op)
    return (z - w[..., None]).reciprocal_(), (z - w.conj()[..., None]).reciprocal_()


def _layout(v: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows (W, R, N), ws (W, N)): the W distinct w's, and for each the R rows of v that use it. Where w's batch shape
    ends the broadcast batch (w (H, N), v (..., H, N)) each w is formed once and its rows share its reciprocals;
    a w that broadcasts inside that batch is expanded over it first (R = 1)."""
    N = w.shape[-1]
    batch = torch.broadcast_shapes(v.shape[:-1], w.shape[:-1])
    if batch[len(batch) - (w.dim() - 1):] != w.shape[:-1]:
        w = w.expand(*batch, N)
    ws = w.reshape(-1, N)
    return v.expand(*batch, N).reshape(-1, ws.shape[0], N).transpose(0, 1), ws


class _Cauchy(torch.autograd.Function):
    """Forward and backward walk z in chunks. The reciprocals of a chunk are formed once per distinct w (_layout) and
    multiply all the rows of v that share it in one batched product."""

    @staticmethod
    def forward(ctx, v, z, w):
        L = z.shape[-1]
        batch = torch.broadcast_shapes(v.shape[:-1], w.shape[:-1])
        rows, ws = _layout(v, w)
        step = chunk_length(ws.numel(), L)
        out = torch.empty(*rows.shape[:2], L, dtype=torch.promote_types(v.dtype, w.dtype), device=v.device)
        for s in range(0, L, step):  # (W, R, N) against (W, N, chunk)
            r1, r2 = _reciprocals(z[s:s + step], ws)
            out[..., s:s + step] = rows @ r1 + rows.conj() @ r2
        ctx.save_for_backward(v, z, w)
        return out.transpose(0, 1).reshape(*batch, L)

    @staticmethod
    def backward(ctx, g):
        # PyTorch's complex convention: grad_x = conj(∂out/∂x)·g + (∂out/∂x̄)·conj(g).
        v, z, w = ctx.saved_tensors
        L = z.shape[-1]
        rows, ws = _layout(v, w)
        step = chunk_length(ws.numel(), L)
        G = g.reshape(-1, ws.shape[0], L).transpose(0, 1)  # (W, R, L)
        sv = sw = 0
        for s in range(0, L, step):  # ġ r̄1ᵀ = conj(conj(ġ) r1ᵀ): conj of the small factors, not of r1
            r1, r2 = _reciprocals(z[s:s + step], ws)
            gc = G[..., s:s + step].conj_physical()
            sv = sv + (gc @ r1.mT).conj() + gc @ r2.mT
            r1, r2 = r1.mul_(r1), r2.mul_(r2)
            sw = sw + (gc @ r1.mT).conj() + gc @ r2.mT
        sv = sv.transpose(0, 1).reshape(*g.shape[:-1], -1)
        sw = sw.transpose(0, 1).reshape(*g.shape[:-1], -1)
        grad_v = sum_to_shape(sv, v.shape) if ctx.needs_input_grad[0] else None
        grad_w = sum_to_shape(v.conj() * sw, w.shape) if ctx.needs_input_grad[2] else None
        return grad_v, None, grad_w


@register("cauchy", "torch")
def cauchy_torch(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return _Cauchy.apply(v, z, w)


def cauchy(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Σ_n v_n/(z_l − w_n) + v̄_n/(z_l − w̄_n): v, w (..., N) complex; z (L,) complex constants -> (..., L)."""
    if not (v.is_complex() and w.is_complex() and z.is_complex()):
        raise ValueError(f"cauchy: expected complex v, z, w, got {v.dtype}, {z.dtype}, {w.dtype}")
    if z.dim() != 1:
        raise ValueError(f"z: expected shape (L,), got {tuple(z.shape)}")
    if z.requires_grad:
        raise ValueError("z: the evaluation points are constants; a z that requires grad would get no gradient")
    if v.shape[-1] != w.shape[-1]:
        raise ValueError(f"v, w: expected the same last dimension N, got {v.shape[-1]} and {w.shape[-1]}")
    return implementation("cauchy", v.device)(v, z, w)
