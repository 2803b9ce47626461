"""The GLU output map of a layer, one op: the Linear and the gate together.

    y = a ⊙ σ(g),   [a | g] = x Wᵀ + bias        x (..., K), W (2H, K), bias (2H,) -> y (..., H)

nn.Sequential(nn.Linear(K, 2H), nn.GLU()) computes the same, and is the reference. On the GPU the Triton version
(ops/triton_linear_glu.py) takes a token step's rows in one launch instead of a GEMM and an elementwise kernel (what
generation at small batch pays for), and whole sequences in float32 with a tile forward that fuses the gate. While
torch.compile, torch.export, ONNX export or the JIT tracer records the op, the reference runs: it is what they can
read.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import implementation, recording, register


@register("linear_glu", "torch")
def linear_glu_torch(x, weight, bias):
    return F.glu(F.linear(x, weight, bias), dim=-1)


def linear_glu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """GLU(x Wᵀ + bias) over the last dimension: x (..., K), weight (2H, K), bias (2H,) -> (..., H)."""
    if weight.dim() != 2 or weight.shape[0] % 2 or x.shape[-1] != weight.shape[1] or bias.shape != weight.shape[:1]:
        raise ValueError(f"x, weight, bias: expected (..., K), (2H, K), (2H,), got {tuple(x.shape)}, "
                         f"{tuple(weight.shape)}, {tuple(bias.shape)}")
    if recording():
        return linear_glu_torch(x, weight, bias)
    return implementation("linear_glu", x.device)(x, weight, bias)
