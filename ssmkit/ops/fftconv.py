"""Long convolution by FFT — the convolutional view of every SSM layer.

    y[b, c, h, t] = Σ_{j=0}^{t} k[c, h, j] u[b, h, t − j]  +  Σ_{j=0}^{L−2−t} k_rev[c, h, j] u[b, h, t + 1 + j]

The first sum is the causal convolution K ∗ u; the second, present only when ``k_rev`` is given, is the anti-causal
half of a bidirectional kernel (it never touches lag 0, which belongs to k). Both are computed by one real FFT of
size 2L, so the circular wrap-around never reaches the output (a linear, not circular, convolution).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import implementation, register


@register("fftconv", "torch")
def fftconv_torch(u: torch.Tensor, k: torch.Tensor, k_rev: torch.Tensor | None) -> torch.Tensor:
    L = u.shape[-1]
    n = 2 * L
    if k_rev is not None:
        k = F.pad(k, (0, L)) + F.pad(k_rev.flip(-1), (L, 0))
    u_f = torch.fft.rfft(u, n=n)  # (B, H, n/2+1)
    k_f = torch.fft.rfft(k, n=n)  # (C, H, n/2+1)
    return torch.fft.irfft(u_f[:, None] * k_f, n=n)[..., :L]


def fftconv(u: torch.Tensor, k: torch.Tensor, k_rev: torch.Tensor | None = None) -> torch.Tensor:
    """u (B, H, L) and k, k_rev (C, H, L) real -> y (B, C, H, L)."""
    if u.dim() != 3:
        raise ValueError(f"u: expected shape (B, H, L), got {tuple(u.shape)}")
    for name, t in (("k", k), ("k_rev", k_rev)):
        if t is not None and (t.dim() != 3 or t.shape[1:] != u.shape[1:]):
            raise ValueError(f"{name}: expected shape (C, {u.shape[1]}, {u.shape[2]}), got {tuple(t.shape)}")
    return implementation("fftconv", u.device)(u, k, k_rev)
