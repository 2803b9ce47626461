"""Normalizations over the channels (last axis) of (B, ..., H), chosen by name (the ``norm`` option of the backbones
and of Mega):

    layer   LayerNorm:     (x − mean) / √(var + ε) · w + b                     per position, over the channels
    batch   BatchNorm:     (x − E x) / √(Var x + ε) · w + b                    per channel, over the batch and positions
    scale   ScaleNorm:     g · x / √(mean(x²) + ε)                             per position, one learned scalar g (= 1)
    rms     RMSNorm:       x / √(mean(x²) + ε) · w                             per position, per-channel w (= 1)
    scalar  ScalarLayerNorm:  s · (x − mean + m) / √(var + ε₀)              per position, one learned s (= 1), m (= 0)

with ε = 1e-5 for the first four. ``scalar`` is the official S4 repository's TransposedLN(scalar=True)
(src/models/nn/normalization.py), the norm of its SaShiMi and U-Net backbones (transposed, norm: layer); the official
has no ε (a position whose channels are all equal divides by zero); ε₀ = 1e-12 keeps that finite and moves the output by
about 1e-12 relative (benchmarks/versus_official.py). ScaleNorm and RMSNorm are the official Mega's
(facebookresearch/mega, fairseq/modules/scale_norm.py, root_mean_square_norm.py, built with ε = 1e-5 by its
sequence_norm.py), used by its LRA Text and Retrieval models. BatchNorm over a padded batch takes its training
statistics from the real positions only (``real``) and sets the padding to 0; or, given ``Longest``, from every
row's positions before the batch's longest sequence (what the official S4 LRA backbone's BatchNorm reads of a batch
padded to its longest), by ops.window_norm, with no shape that depends on the lengths (a CUDA graph can hold it).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import nn

from ..ops import scalar_norm, window_norm

NORMS = ("layer", "batch", "scale", "rms", "scalar")
EPS, SCALAR_EPS = 1e-5, 1e-12


class Longest(NamedTuple):
    """The positions t < max(lengths) of every row of a padded batch (B, L, H): ``count``, max(lengths) as a 0-d
    tensor on the batch's device (never read on the host)."""

    count: torch.Tensor

    @classmethod
    def of(cls, lengths: torch.Tensor) -> "Longest":
        return cls(lengths.max())


class ChannelBatchNorm(nn.Module):
    """BatchNorm over the channels (last axis) of (B, ..., H), statistics over the batch and every position; for
    (B, L, H) with real (B, L) in training, the statistics (and the running averages) come from the real positions
    only, and the padding positions are set to 0."""

    def __init__(self, d: int, momentum: float = 0.1):
        super().__init__()
        self.norm = nn.BatchNorm1d(d, eps=EPS, momentum=momentum)

    def forward(self, x, real=None):
        if x.dim() == 2:
            return self.norm(x)
        if real is None or not self.training:  # the (B·L, H) rows: the same statistics, no layout copies
            return self.norm(x.reshape(-1, x.shape[-1])).view(x.shape)
        if isinstance(real, Longest):
            return self._window(x, real.count)
        out = torch.zeros_like(x)
        out[real] = self.norm(x[real])
        return out

    def _window(self, x: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """BatchNorm's training step with the statistics of each row's first ``count`` positions of (B, L, H)
        (ops.window_norm, in float32 at least): mean and biased variance normalize, the unbiased variance
        (n / (n − 1)) and the mean update the running averages by the momentum, as nn.BatchNorm1d over those rows
        alone."""
        bn = self.norm
        if isinstance(bn, nn.SyncBatchNorm) and torch.distributed.is_available() and \
                torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            raise ValueError("longest_norms: BatchNorm's statistics over each batch's longest sequence are one "
                             "process's own, where DistributedDataParallel synchronizes them; set trim_padding=true")
        y, mean, var = window_norm(x, count, bn.weight, bn.bias, bn.eps)
        if bn.track_running_stats:
            with torch.no_grad():
                n = count.to(var.dtype) * x.shape[0]
                bn.running_mean.lerp_(mean.to(bn.running_mean.dtype), bn.momentum)
                bn.running_var.lerp_((var * n / (n - 1)).to(bn.running_var.dtype), bn.momentum)
                bn.num_batches_tracked += 1
        return y


class ScaleNorm(nn.Module):
    """g · x / √(mean over the channels of x² + ε), one learned gain g starting at 1."""

    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.square().mean(-1, keepdim=True) + EPS)


class ScalarLayerNorm(nn.Module):
    """s · (x − mean + m) / √(var + ε₀) over the channels (last axis), one learned s (= 1) and m (= 0) for every
    channel (module docstring: the official TransposedLN(scalar=True)); the statistics in float32 at least. One op
    (ops.scalar_norm: a Triton kernel forward and backward on the GPU)."""

    def __init__(self, d: int):
        super().__init__()
        self.d, self.eps = d, SCALAR_EPS
        self.s, self.m = nn.Parameter(torch.ones(1)), nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return scalar_norm(x, self.s, self.m, self.eps)


def norm_class(norm: str, bn_momentum: float = 0.1) -> Callable[[int], nn.Module]:
    """The module of a ``norm`` option (module docstring); each is built as cls(d). bn_momentum: BatchNorm's running
    average weight of each new batch (torch's convention: flax's momentum m is 1 − m here)."""
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
    if not 0 < bn_momentum <= 1:
        raise ValueError(f"bn_momentum: expected a weight in (0, 1], got {bn_momentum!r}")
    return {"layer": lambda d: nn.LayerNorm(d, eps=EPS), "batch": lambda d: ChannelBatchNorm(d, bn_momentum),
            "scale": ScaleNorm, "rms": lambda d: nn.RMSNorm(d, eps=EPS), "scalar": ScalarLayerNorm}[norm]


def apply_norm(norm: nn.Module, h: torch.Tensor, real=None) -> torch.Tensor:
    """norm(h), with the real positions (B, L) of a padded batch for BatchNorm's statistics."""
    return norm(h, real) if isinstance(norm, ChannelBatchNorm) else norm(h)
