"""The S4 block's output map, GLU(x Wᵀ + b) = (x W_aᵀ + b_a) ⊙ σ(x W_gᵀ + b_g), as one op.

W (2H', H) stacks the value rows W_a over the gate rows W_g. The torch reference is F.glu(F.linear(...)); the Triton
version (ops/triton_linear_glu.py) computes both halves and the gate in one kernel for the few rows of a generation
step, where two launches and a (B, 2H') intermediate cost more than the arithmetic.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import implementation, register


@register("linear_glu", "torch")
def linear_glu_torch(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return F.glu(F.linear(x, weight, bias), dim=-1)


def linear_glu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x (B, H) -> (B, H') for weight (2H', H), bias (2H',) or None."""
    if x.dim() != 2 or weight.dim() != 2 or weight.shape[1] != x.shape[1] or weight.shape[0] % 2:
        raise ValueError(f"x, weight: expected (B, H) and (2H', H), got {tuple(x.shape)} and {tuple(weight.shape)}")
    return implementation("linear_glu", x.device)(x, weight, bias)
