"""SGConv: the structured global convolution kernel (Li, Cai, Zhang, Chen, Dey 2022).

With S = ⌈log₂(l_max/d)⌉ + 1 scales and learnable sub-kernels k_i ∈ R^{C×H×d}:

    piece_i = α_h^i · upsample(k_i, to length d·2^{max(i−1, 0)})        (linear interpolation)
    K = concat(piece_0, ..., piece_{S−1})[:L] / ν,     ν = ‖concat(piece_0, ..., piece_{S−1})‖ at initialization

(per output and input channel), so the parameters grow with log L (C·H·d·S) and the kernel decays with distance
(α ∈ (0, 1)): the paper's two principles. The official GConv weighs piece i by m_h^{S−1−i} with the multipliers
m_h = linspace(decay_min, decay_max, H) (2 and 2 by default): after the normalization that is α_h = 1/m_h, so
``decay`` is one α for every channel (0.5: the official default) or [α_first, α_last], whose multipliers 1/α are
spread linearly over the channels as decay_min..decay_max there. The normalizer ν is the norm of the whole initial kernel, a fixed buffer
without gradient, as in the official code (ctlllll/SGConv, gconv_standalone.py GConv.forward: kernel_norm, set at the
first forward and frozen); here it is set at construction, from the same initial weights. The sub-kernels train at
their own learning rate (kernel_lr, 1e-3 there) with the ordinary weight decay. A plain convolution kernel: there is
no recurrent view, and asking for one is an error.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import set_optim


class SGConvKernel(nn.Module):
    def __init__(self, d_model: int, l_max: int, channels: int = 1, kernel_dim: int = 64,
                 decay: float | list[float] = 0.5, kernel_lr: float | None = 1e-3):
        super().__init__()
        if not isinstance(l_max, int) or l_max < 1:
            raise ValueError(f"l_max: SGConv sets its number of scales from the longest input; expected a positive "
                             f"integer, got {l_max!r}")
        if not isinstance(kernel_dim, int) or kernel_dim < 2:
            raise ValueError(f"kernel_dim: expected an integer >= 2, got {kernel_dim!r}")
        pair = isinstance(decay, (list, tuple))
        if not all(isinstance(a, (int, float)) and not isinstance(a, bool) and 0 < a < 1
                   for a in (decay if pair else [decay])) or (pair and len(decay) != 2):
            raise ValueError(f"decay: expected a factor in (0, 1), or [first, last] two of them (the channels' "
                             f"factors between), got {decay!r}")
        if kernel_lr is not None and not kernel_lr > 0:
            raise ValueError(f"kernel_lr: expected None (the model's lr) or a positive learning rate, got {kernel_lr}")
        self.H, self.channels, self.l_max, self.d = d_model, channels, l_max, kernel_dim
        self.decay = tuple(float(a) for a in decay) if pair else float(decay)  # numbers: no tensor to initialize
        self.n_scales = max(0, math.ceil(math.log2(l_max / kernel_dim))) + 1
        self.pieces = nn.ParameterList(nn.Parameter(torch.randn(channels, d_model, kernel_dim))
                                       for _ in range(self.n_scales))
        if kernel_lr is not None:
            for i in range(self.n_scales):
                set_optim(self.pieces, str(i), {"lr": kernel_lr})
        with torch.no_grad():
            self.register_buffer("norm", self.full_kernel().norm(dim=-1, keepdim=True))

    @property
    def real_dtype(self) -> torch.dtype:
        return torch.float64 if self.pieces[0].dtype == torch.float64 else torch.float32

    def decays(self) -> torch.Tensor | float:
        """α: one number, or α_h (H, 1) = 1/m_h with m = linspace(1/α_first, 1/α_last, H), formed in float64."""
        if isinstance(self.decay, float):
            return self.decay
        first, last = self.decay
        device = self.pieces[0].device
        return 1 / torch.linspace(1 / first, 1 / last, self.H, dtype=torch.float64, device=device)[:, None]

    def full_kernel(self) -> torch.Tensor:
        """concat(piece_0, ..., piece_{S−1}), (C, H, d·2^{S−1}) — at least l_max long, before normalization."""
        parts, alpha = [], self.decays()
        for i, k in enumerate(self.pieces):
            k = k.to(self.real_dtype)
            if i > 1:
                k = F.interpolate(k, scale_factor=2 ** (i - 1), mode="linear")
            scale = alpha ** i
            parts.append((scale.to(k.dtype) if isinstance(scale, torch.Tensor) else scale) * k)
        return torch.cat(parts, dim=-1)

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """K (C, H, L) for L <= l_max."""
        if rate != 1.0:
            raise ValueError(f"rate: SGConv's kernel is a fixed sampled sequence; only rate=1 is defined, got {rate}")
        if L > self.l_max:
            raise ValueError(f"L: SGConv's kernel has l_max={self.l_max} positions, got {L}")
        return self.full_kernel()[..., :L] / self.norm.to(self.real_dtype)

    def _no_recurrence(self):
        raise ValueError("SGConv has no recurrent view (its kernel is not generated by a state space model); use "
                         "forward(u) without state")

    @property
    def state_shape(self):
        self._no_recurrence()

    def default_state(self, batch_size: int):
        self._no_recurrence()

    def recurrence(self, rate: float = 1.0):
        self._no_recurrence()
