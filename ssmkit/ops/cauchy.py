"""Cauchy kernel over conjugate pairs — the inner sum of the S4 (DPLR) kernel.

    cauchy(v, z, w)[..., l] = Σ_n  v_n / (z_l − w_n)  +  v̄_n / (z_l − w̄_n)

v (..., N) and w (..., N) complex, broadcastable against each other; z (L,) complex evaluation points shared by the
batch (the S4 kernel's roots of unity, constants), or z (..., L) per batch row, which may want a gradient (the plain
C of S4 evaluates at the modes' Ā_n, kernels/dplr.py). The torch reference walks the L axis in chunks and recomputes
the (..., N, chunk) reciprocals in backward, so memory is O(numel(w)·chunk + output) forward and backward instead of
the O(numel(w)·L) of the broadcast expression; the Triton version (ops/triton_cauchy.py) holds one tile of them.
"""
from __future__ import annotations

import torch

from ._chunks import chunk_length, sum_to_shape
from .dispatch import implementation, register


def _reciprocals(z: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # 1/(z − w) and 1/(z − w̄) for one chunk of z (..., chunk): each (..., N, chunk)
    z = z[..., None, :]
    return 1.0 / (z - w[..., None]), 1.0 / (z - w.conj()[..., None])


class _Cauchy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, z, w):
        L = z.shape[-1]
        batch = torch.broadcast_shapes(v.shape[:-1], w.shape[:-1], z.shape[:-1])
        out = torch.empty(*batch, L, dtype=torch.promote_types(v.dtype, w.dtype), device=v.device)
        step = chunk_length(w.numel(), L)
        vr, vc = v[..., None, :], v.conj()[..., None, :]
        for s in range(0, L, step):
            r1, r2 = _reciprocals(z[..., s:s + step], w)
            out[..., s:s + step] = (vr @ r1 + vc @ r2).squeeze(-2)
        ctx.save_for_backward(v, z, w)
        return out

    @staticmethod
    def backward(ctx, g):
        # PyTorch's complex convention: grad_x = conj(∂out/∂x)·g + (∂out/∂x̄)·conj(g).
        # out is holomorphic in z: ∂out/∂z = −Σ_n v_n/(z − w_n)² + v̄_n/(z − w̄_n)².
        v, z, w = ctx.saved_tensors
        L = z.shape[-1]
        step = chunk_length(w.numel(), L)
        sv = sw = 0
        gz = [] if ctx.needs_input_grad[1] else None
        vr, vc = v[..., None, :], v.conj()[..., None, :]
        for s in range(0, L, step):
            r1, r2 = _reciprocals(z[..., s:s + step], w)
            gc = g[..., s:s + step, None]
            sv = sv + r1.conj() @ gc + r2 @ gc.conj()
            sw = sw + (r1 * r1).conj() @ gc + (r2 * r2) @ gc.conj()
            if gz is not None:
                gz.append(-(vr @ (r1 * r1) + vc @ (r2 * r2)).squeeze(-2).conj() * gc[..., 0])
        grad_v = sum_to_shape(sv.squeeze(-1), v.shape) if ctx.needs_input_grad[0] else None
        grad_z = sum_to_shape(torch.cat(gz, -1), z.shape) if gz is not None else None
        grad_w = sum_to_shape(v.conj() * sw.squeeze(-1), w.shape) if ctx.needs_input_grad[2] else None
        return grad_v, grad_z, grad_w


@register("cauchy", "torch")
def cauchy_torch(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return _Cauchy.apply(v, z, w)


def cauchy(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Σ_n v_n/(z_l − w_n) + v̄_n/(z_l − w̄_n): v, w (..., N) complex; z (L,) or (..., L) complex -> (..., L)."""
    if not (v.is_complex() and w.is_complex() and z.is_complex()):
        raise ValueError(f"cauchy: expected complex v, z, w, got {v.dtype}, {z.dtype}, {w.dtype}")
    if z.dim() == 0:
        raise ValueError(f"z: expected shape (L,) or (..., L), got {tuple(z.shape)}")
    if v.shape[-1] != w.shape[-1]:
        raise ValueError(f"v, w: expected the same last dimension N, got {v.shape[-1]} and {w.shape[-1]}")
    try:
        torch.broadcast_shapes(v.shape[:-1], w.shape[:-1], z.shape[:-1])
    except RuntimeError:
        raise ValueError(f"v, w, z: expected batch shapes that broadcast, got {tuple(v.shape[:-1])}, "
                         f"{tuple(w.shape[:-1])} and {tuple(z.shape[:-1])}") from None
    return implementation("cauchy", v.device)(v, z, w)
