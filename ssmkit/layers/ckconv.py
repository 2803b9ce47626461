"""CKConv: CCNN's separable continuous-kernel convolution (the paper's SeparableFlexConv), for 1-D sequences and
N-D grids, channels last.

    y = Mixer( K ⊛ u + b )        K (H, kernel grid): one continuous kernel per channel (kernels.ContinuousKernel),
                                  b (H,) a bias per channel, Mixer = Linear(H -> d_output) (the 1×1 convolution)

- dim = 1, causal (the default for sequences): u (B, L, H); (K ∗ u)_t = Σ_{j<n} K_j u_{t−j}, with n ≤ L lags from a
  kernel grid as long as l_max, computed by FFT (ops.fftconv);
- centered (dim = 2 or 3, or dim = 1 with causal=False): u (B, X, Y[, Z], H); a correlation with the odd
  kernel_size^dim grid, zero-padded to keep the size (F.conv2d with groups = H, as the official code for 33 × 33).

The kernel is a function of position, so the layer runs at any resolution: ``rate`` is the new sample spacing over the
trained one (1/2 for twice the resolution), see kernels/continuous.py. A plain convolution kernel: there is no
recurrent view, and step() raises, like SGConv.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..kernels.continuous import ContinuousKernel
from ..ops import fftconv
from .checks import check_dtype, check_input, check_rate, mask_padding
from .factory import factory_kwargs
from .registry import register_layer


@register_layer("ckconv")
class CKConv(nn.Module):
    """Separable continuous-kernel convolution, CCNN's SeparableFlexConv (module docstring). d_model H; l_max: the
    training length, which sets a causal kernel's grid (required for causal); dim, causal (default: 1-D causal),
    kernel_size (centered grids, odd, 33); the kernel network: hidden (32), n_layers (3), omega_0 (per task); the
    mask: mask_width (0.075), threshold (0.1), learn_mean; d_output (the mixer's width, default H)."""

    @factory_kwargs
    def __init__(self, d_model: int, l_max: int | None = None, *, dim: int = 1, causal: bool | None = None,
                 kernel_size: int = 33, d_output: int | None = None, hidden: int = 32, n_layers: int = 3,
                 omega_0: float = 2976.49, mask_width: float = 0.075, threshold: float = 0.1,
                 learn_mean: bool = False):
        super().__init__()
        causal = dim == 1 if causal is None else causal
        if causal and not (isinstance(l_max, int) and l_max >= 2):
            raise ValueError(f"l_max: a causal CKConv's kernel spans the training length; expected an integer >= 2, "
                             f"got {l_max!r}")
        self.H, self.dim, self.causal, self.l_max = d_model, dim, causal, l_max if causal else None
        self.kernel = ContinuousKernel(d_model, dim, l_max if causal else kernel_size, causal=causal, hidden=hidden,
                                       n_layers=n_layers, omega_0=omega_0, mask_width=mask_width, threshold=threshold,
                                       learn_mean=learn_mean)
        self.bias = nn.Parameter(torch.zeros(d_model))
        self.mixer = nn.Linear(d_model, d_output or d_model)
        nn.init.kaiming_normal_(self.mixer.weight)
        nn.init.zeros_(self.mixer.bias)

    def _check(self, u) -> None:
        if self.dim == 1:
            check_input(u, self.H, None, self.bias.dtype)
            return
        if not isinstance(u, torch.Tensor) or u.dim() != self.dim + 2 or u.shape[-1] != self.H:
            got = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
            raise ValueError(f"u: expected channels-last input (B, {self.dim} spatial sizes, H={self.H}), got {got}")
        if u.shape[0] < 1 or not u.is_floating_point():
            raise ValueError(f"u: expected a floating-point batch of B >= 1, got {tuple(u.shape)} {u.dtype}")
        check_dtype(u, self.bias.dtype)

    def forward(self, u: torch.Tensor, state=None, rate: float = 1.0, lengths=None):
        """u (B, L, H) or (B, *spatial, H) -> (y (B, ..., d_output), None). state must be None (no recurrent view);
        lengths (B,) for a padded batch of sequences (input beyond each length zeroed)."""
        if state is not None:
            raise ValueError("state: CKConv has no recurrent view (a continuous kernel, not a state space model); "
                             "call forward(u) on whole inputs")
        self._check(u)
        check_rate(rate)
        if lengths is not None:
            u = mask_padding(u, lengths)
        x = u.movedim(-1, 1)  # (B, H, *spatial)
        K = self.kernel(rate).to(x.dtype)
        self.sampled_kernel = K if self.training else None  # for CCNN's weight penalty (models/ccnn.py)
        if self.causal:
            L = x.shape[-1]
            K = F.pad(K, (0, L - K.shape[-1])) if K.shape[-1] < L else K[:, :L]
            y = fftconv(x, K[None])[:, 0]
        else:  # taps at offsets beyond the input's size never meet it: the grid is cut to at most 2·size − 1
            reach = [min(k // 2, n - 1) for k, n in zip(K.shape[1:], x.shape[2:])]
            K = K[(slice(None), *(slice(k // 2 - r, k // 2 + r + 1) for k, r in zip(K.shape[1:], reach)))]
            conv = (F.conv1d, F.conv2d, F.conv3d)[self.dim - 1]
            y = conv(x, K[:, None], padding=reach, groups=self.H)
        y = y + self.bias.view(-1, *(1,) * self.dim)
        return self.mixer(y.movedim(1, -1)), None

    def step(self, u_t, state=None, rate: float = 1.0):
        raise ValueError("CKConv has no recurrent view (its kernel is a continuous function of position, not a state "
                         "space model's); use forward(u) on the whole sequence")

    def default_state(self, batch_size: int):
        raise ValueError("default_state: CKConv has no recurrent view; use forward(u) on the whole sequence")
