"""The state passed between chunks — the sequential part of the chunked convolution (ops.chunkconv).

    X_0 = 0,   X_c = A X_{c−1} + S_{c−1}        c = 1 .. n−1      (X_c: the state entering chunk c)

S (H, B, n, D) holds each chunk's own contribution to its end state. A is a real matrix per channel, (H, D, D)
acting on the last axis of S, or a complex vector (H, D/2) acting elementwise on S read as interleaved complex pairs.
The gradient is the same scan run backwards with Aᵀ (or conj A):  ∂S_c = Σ_{c' > c} (Aᵀ)^{c'−c−1} ∂X_{c'},  and
∂A = Σ_{b, c} ∂S_c X_cᵀ (for complex A: Σ ∂S_c conj(X_c)).

The torch reference walks the chunks in a Python loop (it is the truth in tests and runs on any device); the Triton
version (ops/triton_chunk_scan.py) walks them inside one kernel.
"""
from __future__ import annotations

import torch

from .dispatch import implementation, register


def scan_reference(A: torch.Tensor, S: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """The exclusive scan X (forward: X_c = A X_{c−1} + S_{c−1}; reverse: X_c = A X_{c+1} + S_{c+1})."""
    complex_A = A.is_complex()
    Sv = torch.view_as_complex(S.unflatten(-1, (-1, 2))) if complex_A else S
    order = range(Sv.shape[2] - 1, -1, -1) if reverse else range(Sv.shape[2])
    x, out = torch.zeros_like(Sv[:, :, 0]), [None] * Sv.shape[2]
    for c in order:
        out[c] = x
        x = (A[:, None] * x if complex_A else torch.einsum("hde,hbe->hbd", A, x)) + Sv[:, :, c]
    X = torch.stack(out, dim=2)
    return torch.view_as_real(X).flatten(-2) if complex_A else X


@register("chunk_scan", "torch")
def chunk_scan_torch(A: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    return scan_reference(A, S)


def chunk_scan(A: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """S (H, B, n, D) real; A (H, D, D) real or (H, D/2) complex -> X (H, B, n, D), the state entering each chunk."""
    if S.dim() != 4 or S.is_complex():
        raise ValueError(f"S: expected real (H, B, n, D), got {tuple(S.shape)} {S.dtype}")
    H, _, _, D = S.shape
    expected = (H, D // 2) if A.is_complex() else (H, D, D)
    if tuple(A.shape) != expected or (A.is_complex() and D % 2):
        raise ValueError(f"A: expected shape {expected} for S of shape {tuple(S.shape)}, got {tuple(A.shape)}")
    return implementation("chunk_scan", S.device)(A, S)
