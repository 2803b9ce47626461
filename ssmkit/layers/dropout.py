"""Dropout over channels-last features (B, ..., H), element-wise or tied across positions.

    elementwise   y = x ⊙ m / (1 − p),   m ~ Bernoulli(1 − p) for every entry (nn.Dropout)
    tied          y = x ⊙ m / (1 − p),   m ~ Bernoulli(1 − p) of shape (B, 1, ..., 1, H): one draw per sample and
                  channel, shared by every position

Tied dropout is the official S4 code's DropoutNd with tie=True (state-spaces/s4 src/models/nn/dropout.py), which its
model config turns on for every S4 experiment (configs/model/s4.yaml tie_dropout: true); S5's dropout broadcasts over
the length the same way, and CCNN drops whole channels. A single position (B, H), as in a recurrent step, draws per
entry: each step is its own position.
"""
from __future__ import annotations

import torch
from torch import nn


class TiedDropout(nn.Module):
    """Zeroes each (sample, channel) of x (B, ..., H) at every position with probability p, scaling by 1/(1 − p)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = x.new_ones(x.shape[0], *(1,) * (x.dim() - 2), x.shape[-1])
        return x * nn.functional.dropout(keep, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, tied over positions"


def dropout(p: float, tied: bool = False, name: str = "dropout") -> nn.Module:
    """The dropout module for rate p (checked, named ``name`` in the error): none at 0, else element-wise or tied."""
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {p!r}")
    if not isinstance(tied, bool):
        raise ValueError(f"tie_dropout: expected a bool, got {tied!r}")
    if p == 0:
        return nn.Identity()
    return TiedDropout(p) if tied else nn.Dropout(p)
