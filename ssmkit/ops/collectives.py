"""Collectives over a process group that autograd differentiates (torch.distributed's own are not recorded).

    gather(x)    -> X = stack_r x_r (K, ...) on every rank      adjoint:  ḡx_r = Σ_q ḡX^(q)[r]   (all_reduce, then row r)
    sum_ranks(x) -> Σ_r x_r on every rank                       adjoint:  ḡx_r = Σ_q ḡ^(q)          (all_reduce)

(ḡ^(q): the gradient that rank q's loss sends into the collective's output.) Backward runs a collective, so every
rank's loss must depend on the output (with weight 0 where it does not matter): a rank whose graph skips it would
leave the others waiting.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad[dist.get_rank(ctx.group)], None


class _SumRanks(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        total = x.contiguous().clone()
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def gather(x: torch.Tensor, group=None) -> torch.Tensor:
    """Every rank's x, stacked in rank order: (K, *x.shape), on every rank."""
    return _Gather.apply(x, group)


def sum_ranks(x: torch.Tensor, group=None) -> torch.Tensor:
    """Σ over the ranks of x, on every rank."""
    return _SumRanks.apply(x, group)
