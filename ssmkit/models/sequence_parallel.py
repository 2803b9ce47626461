"""Training on sequences split over the ranks of a process group: each rank holds T = L / K consecutive positions.

    group = torch.distributed.new_group()                 # or None for the default group, under torchrun
    x_r = part(x, group)                                  # this rank's positions of x (B, L, ...)
    y_r = model(x_r, sequence_group=group)                # per-position outputs of those positions, or the pooled
    loss_r = share of the loss                            #   output of the whole sequence (mean pooling)
    loss_r.backward(); sum_gradients(model, group); optimizer.step()

Each rank's loss is its share, so that the ranks' losses add up to the loss of the whole sequence: a per-position
loss summed over this rank's positions and divided by the whole count, or, for a pooled model (every rank gets the
same output), the loss divided by the number of ranks. Then the gradients summed over the ranks are those of the
one-process computation (the SSM layers pass states forward and adjoint states back, layers/sequence_parallel.py).
Only per-position blocks are allowed besides the SSM layers: LayerNorm, FFN, dropout (BatchNorm's statistics would
be those of one part).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from ..ops.collectives import sum_ranks


def part(x: torch.Tensor, group=None, dim: int = 1) -> torch.Tensor:
    """This rank's T = L / K consecutive positions of x along ``dim`` (rank r: positions rT … rT + T − 1)."""
    K, rank = dist.get_world_size(group), dist.get_rank(group)
    L = x.shape[dim]
    if L % K:
        raise ValueError(f"x: expected a length divisible by the {K} ranks of the sequence group, got {L}")
    return x.narrow(dim, rank * (L // K), L // K)


def global_mean(h: torch.Tensor, group) -> torch.Tensor:
    """The mean over the positions (dim 1) of every rank's part: (B, T, H) -> (B, H), equal on every rank."""
    return sum_ranks(h.sum(1), group) / (h.shape[1] * dist.get_world_size(group))


def sum_gradients(module: nn.Module, group=None) -> None:
    """Sum every parameter's gradient over the ranks (after backward of each rank's share of the loss)."""
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, group=group)


def check_sequence_parallel(model, lengths) -> None:
    """A SequenceModel that can run on a split sequence: one tower, no padding, LayerNorm, mean pooling or none."""
    for name, bad, why in [("lengths", lengths is not None, "a padded batch"),
                           ("pair", model.pair, "a two-tower model"),
                           ("norm", model.config["norm"] == "batch", "BatchNorm (its statistics would be a part's)"),
                           ("pool", model.pool == "last", "pool='last' (the last position is one rank's)")]:
        if bad:
            raise ValueError(f"{name}: a sequence split over ranks cannot use {why}; use one process for it")
