"""Linear recurrence by a parallel associative scan — the compute of S5 (and of any diagonal time-varying SSM).

    x_k = a_k ⊙ x_{k−1} + b_k,   k = 0 .. L−1,   x_{−1} = 0          a, b: (B, L, P), complex or real

The elements (a_k, b_k) compose associatively: (a_i, b_i) • (a_j, b_j) = (a_j a_i, a_j b_i + b_j). The torch
reference scans by even/odd halving (Blelloch-style): combine neighbouring pairs, scan the half-length sequence of
pairs recursively (it yields x at odd positions), then fill in the even positions with one more step. Work O(L·P),
depth O(log L), memory O(L·P) (a geometric series of halves); gradients come from autograd through it.
"""
from __future__ import annotations

import torch

from .dispatch import implementation, register


def _scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    L = a.shape[1]
    if L == 1:
        return b
    if L % 2:  # pad with the identity element (a = 1, b = 0) to an even length
        a = torch.cat([a, torch.ones_like(a[:, :1])], dim=1)
        b = torch.cat([b, torch.zeros_like(b[:, :1])], dim=1)
    a_even, a_odd, b_even, b_odd = a[:, 0::2], a[:, 1::2], b[:, 0::2], b[:, 1::2]
    x_odd = _scan(a_odd * a_even, a_odd * b_even + b_odd)  # x_1, x_3, x_5, ...
    x_prev = torch.cat([torch.zeros_like(x_odd[:, :1]), x_odd[:, :-1]], dim=1)  # x_{2i−1}, with x_{−1} = 0
    x_even = a_even * x_prev + b_even
    return torch.stack([x_even, x_odd], dim=2).flatten(1, 2)[:, :L]


@register("scan", "torch")
def scan_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _scan(a, b)


def scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x_k = a_k x_{k−1} + b_k over dim 1: a, b (B, L, P) (a may broadcast over B or P) -> x (B, L, P)."""
    if b.dim() != 3:
        raise ValueError(f"b: expected shape (B, L, P), got {tuple(b.shape)}")
    if a.dim() != 3 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a: expected shape (B, L={b.shape[1]}, P) broadcastable to b, got {tuple(a.shape)}")
    a = a.expand_as(b) if a.shape != b.shape else a
    return implementation("scan", b.device)(a, b)
