"""Causal convolution with a state-space kernel, by chunked state passing — no FFT.

For an LTI SSM in chunked form (kernels/chunked.py: Kt, Win, Wout, A for chunks of T steps), with u cut into chunks
U_c of T steps:

    S_c = U_c Win                               each chunk's own end state            (one matrix product)
    X_c = A X_{c−1} + S_{c−1}                   the state entering chunk c            (ops.chunk_scan)
    Y_c = U_c Toep(Kt + D δ)ᵀ + X_c Woutᵀ       inside the chunk + the carried state  (two matrix products)

which is y = K ∗ u + D u exactly (K_l = c M^l b), for any length. Work per sample: T + 2S multiply-adds for the
products and S²/T (dense A) for the scan, against O(log L) passes of an FFT at twice the length; the products run
as batched GEMMs over channels, the layout is channel-major (H, B, L) so that each channel's chunks are rows of one
matrix. The input is padded in front to whole chunks (zeros before a zero state change nothing).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .chunk_scan import chunk_scan


def toeplitz_t(Kt: torch.Tensor) -> torch.Tensor:
    """Toep(Kt)ᵀ stacked over output channels: Kt (Cch, H, T) -> (H, T, Cch·T), entry [h, i, c·T + j] = Kt[c, h, j − i]
    for j ≥ i, else 0 (row i: the input step, column j: the output step).

    Built from the windows of [0 (T−1 times), Kt] (a Hankel matrix W[i', j] = K_{i'+j−T+1}) with its rows reversed:
    unfold and flip have cheap backwards, where a gather's backward scatters."""
    Cch, H, T = Kt.shape
    band = F.pad(Kt, (T - 1, 0)).unfold(-1, T, 1).flip(-2)  # (Cch, H, T, T)
    return band.permute(1, 2, 0, 3).reshape(H, T, Cch * T)


def products(u: torch.Tensor, ToepT: torch.Tensor, Win: torch.Tensor, WoutT: torch.Tensor, A: torch.Tensor
             ) -> torch.Tensor:
    """The chunk products and scan: u (H, B, L) -> (H, B, L, Cch) with ToepT (H, T, Cch·T), Win (H, T, S),
    WoutT (H, S, Cch·T), A (H, S, S) or (H, S/2) complex."""
    H, B, L = u.shape
    T = ToepT.shape[1]
    Cch = ToepT.shape[2] // T
    pad = (-L) % T
    if pad:
        u = F.pad(u, (pad, 0))
    n = u.shape[-1] // T
    U = u.reshape(H, B * n, T)
    S = torch.bmm(U, Win)  # (H, B·n, S)
    X = chunk_scan(A, S.view(H, B, n, -1)).view(H, B * n, -1)
    Y = torch.baddbmm(torch.bmm(U, ToepT), X, WoutT)  # (H, B·n, Cch·T)
    Y = Y.view(H, B, n, Cch, T).transpose(-1, -2).reshape(H, B, n * T, Cch)
    return Y[:, :, pad:] if pad else Y


def chunkconv(u: torch.Tensor, Kt: torch.Tensor, Win: torch.Tensor, Wout: torch.Tensor, A: torch.Tensor,
              D: torch.Tensor | None = None) -> torch.Tensor:
    """u (H, B, L) real -> y (H, B, L, Cch): y = K ∗ u + D u for the chunked system (Kt, Win, Wout, A) (shapes in
    kernels/chunked.py); D (Cch, H) or None."""
    Cch, H, T = Kt.shape
    if u.dim() != 3 or u.shape[0] != H:
        raise ValueError(f"u: expected shape (H={H}, B, L), got {tuple(u.shape)}")
    if D is not None:
        Kt = torch.cat([Kt[..., :1] + D[..., None], Kt[..., 1:]], dim=-1)
    Wout_t = Wout.permute(1, 3, 0, 2).reshape(H, -1, Cch * T)  # (H, S, Cch·T)
    return products(u, toeplitz_t(Kt), Win, Wout_t, A)
