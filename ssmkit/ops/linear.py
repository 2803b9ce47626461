"""A Linear, y = x Wᵀ + b, whose backward sums the bias gradient by ops.column_sum:

    ẋ = ẏ W,   Ẇ = ẏᵀ x,   ḃ = Σ_rows ẏ   (over all leading axes of x)

The forward and the two products are PyTorch's (addmm and mm), in one dtype: under autocast the operands are cast to
the autocast dtype first, by ordinary (differentiable) casts, as autocast's Linear casts them. So outputs and ẋ, Ẇ are
F.linear's; only ḃ is summed by another kernel. On the GPU that kernel reads ẏ once, where PyTorch's reduction of bf16
rows took ~8× that (docs/speed.md). Second derivatives (create_graph) go through the reference sum and the same
products, so they are F.linear's too. Elsewhere (a CPU, SSMKIT_BACKEND=torch, no gradient for b, empty K or N,
operands of mixed dtypes outside autocast, while a compiler or exporter records) it is F.linear. torch.func's
transforms and forward-mode AD do not go through the autograd Function: use SSMKIT_BACKEND=torch with them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .column_sum import column_sum
from .dispatch import backend, recording

_HALVES = (torch.float32, torch.float16, torch.bfloat16)  # what autocast casts
DEVICES = ("cuda",)  # where ops.column_sum has a kernel of its own


class _Linear(torch.autograd.Function):
    """y = x Wᵀ + b for x (..., K), W (N, K), b (N,) of one dtype; the output is a tensor of its own (not a view),
    so in-place ops on it are allowed as on F.linear's."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        N = weight.shape[0]
        y = x.new_empty(*x.shape[:-1], N)
        torch.addmm(bias, x.reshape(-1, x.shape[-1]), weight.t(), out=y.view(-1, N))
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        g = gy.reshape(-1, gy.shape[-1])
        gx = (g @ weight).view(x.shape) if ctx.needs_input_grad[0] else None
        gw = g.t() @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        gb = column_sum(g).to(weight.dtype) if ctx.needs_input_grad[2] else None
        return gx, gw, gb


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear(x, weight, bias), x (..., K), weight (N, K), bias (N,) or None; with the bias gradient summed by
    ops.column_sum where that runs in Triton (module docstring)."""
    device = x.device.type
    if (bias is None or device not in DEVICES or not (torch.is_grad_enabled() and bias.requires_grad) or recording()
            or x.dim() < 2 or x.shape[-1] == 0 or weight.shape[0] == 0 or backend("column_sum", x.device) != "triton"):
        return F.linear(x, weight, bias)
    if torch.is_autocast_enabled(device) and {x.dtype, weight.dtype, bias.dtype} <= set(_HALVES):
        dtype = torch.get_autocast_dtype(device)
        x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
    elif not x.dtype == weight.dtype == bias.dtype:
        return F.linear(x, weight, bias)
    return _Linear.apply(x, weight, bias)
