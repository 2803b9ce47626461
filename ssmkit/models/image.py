"""An isotropic residual network over channels-last images (and other N-D grids): S4ND's CIFAR-2D model.

    h = Linear_in(x)                                         x: (B, L_1, .., L_d, d_input)
    h = h + Dropout(layer(Norm(h)))   (prenorm)   or   h = Norm(h + Dropout(layer(h))),  n_layers times
    out = Linear_out(mean over all positions of Norm_final(h))      (B, d_output)   (Norm_final: prenorm only)

norm: ``layer`` (LayerNorm over the channels of each position; the official CIFAR-2D model) or ``batch``
(BatchNorm per channel, statistics over the batch and every position, as the 1-D LRA configs). On our Pathfinder-style
images (32 px, easy, 3,200 training images) the LayerNorm prenorm S4ND model does not even fit its training images
(at initialization its pooled features are a constant about 35 times their per-image spread); nor does the 1-D S4D
model with LayerNorm prenorm. With postnorm BatchNorm (and LegS, dt_min 0.001, N 64) S4ND fits them (95 % train after
10 epochs) but overfits (61.8 % test); with rank-2 kernels and dropout 0.1 it reaches 84.5 % test
(s4nd-pathfinder-small), the 1-D model with BatchNorm 81.8 %.

layer: ``s4nd`` (ssmkit.S4ND; layer_options are its options, e.g. l_max per axis, kernel, init, bandlimit) or
``conv``: GELU of a dense k × .. × k convolution with bias and 'same' zero padding, the paper's Conv2D baseline (the
official cnn-cifar-2d: the same backbone with a 3 × 3 conv2d layer, src/models/sequence/convs/conv2d.py; layer_options
kernel_size). tie_dropout=True draws one dropout mask per sample and channel for all positions, on the residual
branch and inside S4ND, as the official configs set (tie_dropout: true); by default it draws per element.

``model.config`` holds the constructor's arguments: ``save_pretrained`` / ``from_pretrained`` / ``ssmkit.load`` as for
SequenceModel (models/pretrained.py).

rate (forward): the S4ND layers sample their kernels at Δ·rate (one number or one per axis; S4ND's module docstring),
for an input at another resolution than the training's; a conv network has no continuous kernel and refuses it.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import S4ND
from ..layers.factory import factory_kwargs
from ..layers.dropout import dropout as make_dropout
from ..layers.norms import norm_class
from .pretrained import Pretrained

IMAGE_LAYERS = ("s4nd", "conv")


class ConvND(nn.Module):
    """y = GELU(conv(u)) over channels-last u (B, L_1, .., L_d, H): k^d taps, bias, zero 'same' padding; (y, None)."""

    def __init__(self, d_model: int, dim: int = 2, kernel_size: int = 3):
        super().__init__()
        if dim not in (1, 2, 3):
            raise ValueError(f"dim: a conv layer takes 1, 2 or 3 spatial axes, got {dim!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive integer ('same' padding), got {kernel_size!r}")
        conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dim - 1]
        self.conv = conv(d_model, d_model, kernel_size, padding=kernel_size // 2)
        self.activation = nn.GELU()

    def forward(self, u: torch.Tensor, state=None):
        return self.activation(self.conv(u.movedim(-1, 1)).movedim(1, -1)), None


class ImageModel(Pretrained, nn.Module):
    head_modules = ("encoder", "decoder")  # outside the official S4 backbone (train/optim.py decay_heads)

    @factory_kwargs
    def __init__(self, d_input: int, d_output: int, *, layer: str = "s4nd", d_model: int = 64, n_layers: int = 4,
                 dim: int = 2, layer_options: dict | None = None, prenorm: bool = True, dropout: float = 0.0,
                 norm: str = "layer", tie_dropout: bool = False):
        super().__init__()
        self.config = dict(d_input=d_input, d_output=d_output, layer=layer, d_model=d_model, n_layers=n_layers,
                           dim=dim, layer_options=dict(layer_options or {}), prenorm=prenorm, dropout=dropout,
                           norm=norm, tie_dropout=tie_dropout)
        make_norm = norm_class(norm)
        if layer not in IMAGE_LAYERS:
            raise ValueError(f"layer: expected one of {IMAGE_LAYERS}, got {layer!r}")
        self.dropout = make_dropout(dropout, tie_dropout)
        options = dict(layer_options or {})
        if layer == "s4nd" and tie_dropout:
            options.setdefault("tie_dropout", True)  # the official S4ND layer ties its dropout as the model does
        make = (lambda: S4ND(d_model, dim=dim, **options)) if layer == "s4nd" else (
            lambda: ConvND(d_model, dim, **options))
        self.layer, self.dim, self.prenorm = layer, dim, prenorm
        self.encoder = nn.Linear(d_input, d_model)
        self.layers = nn.ModuleList(make() for _ in range(n_layers))
        self.norms = nn.ModuleList(make_norm(d_model) for _ in range(n_layers))
        self.final_norm = make_norm(d_model) if prenorm else nn.Identity()
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x: torch.Tensor, lengths=None, rate: float | list | tuple = 1.0) -> torch.Tensor:
        """x (B, L_1, .., L_d, d_input) -> logits (B, d_output). rate: module docstring."""
        if lengths is not None:
            raise ValueError("lengths: an image model reads whole grids (no padding); got lengths")
        if x.dim() != self.dim + 2:
            raise ValueError(f"x: expected (B, L_1, .., L_{self.dim}, d_input) channels last, got {tuple(x.shape)}")
        if self.layer == "conv" and rate != 1.0:
            raise ValueError(f"rate: a conv network has no continuous kernel to resample; run it at rate 1, got "
                             f"{rate!r}")
        options = {} if self.layer == "conv" else {"rate": rate}
        h = self.encoder(x)
        for layer, norm in zip(self.layers, self.norms):
            if self.prenorm:
                h = h + self.dropout(layer(norm(h), **options)[0])
            else:
                h = norm(h + self.dropout(layer(h, **options)[0]))
        return self.decoder(self.final_norm(h).flatten(1, -2).mean(1))
