"""A Linear, y = x Wᵀ + b, whose backward sums the bias gradient by ops.column_sum:

    ẋ = ẏ W,   Ẇ = ẏᵀ x,   ḃ = Σ_rows ẏ   (over all leading axes of x, in float32 at least)

The forward and the two products are PyTorch's (addmm and mm in the compute dtype: the autocast dtype under autocast,
else the operands' own), so outputs and ẋ, Ẇ are F.linear's; only ḃ is summed by another kernel, in float32 and then
rounded to b's dtype once (autocast's Linear rounds it to the compute dtype first). On the GPU that kernel reads ẏ
once, where PyTorch's reduction of bf16 rows took ~8× that (docs/speed.md). Elsewhere (a CPU, SSMKIT_BACKEND=torch,
no gradient for b, while a compiler or exporter records) it is F.linear.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .column_sum import column_sum
from .dispatch import backend, recording


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, dtype):
        xc = x.to(dtype).reshape(-1, x.shape[-1])
        wc = weight.to(dtype)
        y = torch.addmm(bias.to(dtype), xc, wc.t())
        ctx.save_for_backward(xc, wc)
        ctx.shape, ctx.dtypes = x.shape, (x.dtype, weight.dtype, bias.dtype)
        return y.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        xc, wc = ctx.saved_tensors
        g = gy.reshape(-1, gy.shape[-1]).to(wc.dtype)
        x_dtype, w_dtype, b_dtype = ctx.dtypes
        gx = (g @ wc).view(ctx.shape).to(x_dtype) if ctx.needs_input_grad[0] else None
        gw = (g.t() @ xc).to(w_dtype) if ctx.needs_input_grad[1] else None
        gb = column_sum(g).to(b_dtype) if ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear(x, weight, bias), x (..., K), weight (N, K), bias (N,) or None; with the bias gradient summed by
    ops.column_sum where that runs in Triton (module docstring)."""
    device = x.device.type
    autocast = torch.is_autocast_enabled(device) and x.dtype in (torch.float32, torch.float16, torch.bfloat16)
    if (bias is None or not (torch.is_grad_enabled() and bias.requires_grad) or recording() or x.dim() < 2
            or backend("column_sum", x.device) != "triton"
            or not (autocast or x.dtype == weight.dtype == bias.dtype)):
        return F.linear(x, weight, bias)
    return _Linear.apply(x, weight, bias, torch.get_autocast_dtype(device) if autocast else x.dtype)
