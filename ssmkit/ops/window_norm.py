"""BatchNorm's training step over the channels of a padded batch x (B, L, H), its statistics taken over the first
``count`` positions of every row only (the positions before the batch's longest sequence: layers/norms.py Longest),
its normalization applied to every position:

    w_l = [l < count],   n = B · count,   μ = Σ_{b,l} w_l x_blh / n,   σ² = Σ_{b,l} w_l (x_blh − μ)² / n,
    y = γ (x − μ) / √(σ² + ε) + β

with the statistics in float32 at least and y in x's dtype; μ and the biased σ² are returned for the running averages.
``count`` is a tensor on x's device, read there (no host sync: the op can run inside a CUDA graph). With
x̂ = (x − μ) s, s = 1/√(σ² + ε), a = γ s, and ġ = ∂L/∂y, the gradients sum over every position (each output reads
μ and s) while only the window moves the statistics:

    ∂L/∂β = Σ ġ,   ∂L/∂γ = Σ ġ x̂,   ∂L/∂x = a (ġ − w (∂L/∂β + x̂ ∂L/∂γ) / n)

The reference is PyTorch ops under autograd, about a dozen passes over x forward and twice as many backward (on an
H100 in lra-listops' step, ~8 ms of its 21 under a whole-model CUDA graph); the Triton version
(ops/triton_window_norm.py) reads x twice forward and x, ġ twice backward. While torch.compile, torch.export, ONNX
export or the JIT tracer records the op, the reference runs.
"""
from __future__ import annotations

import torch

from .dispatch import implementation, recording, register


@register("window_norm", "torch")
def window_norm_torch(x, count, weight, bias, eps):
    dtype = torch.promote_types(x.dtype, torch.float32)
    xf = x.to(dtype)
    w = (torch.arange(x.shape[1], device=x.device) < count)[None, :, None].to(dtype)
    n = count.to(dtype) * x.shape[0]
    mean = (xf * w).sum((0, 1)) / n
    var = ((xf - mean).square() * w).sum((0, 1)) / n
    y = ((xf - mean) * torch.rsqrt(var + eps) * weight + bias).to(x.dtype)
    return y, mean.detach(), var.detach()


def window_norm(x: torch.Tensor, count: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, μ, σ²) of BatchNorm over x (B, L, H) with the statistics of each row's first ``count`` positions (a 0-d
    integer tensor, 1 ≤ count ≤ L) and the affine weight and bias (H,)."""
    if (x.dim() != 3 or count.dim() != 0 or count.is_floating_point() or count.is_complex()
            or weight.shape != x.shape[-1:] or bias.shape != x.shape[-1:]):
        raise ValueError(f"x, count, weight, bias: expected (B, L, H), an integer 0-d tensor, (H,), (H,), got "
                         f"{tuple(x.shape)}, {count.dtype} {tuple(count.shape)}, {tuple(weight.shape)}, "
                         f"{tuple(bias.shape)}")
    if recording():
        return window_norm_torch(x, count, weight, bias, eps)
    return implementation("window_norm", x.device)(x, count, weight, bias, eps)
