"""SGConv: the structured global convolution kernel (Li, Cai, Zhang, Chen, Dey 2022).

With S = ⌈log₂(l_max/d)⌉ + 1 − s scales (s = ``init_scale``) and learnable sub-kernels k_i ∈ R^{C×H×d}:

    cat (default):  piece_i = α_h^i · upsample(k_i, ×2^{max(i−1, 0)+s}),   K = concat(piece_0, ..., piece_{S−1})
    sum:            piece_i = α_h^i · upsample(k_i, ×2^{i+s}),             K = Σ_i pad(piece_i)   (all pieces from 0)
    K ← K[:L] / ν,  ν = ‖K‖ over the whole kernel at initialization

(per output and input channel; upsample: linear interpolation, or ``interpolation="nearest"``), so the parameters
grow with log L (C·H·d·S) and the kernel decays with distance (α ∈ (0, 1)): the paper's two principles. The official
GConv weighs piece i by m_h^{S−1−i} with the multipliers m_h = linspace(decay_min, decay_max, H) (2 and 2 by
default): after the normalization that is α_h = 1/m_h, so ``decay`` is one α for every channel (0.5: the official
default) or [α_first, α_last], whose multipliers 1/α are spread linearly over the channels as decay_min..decay_max
there. ``power_decay`` = p or [p_min, p_max] is the official 'learnable' modes' decay instead: every piece weighs 1
and K_l is multiplied by (l + 1)^(−p_h), p_h drawn uniformly in [p_min, p_max] and trained (at kernel_lr) unless
``train_power=False`` (its 'fixed' mode). ``init="cos"`` starts channel h's sub-kernels as cos(linspace(0, 2π·j, d))
for a permutation j of the channels (its 'cos' modes; 'randn', N(0, 1), by default). The normalizer ν is a fixed
buffer without gradient, as in the official code (ctlllll/SGConv, gconv_standalone.py GConv.forward: kernel_norm,
set at the first forward and frozen); here it is set at construction, from the same initial weights. The
sub-kernels train at their own learning rate (kernel_lr, 1e-3 there) with the ordinary weight decay. A plain
convolution kernel: there is no recurrent view, and asking for one is an error.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import check_lr, set_optim


COMBINES, INTERPOLATIONS, INITS = ("cat", "sum"), ("linear", "nearest"), ("randn", "cos")


def _factors(value, name: str, noun: str, low: float, high: float | None) -> tuple[float, ...]:
    """A number, or [first, last], each in (low, high) (high None: no bound), as a tuple of floats."""
    pair = isinstance(value, (list, tuple))
    values = list(value) if pair else [value]
    if (pair and len(values) != 2) or not all(isinstance(a, (int, float)) and not isinstance(a, bool) and low < a
                                              and (high is None or a < high) for a in values):
        bound = f"in ({low:g}, {high:g})" if high is not None else f"> {low:g}"
        raise ValueError(f"{name}: expected {noun} {bound}, or [first, last] two of them (the channels' {noun}s "
                         f"between), got {value!r}")
    return tuple(float(a) for a in values)


class SGConvKernel(nn.Module):
    def __init__(self, d_model: int, l_max: int, channels: int = 1, kernel_dim: int = 64,
                 decay: float | list[float] | None = 0.5, kernel_lr: float | None = 1e-3, combine: str = "cat",
                 interpolation: str = "linear", init: str = "randn", init_scale: int = 0,
                 power_decay: float | list[float] | None = None, train_power: bool = True):
        super().__init__()
        if not isinstance(l_max, int) or l_max < 1:
            raise ValueError(f"l_max: SGConv sets its number of scales from the longest input; expected a positive "
                             f"integer, got {l_max!r}")
        if not isinstance(kernel_dim, int) or kernel_dim < 2:
            raise ValueError(f"kernel_dim: expected an integer >= 2, got {kernel_dim!r}")
        for name, value, allowed in (("combine", combine, COMBINES), ("interpolation", interpolation, INTERPOLATIONS),
                                     ("init", init, INITS)):
            if value not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {value!r}")
        if power_decay is not None and decay is not None:
            raise ValueError("decay: power_decay replaces the decay between scales (the official 'learnable' modes "
                             "weigh every scale 1); pass decay=None with it")
        if power_decay is None and decay is None:
            raise ValueError("decay: expected a factor in (0, 1) or [first, last], or power_decay instead")
        decay = None if decay is None else _factors(decay, "decay", "a factor", 0.0, 1.0)
        power = None if power_decay is None else _factors(power_decay, "power_decay", "an exponent", 0.0, None)
        check_lr("kernel_lr", kernel_lr)
        scales = max(0, math.ceil(math.log2(l_max / kernel_dim))) + 1
        if not isinstance(init_scale, int) or isinstance(init_scale, bool) or not 0 <= init_scale < scales:
            raise ValueError(f"init_scale: expected an integer in [0, {scales}) (the scales l_max={l_max} and "
                             f"kernel_dim={kernel_dim} give), got {init_scale!r}")
        self.H, self.channels, self.l_max, self.d = d_model, channels, l_max, kernel_dim
        self.combine, self.interpolation, self.init_scale = combine, interpolation, init_scale
        self.decay = decay if decay is None or len(decay) == 2 else decay[0]  # numbers: no tensor to initialize
        self.n_scales = scales - init_scale
        self.pieces = nn.ParameterList(nn.Parameter(self._initial(init)) for _ in range(self.n_scales))
        if kernel_lr is not None:
            for i in range(self.n_scales):
                set_optim(self.pieces, str(i), {"lr": kernel_lr})
        if power is not None:
            low, high = (power[0], power[0]) if len(power) == 1 else power
            p = torch.rand(d_model) * (high - low) + low  # the official draw: p_h ~ U(decay_min, decay_max)
            if train_power:
                self.power = nn.Parameter(p)
                if kernel_lr is not None:
                    set_optim(self, "power", {"lr": kernel_lr})
            else:
                self.register_buffer("power", p)
        else:
            self.power = None
        with torch.no_grad():
            self.register_buffer("norm", self.full_kernel().norm(dim=-1, keepdim=True))

    def _initial(self, init: str) -> torch.Tensor:
        """One scale's sub-kernels (C, H, d): N(0, 1), or channel h a cosine of frequency perm(h) over its d taps."""
        if init == "randn":
            return torch.randn(self.channels, self.H, self.d)
        waves = torch.stack([torch.cos(torch.linspace(0, 2 * j * math.pi, self.d)) for j in range(self.H)])
        return waves[torch.randperm(self.H)].expand(self.channels, -1, -1).clone()

    @property
    def real_dtype(self) -> torch.dtype:
        return torch.float64 if self.pieces[0].dtype == torch.float64 else torch.float32

    def decays(self) -> torch.Tensor | float:
        """α: one number (1 with power_decay), or α_h (H, 1) = 1/m_h with m = linspace(1/α_first, 1/α_last, H),
        formed in float64."""
        if self.decay is None:
            return 1.0
        if isinstance(self.decay, float):
            return self.decay
        first, last = self.decay
        device = self.pieces[0].device
        return 1 / torch.linspace(1 / first, 1 / last, self.H, dtype=torch.float64, device=device)[:, None]

    def full_kernel(self) -> torch.Tensor:
        """The combined pieces (C, H, d·2^{S−1+s}), at least l_max long, before normalization."""
        parts, alpha = [], self.decays()
        for i, k in enumerate(self.pieces):
            k = k.to(self.real_dtype)
            factor = 2 ** ((max(i - 1, 0) if self.combine == "cat" else i) + self.init_scale)
            if factor > 1:
                k = F.interpolate(k, scale_factor=factor, mode=self.interpolation)
            scale = alpha ** i
            parts.append((scale.to(k.dtype) if isinstance(scale, torch.Tensor) else scale) * k)
        if self.combine == "cat":
            K = torch.cat(parts, dim=-1)
        else:
            length = parts[-1].shape[-1]
            K = sum(F.pad(k, (0, length - k.shape[-1])) for k in parts)
        if self.power is not None:  # K_l (l + 1)^(−p_h)
            lags = torch.arange(1, K.shape[-1] + 1, device=K.device, dtype=K.dtype)
            K = K * torch.exp(-self.power.to(K.dtype)[:, None] * torch.log(lags))
        return K

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
