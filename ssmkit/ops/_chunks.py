"""Helpers shared by the ops that walk the length axis in chunks to bound memory."""
from __future__ import annotations

import torch

# Elements of the largest (..., N, chunk) temporary an op may build: 2^22 complex128 values are 64 MiB.
MAX_TEMP_ELEMENTS = 1 << 22


def chunk_length(rows: int, L: int) -> int:
    """How many positions of the length axis fit in one temporary of ``rows`` x chunk elements."""
    return max(1, min(L, MAX_TEMP_ELEMENTS // max(rows, 1)))


def sum_to_shape(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Undo broadcasting: sum ``grad`` over the dimensions that were expanded to reach its shape."""
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    for d, n in enumerate(shape):
        if n == 1 and grad.shape[d] != 1:
            grad = grad.sum(d, keepdim=True)
    return grad
