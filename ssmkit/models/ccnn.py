"""CCNN (Knigge, Romero et al. 2023, "Modelling Long Range Dependencies in ND: From Task-Specific to a General
Purpose CNN"): one residual network of continuous-kernel convolutions for sequences (dim 1) and images (dim 2).

    h = GELU(BN(CKConv_in(x)))                                                  CKConv_in: d_input -> H channels
    block ×n:  h = h + GELU(Linear(Dropout(GELU(CKConv(BN(h))))))              (prenorm, identity shortcut)
    logits = Linear(mean over positions of BN(h))

x and h are channels last: (B, L, C) or (B, X, Y, C). CKConv is the separable flex convolution (layers/ckconv.py):
causal and as long as the input for sequences, a centered kernel_size² grid for images. BN is BatchNorm over the
channels (statistics over the batch and every position), Dropout zeroes whole channels (the official Dropout2d).
Sizes of the paper: CCNN-4,140 (n_layers 4, d_model 140, kernel hidden 32) and CCNN-6,380 (6, 380, hidden 64);
ω0, the mask's initial width and the dropout are per task in the official configs (sMNIST: ω0 2976.49, width 0.075,
dropout 0.1; AdamW lr 0.01, cosine with warmup). ``rate`` resamples every kernel (a resolution change, see
kernels/continuous.py).
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers.ckconv import CKConv
from ..layers.dropout import dropout as make_dropout
from ..layers.norms import ChannelBatchNorm
from .pretrained import Pretrained


class CCNN(Pretrained, nn.Module):
    def __init__(self, d_input: int, d_output: int, *, d_model: int = 140, n_layers: int = 4, dim: int = 1,
                 l_max: int | None = None, kernel_size: int = 33, hidden: int = 32, omega_0: float = 2976.49,
                 mask_width: float = 0.075, threshold: float = 0.1, dropout: float = 0.1):
        super().__init__()
        self.config = dict(d_input=d_input, d_output=d_output, d_model=d_model, n_layers=n_layers, dim=dim,
                           l_max=l_max, kernel_size=kernel_size, hidden=hidden, omega_0=omega_0,
                           mask_width=mask_width, threshold=threshold, dropout=dropout)
        if not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers: expected a positive number of blocks, got {n_layers!r}")
        self.dim, self.d_input = dim, d_input
        self.dropout = make_dropout(dropout, tied=True)  # whole channels, as the official Dropout2d

        def conv(d_in: int) -> CKConv:
            return CKConv(d_in, l_max, dim=dim, kernel_size=kernel_size, d_output=d_model, hidden=hidden,
                          omega_0=omega_0, mask_width=mask_width, threshold=threshold)

        self.encoder, self.encoder_norm = conv(d_input), ChannelBatchNorm(d_model)
        self.norms = nn.ModuleList(ChannelBatchNorm(d_model) for _ in range(n_layers))
        self.convs = nn.ModuleList(conv(d_model) for _ in range(n_layers))
        self.linears = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(n_layers))
        for linear in self.linears:
            nn.init.kaiming_normal_(linear.weight)
            nn.init.zeros_(linear.bias)
        self.final_norm = ChannelBatchNorm(d_model)
        self.decoder = nn.Linear(d_model, d_output)
        nn.init.kaiming_normal_(self.decoder.weight)
        nn.init.zeros_(self.decoder.bias)
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor, lengths=None, rate: float = 1.0) -> torch.Tensor:
        """x (B, L, d_input) or (B, X, Y, d_input) -> logits (B, d_output); rate: the sample spacing over the trained
        one (kernels resampled)."""
        if lengths is not None:
            raise ValueError("lengths: CCNN takes whole inputs (its BatchNorm and mean pooling see every position); "
                             "pad to a common length without lengths, or use a dataset without padding")
        if not isinstance(x, torch.Tensor) or x.dim() != self.dim + 2 or x.shape[-1] != self.d_input:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected channels-last input (B, {self.dim} spatial sizes, d_input={self.d_input}), "
                             f"got {got}")
        h = self.gelu(self.encoder_norm(self.encoder(x, rate=rate)[0]))
        for norm, conv, linear in zip(self.norms, self.convs, self.linears):
            h = h + self.gelu(linear(self.dropout(self.gelu(conv(norm(h), rate=rate)[0]))))
        return self.decoder(self.final_norm(h).flatten(1, -2).mean(1))

    def weight_penalty(self) -> torch.Tensor:
        """Σ ‖p‖₂ over every parameter outside the kernel networks, plus Σ ‖K‖₂ over the kernels the last training
        forward sampled: the official CCNN's weight decay (ckconv/nn/loss.py LnLoss, norm 2, unsquared), which its
        training step adds to the loss times optim.weight_decay (the trainer's weight_penalty)."""
        terms = [p.norm() for name, p in self.named_parameters() if ".kernel.net." not in f".{name}"]
        terms += [m.sampled_kernel.norm() for m in self.modules()
                  if isinstance(m, CKConv) and getattr(m, "sampled_kernel", None) is not None]
        return torch.stack(terms).sum()
