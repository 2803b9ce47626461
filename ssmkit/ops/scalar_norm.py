"""The official S4 code's scalar LayerNorm (TransposedLN(scalar=True)) as one op, over the last axis of x (..., H):

    y = s · (x − μ + m) · r,   μ = mean(x),  r = 1/√(var(x) + ε)       (one learned s and m for all channels)

with the statistics in float32 at least and y in x's dtype. Its gradients, for ġ = ∂L/∂y and x̂ = (x − μ)·r:

    ∂L/∂s = Σ ġ (x̂ + m r),   ∂L/∂m = Σ ġ s r,
    ∂L/∂x = r · (a − ā − x̂ · (mean(a x̂) + m r ā)),   a = s ġ, ā = mean(a) over the row

(the last term, m r ā, is r's dependence on x through the m r part of y). The reference is a few PyTorch ops, the
variance taken from the centered rows (two passes; on a CPU torch.var_mean over a short last axis took 2.3× as long
forward and backward, 60 against 26 ms at (8, 16000, 16)), whose autograd backward passes over the rows about a dozen
times; on the GPU the Triton version (ops/triton_scalar_norm.py) reads x once forward and x, ġ once backward. While
torch.compile, torch.export, ONNX export or the JIT tracer records the op, the reference runs.
"""
from __future__ import annotations

import torch

from .dispatch import implementation, recording, register


@register("scalar_norm", "torch")
def scalar_norm_torch(x, s, m, eps):
    z = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    mean = z.mean(-1, keepdim=True)
    centered = z - mean
    scale = s * torch.rsqrt(centered.square().mean(-1, keepdim=True) + eps)  # s·r per position
    return torch.addcmul(scale * m, centered, scale).to(x.dtype)


def scalar_norm(x: torch.Tensor, s: torch.Tensor, m: torch.Tensor, eps: float) -> torch.Tensor:
    """s · (x − mean + m) / √(var + eps) over the last axis of x (..., H); s and m of shape (1,)."""
    if s.shape != (1,) or m.shape != (1,) or x.dim() == 0:
        raise ValueError(f"x, s, m: expected (..., H), (1,), (1,), got {tuple(x.shape)}, {tuple(s.shape)}, "
                         f"{tuple(m.shape)}")
    if recording():
        return scalar_norm_torch(x, s, m, eps)
    return implementation("scalar_norm", x.device)(x, s, m, eps)
