"""N-D convolution with a separable (sum of outer products) kernel by N-D FFT — the convolution of S4ND.

For d spatial axes, R rank-1 terms and per-axis kernels K^a_r (two-sided or causal), the kernel is

    K[c, h, j_1 .. j_d] = (1/R) Σ_r Π_a K^a_r[c, h, j_a]
    y[b, c, h, t] = Σ_j K[c, h, j] u[b, h, t − j]          (t, j: d-tuples; a linear, not circular, convolution)

with K^a(j) = k_a[j] for 0 <= j < l_a (the causal half) and K^a(j) = k_rev_a[−j − 1] for −l_a <= j < 0 (the
anti-causal half, when given; it never touches lag 0), and 0 elsewhere. Each axis is zero-padded to the FFT size
n_a = L_a + l_a (input length + kernel length): the causal lags fill [0, l_a), the anti-causal ones [L_a, n_a), and
no output position t < L_a reads a wrapped-around sample. The per-axis spectra are multiplied as an outer product,
so the full N-D kernel is never formed in the lag domain.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .dispatch import implementation, register


def two_sided(k: torch.Tensor, k_rev: torch.Tensor | None, n: int) -> torch.Tensor:
    """The length-n circular layout of a two-sided kernel: k[j] at index j, k_rev[m] at index n − 1 − m (lag −m−1)."""
    full = F.pad(k, (0, n - k.shape[-1]))
    return full if k_rev is None else full + F.pad(k_rev.flip(-1), (n - k_rev.shape[-1], 0))


@register("fftconv_nd", "torch")
def fftconv_nd_torch(u: torch.Tensor, k: Sequence[torch.Tensor], k_rev: Sequence[torch.Tensor] | None) -> torch.Tensor:
    d = len(k)
    L = u.shape[2:]
    n = [L[a] + k[a].shape[-1] for a in range(d)]
    axes = tuple(range(-d, 0))
    u_f = torch.fft.rfftn(u, s=n, dim=axes)  # (B, H, n_1, .., n_d/2+1)
    k_f = None
    for a in range(d):
        full = two_sided(k[a], None if k_rev is None else k_rev[a], n[a])  # (R, C, H, n_a)
        f = torch.fft.rfft(full, n=n[a]) if a == d - 1 else torch.fft.fft(full, n=n[a])
        f = f.reshape(f.shape[:3] + (1,) * a + f.shape[3:] + (1,) * (d - 1 - a))  # along axis a only
        k_f = f if k_f is None else k_f * f
    y = torch.fft.irfftn(u_f[:, None] * k_f.mean(0), s=n, dim=axes)  # (B, C, H, n_1, .., n_d)
    return y[(...,) + tuple(slice(0, length) for length in L)]


def fftconv_nd(u: torch.Tensor, k: Sequence[torch.Tensor], k_rev: Sequence[torch.Tensor] | None = None
               ) -> torch.Tensor:
    """u (B, H, L_1, .., L_d) real; k, k_rev: d per-axis kernels, k[a] (R, C, H, l_a) real -> y (B, C, H, L_1..L_d).

    See the module docstring: the kernel is the mean over R of the outer products of the per-axis kernels."""
    if not isinstance(k, (list, tuple)) or not k:
        raise ValueError(f"k: expected a list of per-axis kernels (R, C, H, l), got {type(k).__name__}")
    d = len(k)
    if u.dim() != d + 2:
        raise ValueError(f"u: expected shape (B, H, L_1, .., L_{d}) for {d} per-axis kernels, got {tuple(u.shape)}")
    if k_rev is not None and (not isinstance(k_rev, (list, tuple)) or len(k_rev) != d):
        raise ValueError(f"k_rev: expected None or a list of {d} per-axis kernels, got {type(k_rev).__name__}")
    lead = tuple(k[0].shape[:2]) if k[0].dim() == 4 else None
    for name, kernels in (("k", k), ("k_rev", k_rev or [])):
        for a, t in enumerate(kernels):
            if t.dim() != 4 or tuple(t.shape[:2]) != lead or t.shape[2] != u.shape[1] or t.shape[3] < 1:
                raise ValueError(f"{name}[{a}]: expected shape (R, C, H={u.shape[1]}, l >= 1) with the (R, C) of "
                                 f"k[0] {lead}, got {tuple(t.shape)}")
            if name == "k_rev" and t.shape[-1] != k[a].shape[-1]:
                raise ValueError(f"k_rev[{a}]: expected the length of k[{a}] ({k[a].shape[-1]}), got {t.shape[-1]}")
    return implementation("fftconv_nd", u.device)(u, k, k_rev)
