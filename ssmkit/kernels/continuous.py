"""The continuous depthwise kernel of CCNN's SeparableFlexConv: a MAGNet times a learnable Gaussian mask, sampled on a
grid of relative positions in [−1, 1]^D and cropped where the mask is negligible.

    K_c(x) = r^D · MAGNet_c(x) · mask(x),     mask(x) = exp(−½ Σ_d (x_d − m_d)² / (σ_d² + 10⁻⁸))    (c = 1..C channels)

Grids (Δ0 = 2 / (size − 1): ``size`` samples span [−1, 1]; rate r samples the same continuous kernel at Δ = r·Δ0):
- causal, D = 1:  x_j = 1 − j·Δ ≥ −1, K[:, j] weighs lag j (u_{t−j}); m = 1, at lag 0. A sequence kernel has
  size = l_max, so at rate 1 it is as long as the training input;
- centered:       x_i = i·Δ, |i| ≤ ⌊1/Δ⌋ on each axis, K[:, i_1 + M_1, ...] weighs the input at offset (i_1, ...)
  (a correlation, as F.conv2d computes); m = 0; a fixed odd size such as 33 × 33.

Cropping (the official dynamic cropping, david-knigge/ccnn ckconv/nn/flexconv.py): with a = σ √(−2 ln threshold),
the positions where the mask falls below ``threshold`` are dropped, but for one boundary sample in the causal case:
- causal: the trained grid's positions from its last one at or below the root m − a (the official crop index
  ⌊(m − a + 1) / Δ0⌋ of the grid −1, −1 + Δ0, ..., 1), so the farthest kept lag has the mask under the threshold
  unless a position lands on the root; none dropped when |m − a| >= 1, as there. Another rate keeps the same extent;
- centered: |x_d| > max(|m_d − a_d|, |m_d + a_d|) on axis d.
The kernel then has fewer lags / a smaller odd grid; the convolutions treat the dropped positions as zeros. The 10⁻⁸
in the mask is the official one (it moves the mask by ~10⁻⁶ relative at σ = 0.075).

Resolution change (not exercised by the released code; defined here): an input sampled r times as densely-spaced
(rate r = new spacing / trained spacing, e.g. 1/2 for twice the resolution) gets the kernel at the positions of
spacing r·Δ0 over the same extent, scaled by r^D so that the sum Σ_x K(x) u(t − x), a Riemann sum of the continuous
convolution ∫ k(x) u(t − x) dx with cell volume Δ^D, keeps its scale. At r = 1/2 every other sample of the new kernel
is the old one times 2^−D (tested).

The last MAGNet layer is scaled by √(1 / P) for the P positions of the initial cropped grid (Chang et al. 2020), as
the official code does at its first forward.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .magnet import MAGNet


class ContinuousKernel(nn.Module):
    def __init__(self, channels: int, dim: int, size: int, *, causal: bool, hidden: int = 32, n_layers: int = 3,
                 omega_0: float = 2976.49, mask_width: float = 0.075, threshold: float = 0.1,
                 learn_mean: bool = False):
        super().__init__()
        if dim not in (1, 2, 3):
            raise ValueError(f"dim: expected 1, 2 or 3 spatial dimensions, got {dim!r}")
        if causal and dim != 1:
            raise ValueError(f"causal: only a 1-D kernel is causal, got causal=True with dim={dim}")
        if not isinstance(size, int) or size < 2 or (not causal and size % 2 == 0):
            raise ValueError(f"size: expected an integer >= 2 ({'odd, ' if not causal else ''}the samples spanning "
                             f"[-1, 1]), got {size!r}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold: expected a mask level in (0, 1), got {threshold}")
        if not mask_width > 0:
            raise ValueError(f"mask_width: expected a positive initial width, got {mask_width}")
        self.channels, self.dim, self.size, self.causal, self.threshold = channels, dim, size, causal, threshold
        self.net = MAGNet(dim, channels, hidden, n_layers, omega_0, causal, mask_width)
        self.mask_width = nn.Parameter(torch.full((dim,), float(mask_width)))
        mean = torch.full((dim,), 1.0 if causal else 0.0)
        if learn_mean:
            self.mask_mean = nn.Parameter(mean)
        else:
            self.register_buffer("mask_mean", mean)
        with torch.no_grad():
            self.net.V.weight.mul_(math.sqrt(1.0 / len(self.positions(1.0)[0])))

    def axis(self, rate: float) -> torch.Tensor:
        """The positions along one axis at spacing Δ = rate·Δ0 before cropping: 1, 1 − Δ, ..., ≥ −1 (causal) or
        0, ±Δ, ..., within [−1, 1] (centered, ordered from −MΔ to MΔ)."""
        step = rate * 2.0 / (self.size - 1)
        dtype = self.mask_width.dtype
        if self.causal:
            return 1.0 - step * torch.arange(math.floor(2.0 / step + 1e-9) + 1, dtype=dtype)
        M = math.floor(1.0 / step + 1e-9)
        return step * torch.arange(-M, M + 1, dtype=dtype)

    @torch.no_grad()
    def _kept(self, axis: torch.Tensor, rate: float) -> list[torch.Tensor]:
        """The positions of each axis that survive cropping (module docstring). Causal: counted by index in float64,
        as the official index ⌊(root + 1)/Δ0⌋: compared as float32 positions, the one on the bound came and went."""
        reach = self.mask_width.abs() * math.sqrt(-2.0 * math.log(self.threshold))
        if self.causal:
            root, step = float(self.mask_mean[0] - reach[0]), 2.0 / (self.size - 1)
            if abs(root) >= 1.0:
                return [axis]
            bound = -1.0 + math.floor((root + 1.0) / step) * step  # the trained grid's last position <= root
            return [axis[:math.floor((1.0 - bound) / (rate * step) + 1e-6) + 1]]
        bound = torch.maximum((self.mask_mean - reach).abs(), (self.mask_mean + reach).abs())
        return [axis[axis.abs() <= float(b)] for b in bound]

    def positions(self, rate: float) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(P, D) positions of the cropped grid at ``rate`` (the first axis slowest) and the kernel's grid shape."""
        axes = self._kept(self.axis(rate).to(self.mask_width.device), rate)
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dim)
        return grid, tuple(len(a) for a in axes)

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The Gaussian mask exp(−½ Σ_d (x_d − m_d)² / (σ_d² + 10⁻⁸)) at positions x (P, D) -> (P,)."""
        return torch.exp(-0.5 * ((x - self.mask_mean).square() / (self.mask_width.square() + 1e-8)).sum(-1))

    def forward(self, rate: float = 1.0) -> torch.Tensor:
        """The kernel at ``rate``: (C, n) lags for a causal kernel, (C, k_1, ..., k_D) centered grids (odd k_d)."""
        x, shape = self.positions(rate)
        K = self.net(x) * self.mask(x)[:, None] * rate ** self.dim  # (P, C)
        return K.T.reshape(self.channels, *shape)
