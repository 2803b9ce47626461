"""Long convolution by FFT — the convolutional view of every SSM layer.

    y[b, c, h, t] = Σ_{j=0}^{t} k[c, h, j] u[b, h, t − j]  +  Σ_{j=0}^{L−2−t} k_rev[c, h, j] u[b, h, t + 1 + j]

The first sum is the causal convolution K ∗ u; the second, present only when ``k_rev`` is given, is the anti-causal
half of a bidirectional kernel (it never touches lag 0, which belongs to k). Both are computed by one real FFT of
size n = 2L, so the circular wrap-around never reaches the output (a linear, not circular, convolution): with the
two-sided kernel laid out circularly (k at lags [0, L), k_rev reversed at [L, 2L)) and its spectrum K,

    y = irfft(rfft(u) · K)[:L]                      (u zero-padded to n)
    ∂u = Σ_c irfft(rfft(∂y_c) · conj(K_c))[:L]     (the adjoint: a circular correlation, ∂y zero-padded)
    ∂k_full = Σ_b irfft(rfft(∂y_b) · conj(rfft(u_b)))   (∂k its lags [0, L), ∂k_rev the rest reversed)

The backward is written out (not left to autograd) because autograd's backward of a real FFT is a complex FFT of
the zero-padded full spectrum: twice the transform and a padded copy, a fifth of an S4D training step on a CPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import implementation, register


class _FFTConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, k, k_rev):
        L = u.shape[-1]
        n = 2 * L
        if k_rev is not None:
            k = F.pad(k, (0, L)) + F.pad(k_rev.flip(-1), (L, 0))
        u_f = torch.fft.rfft(u, n=n)  # (B, H, n/2+1)
        k_f = torch.fft.rfft(k, n=n)  # (C, H, n/2+1)
        ctx.save_for_backward(u_f, k_f)
        ctx.two_sided = k_rev is not None
        return torch.fft.irfft(u_f[:, None] * k_f, n=n)[..., :L]

    @staticmethod
    def backward(ctx, g):
        u_f, k_f = ctx.saved_tensors
        L = g.shape[-1]
        n = 2 * L
        g_f = torch.fft.rfft(g, n=n)  # (B, C, H, n/2+1)
        grad_u = grad_k = grad_k_rev = None
        if ctx.needs_input_grad[0]:
            grad_u = torch.fft.irfft((g_f * k_f.conj()).sum(1), n=n)[..., :L]
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            full = torch.fft.irfft((g_f * u_f[:, None].conj()).sum(0), n=n)  # (C, H, n)
            grad_k = full[..., :L] if ctx.needs_input_grad[1] else None
            if ctx.two_sided and ctx.needs_input_grad[2]:
                grad_k_rev = full[..., L:].flip(-1)
        return grad_u, grad_k, grad_k_rev


@register("fftconv", "torch")
def fftconv_torch(u: torch.Tensor, k: torch.Tensor, k_rev: torch.Tensor | None) -> torch.Tensor:
    return _FFTConv.apply(u, k, k_rev)


def fftconv(u: torch.Tensor, k: torch.Tensor, k_rev: torch.Tensor | None = None) -> torch.Tensor:
    """u (B, H, L) and k, k_rev (C, H, L) real -> y (B, C, H, L)."""
    if u.dim() != 3:
        raise ValueError(f"u: expected shape (B, H, L), got {tuple(u.shape)}")
    for name, t in (("k", k), ("k_rev", k_rev)):
        if t is not None and (t.dim() != 3 or t.shape[1:] != u.shape[1:]):
            raise ValueError(f"{name}: expected shape (C, {u.shape[1]}, {u.shape[2]}), got {tuple(t.shape)}")
    return implementation("fftconv", u.device)(u, k, k_rev)
