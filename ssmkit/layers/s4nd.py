"""S4ND (Nguyen, Goel, Gu et al. 2022): an N-D convolution whose kernel is the outer product of 1-D SSM kernels.

    u, y: (B, L_1, .., L_d, H), channels last
    K^a: axis a's kernel from its own 1-D SSM kernel module (with its own l_max_a); two-sided by default, the causal
         half (lags 0 .. l−1) from one set of output channels, the anti-causal half (lags −1 .. −l) from another
    K[c, h, j_1 .. j_d] = (1/R) Σ_r Π_a K^a_r[c, h, j_a]     (R = trank rank-1 terms)
    y = Output( Dropout( act( K ∗ u + D ⊙ u ) ) )           (ops.fftconv_nd; output glu | linear | none, as SSMConv)

Resolution change, as the official code (state-spaces/s4, src/models/sequence/modules/s4nd.py): ``rate`` (one number,
or one per axis) samples axis a's continuous kernel at Δ·rate_a and keeps l_a = min(L_a, round(l_max_a / rate_a))
samples, so that the kernel covers the continuous extent it had in training (rate 1/4 for an image 4 times finer,
rate 2 for one half as fine). ``bandlimit`` drops, in every axis kernel, the modes at or above bandlimit/2 cycles per
sample of the base Δ (kernels.base.bandlimit_mask, independent of rate), so that a coarser sampling does not alias.
With l_max_a = None an axis kernel is as long as the input along that axis.

Not a sequence layer of the (B, L, H) contract: it has no recurrent view (its kernel spans every axis at once, and by
default reads both directions along each), so step and default_state raise, as SGConv's. ``rate`` goes through the kernels' own ``forward(L, rate)``:
for ZOH diagonal kernels (S4D, disc zoh) the kernel at rate 2 is exactly the 2 × 2 × .. sum-pooling of the kernel at
rate 1 (B̄(2Δ) = (1 + Ā) B̄(Δ)); for S4's bilinear discretization it is so only approximately (O(Δ²λ²) per sample).
"""
from __future__ import annotations

import torch
from torch import nn

from ..kernels.diag import S4DKernel
from ..kernels.dplr import DPLRKernel
from ..ops import fftconv_nd
from ..ops.float32_backward import autocast_off
from .checks import check_dtype, check_rate
from .conv import output_stage
from .factory import factory_kwargs

KERNELS = ("s4", "s4d")


def _axis_lengths(l_max, dim: int | None) -> tuple:
    """l_max as one entry per axis: an int (every axis), a list/tuple (one per axis), or None (input length)."""
    if isinstance(l_max, (list, tuple)):
        if dim is not None and dim != len(l_max):
            raise ValueError(f"dim: expected {len(l_max)} (the axes of l_max={list(l_max)}) or None, got {dim!r}")
        lengths = tuple(l_max)
    else:
        dim = 2 if dim is None else dim
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim: expected a positive number of spatial axes, got {dim!r}")
        lengths = (l_max,) * dim
    for length in lengths:
        if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 1):
            raise ValueError(f"l_max: expected None, a positive integer or one per axis, got {l_max!r}")
    if not lengths:
        raise ValueError("l_max: expected at least one axis, got an empty list")
    return lengths


