"""The sequence backbone: encoder, residual blocks of any registered layer, pooling, decoder.

    h = Linear_in(x)                                      x: (B, L, d_input)
    h = h + Dropout(layer(Norm(h)))     (prenorm)   or    h = Norm(h + Dropout(layer(h)))   (postnorm), n_layers times
    out = Linear_out(pool(Norm_final(h)))                 pool: mean over valid steps | last valid step | none
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import layer as build_layer

POOLS = ("mean", "last", "none")
NORMS = ("layer", "batch")


class _BatchNorm(nn.Module):
    """BatchNorm over channels of (B, L, H)."""

    def __init__(self, d: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(d)

    def forward(self, x):
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class SequenceModel(nn.Module):
    def __init__(self, d_input: int, d_output: int, *, layer: str = "s4d", d_model: int = 64, n_layers: int = 4,
                 layer_options: dict | None = None, prenorm: bool = True, norm: str = "layer", dropout: float = 0.0,
                 pool: str = "mean"):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool: expected one of {POOLS}, got {pool!r}")
        if norm not in NORMS:
            raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
        make_norm = nn.LayerNorm if norm == "layer" else _BatchNorm
        self.prenorm, self.pool = prenorm, pool
        self.encoder = nn.Linear(d_input, d_model)
        self.layers = nn.ModuleList(build_layer(layer, d_model=d_model, **(layer_options or {}))
                                    for _ in range(n_layers))
        self.norms = nn.ModuleList(make_norm(d_model) for _ in range(n_layers))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.final_norm = make_norm(d_model) if prenorm else nn.Identity()
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, d_input) -> (B, d_output), or (B, L, d_output) with pool='none'. lengths (B,) masks padding."""
        h = self.encoder(x)
        for layer, norm in zip(self.layers, self.norms):
            if self.prenorm:
                h = h + self.dropout(layer(norm(h))[0])
            else:
                h = norm(h + self.dropout(layer(h)[0]))
        h = self.final_norm(h)
        if self.pool == "none":
            return self.decoder(h)
        L = h.shape[1]
        if lengths is None:
            lengths = torch.full((h.shape[0],), L, device=h.device)
        if self.pool == "last":
            return self.decoder(h[torch.arange(h.shape[0], device=h.device), lengths - 1])
        mask = (torch.arange(L, device=h.device)[None] < lengths[:, None]).to(h.dtype)[..., None]
        return self.decoder((h * mask).sum(1) / lengths[:, None].to(h.dtype))
