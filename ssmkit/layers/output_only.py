"""A sequence layer where a module that returns one tensor is expected (nn.Sequential, most model code)."""
from __future__ import annotations

import torch
from torch import nn


class OutputOnly(nn.Module):
    """``OutputOnly(layer)(u) == layer(u)[0]``: the output of a whole-sequence forward, without the state.

    A layer that returns (y, state), as every ssmkit layer does, gives y; a module that already returns one tensor
    gives it whole (never its first batch row).

    nn.Sequential(nn.Linear(3, 64), ssmkit.OutputOnly(ssmkit.S4D(64)), nn.GELU(), ...). Keyword arguments (rate,
    dt_scale) go through to the layer; its parameters, and their SSM optimizer settings, are the layer's.
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, u: torch.Tensor, **options) -> torch.Tensor:
        out = self.layer(u, **options)
        return out[0] if isinstance(out, (tuple, list)) else out