class S4ND(nn.Module):
    """S4ND over (B, *spatial, H). l_max: int, one per axis, or None; dim: the number of spatial axes (default 2, or
    len(l_max)); kernel: s4 (DPLR, bilinear; default) | s4d (diagonal; disc zoh | bilinear) with init, dt_min,
    dt_max, ssm_lr, B_clip, n_ssm, real_transform, dt_transform, dt_lr as those layers, one kernel module per axis; bidirectional:
    two-sided along every axis (the official default); trank: rank-1 terms averaged; bandlimit: see the module
    docstring. channels, activation, output, dropout as SSMConv (output glu: the official final_act)."""

    @factory_kwargs
    def __init__(self, d_model: int, d_state: int = 64, *, l_max: int | list | tuple | None = None,
                 dim: int | None = None, kernel: str = "s4", init: str = "legs", disc: str | None = None,
                 channels: int = 1, bidirectional: bool = True, trank: int = 1, dt_min: float = 1e-3,
                 dt_max: float = 1e-1, ssm_lr: float | None = 1e-3, B_clip: float | None = 2.0,
                 n_ssm: int | None = None, real_transform: str = "exp", bandlimit: float | None = None,
                 dt_transform: str = "exp", dt_lr: float | None | str = "ssm", activation: str = "gelu",
                 output: str = "glu", dropout: float = 0.0, tie_dropout: bool = False):
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
        if kernel == "s4" and disc not in (None, "bilinear"):
            raise ValueError(f"disc: the S4 (DPLR) kernel is bilinear; for zoh use kernel='s4d', got {disc!r}")
        for name, value in (("channels", channels), ("trank", trank)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        self.l_max = _axis_lengths(l_max, dim)
        self.H, self.channels, self.trank, self.bidirectional = d_model, channels, trank, bidirectional
        kernel_channels = (2 if bidirectional else 1) * trank * channels
        common = dict(init=init, real_transform=real_transform, dt_min=dt_min, dt_max=dt_max, ssm_lr=ssm_lr,
                      B_clip=B_clip, n_ssm=n_ssm, bandlimit=bandlimit, dt_transform=dt_transform, dt_lr=dt_lr)
        self.kernels = nn.ModuleList(
            DPLRKernel(d_model, d_state, kernel_channels, l_max=length, **common) if kernel == "s4" else
            S4DKernel(d_model, d_state, kernel_channels, disc=disc or "zoh", **common) for length in self.l_max)
        self.D = nn.Parameter(torch.randn(channels, d_model))
        self.activation, self.dropout, self.output = output_stage(channels, d_model, activation, output, dropout,
                                                                  tie_dropout)

    @property
    def dim(self) -> int:
        return len(self.l_max)

    def kernel_lengths(self, shape, rates) -> list[int]:
        """l_a = min(L_a, round(l_max_a / rate_a)) per axis (L_a when l_max_a is None): the samples each axis kernel
        keeps so that it spans the extent of l_max_a samples at rate 1."""
        out = []
        for a, (L, l_max, rate) in enumerate(zip(shape, self.l_max, rates)):
            length = L if l_max is None else min(L, round(l_max / rate))
            if length < 1:
                raise ValueError(f"rate: {rate} along axis {a} leaves no kernel sample (round(l_max={l_max} / rate) "
                                 f"= 0); expected rate < 2·l_max")
            out.append(length)
        return out

    def axis_kernels(self, shape, rate=1.0) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """(k, k_rev) for ops.fftconv_nd: per axis (trank, C, H, l_a), the causal and anti-causal halves (k_rev None
        for a causal layer). shape: the spatial shape of the input; rate: a number or one per axis."""
        rates = self._rates(rate)
        halves = 2 if self.bidirectional else 1
        k, k_rev = [], []
        for kernel, length, r in zip(self.kernels, self.kernel_lengths(shape, rates), rates):
            K = kernel(length, r).view(halves, self.trank, self.channels, self.H, length)
            k.append(K[0])
            k_rev.append(K[-1])
        return k, (k_rev if self.bidirectional else None)

    def _rates(self, rate) -> tuple:
        rates = tuple(rate) if isinstance(rate, (list, tuple)) else (rate,) * self.dim
        if len(rates) != self.dim:
            raise ValueError(f"rate: expected a number or {self.dim} numbers (one per axis), got {rate!r}")
        for r in rates:
            check_rate(r)
        return rates

    def _check_input(self, u) -> None:
        expected = f"(B, L_1, .., L_{self.dim}, H={self.H})"
        if not isinstance(u, torch.Tensor) or not u.is_floating_point():
            got = u.dtype if isinstance(u, torch.Tensor) else type(u).__name__
            raise ValueError(f"u: expected a floating-point tensor of shape {expected}, got {got}")
        if u.dim() != self.dim + 2 or u.shape[-1] != self.H:
            raise ValueError(f"u: expected shape {expected}, got {tuple(u.shape)}")
        if u.numel() == 0:
            raise ValueError(f"u: expected a non-empty batch and spatial extent, got shape {tuple(u.shape)}")
        check_dtype(u, self.D.dtype)

    def forward(self, u: torch.Tensor, state=None, rate: float | list | tuple = 1.0):
        """u (B, L_1, .., L_d, H) -> (y of the same shape, None). rate: a number or one per axis (module docstring)."""
        if state is not None:
            raise ValueError("state: S4ND has no recurrent view (its kernel spans every axis at once); call "
                             "forward(u) without state")
        self._check_input(u)
        with autocast_off(u.device.type):
            k, k_rev = self.axis_kernels(u.shape[1:-1], rate)
            x = u.movedim(-1, 1).to(k[0].dtype)  # (B, H, L_1, .., L_d)
            D = self.D.to(x.dtype).reshape(self.channels, self.H, *([1] * self.dim))
            y = fftconv_nd(x, k, k_rev) + D * x[:, None]  # (B, C, H, L_1, .., L_d)
        # (B, L_1, .., L_d, C·H), c-major as SSMConv; contiguous once, as SSMConv._output (an elementwise backward on a
        # permuted view beside a contiguous gradient takes the strided path)
        y = y.to(u.dtype).movedim(1, -1).movedim(1, -1).flatten(-2).contiguous()
        return self.output(self.dropout(self.activation(y))), None

    def _no_recurrence(self):
        raise ValueError("S4ND has no recurrent view (its kernel spans every axis at once); use forward(u)")

    def default_state(self, batch_size: int):
        self._no_recurrence()

    def step(self, u, state, rate: float = 1.0):
        self._no_recurrence()
