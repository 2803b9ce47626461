"""The GLU output map of a recurrent step, one op: the Linear and the gate together.

    y = a ⊙ σ(g),   [a | g] = x Wᵀ + bias        x (B, K), W (2H, K), bias (2H,) -> y (B, H)

nn.Sequential(nn.Linear(K, 2H), nn.GLU()) computes the same; on the GPU the Triton version (ops/triton_linear_glu.py)
does it in one launch instead of a GEMM and an elementwise kernel, which is what a token step of a small batch pays
for (generation is bound by launches, not by the 2HK weights it reads).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import implementation, register


@register("linear_glu", "torch")
def linear_glu_torch(x, weight, bias):
    return F.glu(F.linear(x, weight, bias), dim=-1)


def linear_glu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """GLU(x Wᵀ + bias) over the last dimension: x (..., K), weight (2H, K), bias (2H,) -> (..., H)."""
    if weight.dim() != 2 or weight.shape[0] % 2 or x.shape[-1] != weight.shape[1] or bias.shape != weight.shape[:1]:
        raise ValueError(f"x, weight, bias: expected (..., K), (2H, K), (2H,), got {tuple(x.shape)}, "
                         f"{tuple(weight.shape)}, {tuple(bias.shape)}")
    return implementation("linear_glu", x.device)(x, weight, bias)
