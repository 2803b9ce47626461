"""The liquid terms as the official Liquid-S4 code computes them (raminmh/liquid-s4, src/models/sequence/ss/s4.py,
S4.forward with liquid_kernel 'kb' | 'polyb' and allcombs=True), for reproducing its published numbers.

It departs from the paper's causal formula (layers.liquid) in four ways, all kept here on purpose:
- the order-p input products are not u_k u_{k−1} ⋯ but, for each of the L output positions, the product of one
  p-combination of the last n positions of the sequence (n the smallest with C(n, p) >= L; the last L combinations
  in lexicographic order, zero-padded when fewer), and this sequence is time-reversed before use (non-causal);
- the coefficients come from tensors frozen at initialization, with a diagonal-only B̄ = Δ (1 − Δ/2·λ)^{-1} B (the
  low-rank term dropped): S = Σ_n B̄_n over both halves of each conjugate pair, and c = Re Σ_n C_n B̄_n;
- pb ('polyb'): y += c·S^{2^{p−1}−1} ⊙ reversed products (one weight per order and channel, no kernel; the
  exponent because the official loop replaces B̄ by B̄·Σ B̄ at each order: S, S³, S⁷);
- kb: the current kernel K times S^{p−1}, transformed by an (L+1)-point complex FFT and multiplied bin by bin with
  the 2L-point real FFT of the reversed products, then a 2L-point inverse real FFT, first L values.
A bidirectional layer (its kernel channels: C causal, then C anti-causal) adds, in pb, the anti-causal channels'
c·S^{2^{p−1}−1} times the products unreversed; in kb the (L+1)-point FFT reads the first L + 1 entries of the
official two-sided kernel (the causal half's L lags, then the anti-causal half's farthest lag).
There is no recurrent view.
"""
from __future__ import annotations

import functools
import itertools
import math

import torch


def combination_indices(L: int, p: int) -> torch.Tensor:
    """(≤ L, p) positions multiplied together at each output position (the official get_combs_cache)."""
    n = next((m for m in range(2, L) if math.comb(m, p) >= L), 1)
    combos = list(itertools.combinations(range(L - n, L), p))[-L:]
    return torch.tensor(combos, dtype=torch.long).reshape(-1, p)


@functools.lru_cache(maxsize=32)
def _indices_on(L: int, p: int, device: torch.device) -> torch.Tensor:
    """combination_indices on a device, copied there once per (L, p): the copy of a host tensor waits for the device
    (and a CUDA graph's capture refuses it)."""
    return combination_indices(L, p).to(device)


def official_products(x: torch.Tensor, order: int) -> list[torch.Tensor]:
    """[U^(2), ..., U^(order)] (B, H, L) each, time-reversed, from x (B, H, L)."""
    L, out = x.shape[-1], []
    for p in range(2, order + 1):
        idx = _indices_on(L, p, x.device)
        # index_select, not x[..., idx]: its backward (index_add) is 2-3x faster on a CPU than advanced indexing's
        U = x.index_select(-1, idx[:, 0])
        for j in range(1, p):
            U = U * x.index_select(-1, idx[:, j])
        out.append(torch.nn.functional.pad(U, (0, L - U.shape[-1])).flip(-1))
    return out


def official_liquid(x: torch.Tensor, K: torch.Tensor, sum_dB: torch.Tensor, CB: torch.Tensor, order: int,
                    kernel: str, bidirectional: bool = False) -> torch.Tensor:
    """The liquid terms (B, C, H, L) added to y. x (B, H, L), K (C, H, L) the current kernel, sum_dB (H,) = S and
    CB (C, H) = c frozen at initialization (module docstring); bidirectional: K and CB hold 2C channels, the C causal
    ones first."""
    L = x.shape[-1]
    C = K.shape[0] // 2 if bidirectional else K.shape[0]
    if bidirectional and kernel == "kb":  # index L of the two-sided layout: the anti-causal half's lag −L
        K = torch.cat([K[:C], K[C:, :, -1:]], -1)
    y = 0
    for p, U in zip(range(2, order + 1), official_products(x, order)):
        if kernel == "pb":
            w = (CB * sum_dB ** (2 ** (p - 1) - 1))[..., None]  # (C or 2C, H, 1)
            y = y + w[:C] * U[:, None]
            if bidirectional:
                y = y + w[C:] * U.flip(-1)[:, None]
        else:
            k_f = torch.fft.fft((K * (sum_dB ** (p - 1))[:, None]).to(torch.complex128 if K.dtype == torch.float64
                                                          else torch.complex64), n=L + 1)
            y = y + torch.fft.irfft(k_f * torch.fft.rfft(U, n=2 * L)[:, None], n=2 * L)[..., :L]
    return y
