"""Discretization of diagonal continuous SSMs x' = λ x + B u with step Δ (elementwise, any broadcastable shapes).

Each function returns (log Ā, B̄): the logarithm of the discrete transition (what the Vandermonde product consumes,
since Ā^l = exp(l·log Ā)) and the discrete input matrix.
"""
from __future__ import annotations

import torch

DISCRETIZATIONS = ("zoh", "bilinear")


def discretize_zoh(dtA: torch.Tensor, dt: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ZOH: Ā = e^{Δλ}, B̄ = (e^{Δλ} − 1)/λ · B = Δ·(e^{Δλ} − 1)/(Δλ) · B.  Takes dtA = Δλ."""
    return dtA, dt * (torch.exp(dtA) - 1) / dtA * B


def discretize_bilinear(dtA: torch.Tensor, dt: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear: Ā = (1 + Δλ/2)/(1 − Δλ/2), B̄ = Δ B/(1 − Δλ/2).  Takes dtA = Δλ."""
    denom = 1 - dtA / 2
    return torch.log((1 + dtA / 2) / denom), dt * B / denom


def discretize(disc: str, dtA: torch.Tensor, dt: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if disc == "zoh":
        return discretize_zoh(dtA, dt, B)
    if disc == "bilinear":
        return discretize_bilinear(dtA, dt, B)
    raise ValueError(f"disc: expected one of {DISCRETIZATIONS}, got {disc!r}")
