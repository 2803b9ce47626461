"""Mega's multi-dimensional damped EMA (Ma et al. 2022) as a real diagonal SSM.

Per channel j, with expansion dimension ndim (h):
    z_t = α ⊙ (β u_t) + (1 − α ⊙ δ) ⊙ z_{t−1},    y_t = s·ηᵀ z_t        α = σ(a), δ = σ(d) ∈ (0, 1)^h;  β, η ∈ R^h
i.e. Ā = 1 − αδ, B̄ = αβ, C = s·η with the fixed scale s = √(1/h), and the kernel K_k = s Σ_i η_i α_i β_i (1 − α_iδ_i)^k
(a Vandermonde product). It runs through the same DiagonalSystem as the complex diagonal SSMs (imaginary parts
zero, output Re(·)); its state has ndim entries per channel.
Bidirectional: a second EMA with its own a, d, β, η reads the sequence backwards, from lag 0:
    y_t = Σ_{k>=0} K_k u_{t−k} + Σ_{k>=0} K'_k u_{t+k}.
Truncation T (bidirectional only, as the official LRA models use it): K_k = K'_k = 0 for lags k >= T, so the layer
costs and reads as a window of T steps each way; it is no recurrence, and a causal EMA keeps its whole kernel.
Init and scale as the official Mega (facebookresearch/mega, fairseq/modules/exponential_moving_average.py,
MultiHeadEMA): a, d ~ N(0, 0.2²), β ~ N(0, 0.02²) + (1, −1, 1, ...), η ~ N(0, 1) used as η·√(1/ndim). With ssm_lr None
the EMA parameters train like the rest of the model (base lr and weight decay), as there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import SSMKernel
from .diag import DiagonalSystem


class EMAKernel(SSMKernel):
    def __init__(self, d_model: int, ndim: int = 16, bidirectional: bool = False, ssm_lr: float | None = None,
                 truncation: int | None = None):
        n_dir = 2 if bidirectional else 1
        if not isinstance(ndim, int) or isinstance(ndim, bool) or ndim < 1:
            raise ValueError(f"ndim: expected a positive integer (the EMA's state entries per channel), got {ndim!r}")
        super().__init__(d_model, 2 * ndim, n_dir, ssm_lr)  # N2 = ndim state entries per channel
        if truncation is not None and (not bidirectional or not isinstance(truncation, int) or truncation < 1):
            raise ValueError(f"truncation: expected None or a positive number of lags for a bidirectional EMA (a "
                             f"truncated kernel has no recurrent view), got {truncation!r} with bidirectional="
                             f"{bidirectional}")
        self.bidirectional, self.scale, self.truncation = bidirectional, ndim ** -0.5, truncation
        self.chunkable = not bidirectional  # the backward EMA has its own parameters and lag 0: no shared recurrence
        sign = torch.ones(ndim, dtype=torch.float64)
        sign[1::2] = -1
        shape = (n_dir, d_model, ndim)
        self._register("alpha", 0.2 * torch.randn(shape, dtype=torch.float64))
        self._register("delta", 0.2 * torch.randn(shape, dtype=torch.float64))
        self._register("beta", 0.02 * torch.randn(shape, dtype=torch.float64) + sign)
        self.register_parameter("C", nn.Parameter(torch.randn(shape).to(torch.get_default_dtype())))  # η, real

    def _register(self, name: str, value: torch.Tensor) -> None:
        if self.ssm_lr is None:
            self.register_parameter(name, nn.Parameter(value.to(torch.get_default_dtype())))
        else:
            self.register_ssm(name, value)

    def _system(self, direction: int, rate: float) -> DiagonalSystem:
        dtype = self.real_dtype
        alpha = torch.sigmoid(self.alpha[direction].to(dtype))
        delta = torch.sigmoid(self.delta[direction].to(dtype))
        log_dA = torch.log1p(-alpha * delta) * rate
        cplx = lambda t: torch.complex(t, torch.zeros_like(t))  # noqa: E731
        return DiagonalSystem(cplx(log_dA), cplx(alpha * self.beta[direction].to(dtype)),
                              cplx(self.scale * self.C[direction:direction + 1].to(dtype)), 1.0)

    def recurrence(self, rate: float = 1.0) -> DiagonalSystem:
        """rate resamples the decay: Ā^rate (the EMA read as a sampled continuous decay)."""
        if self.bidirectional:
            raise ValueError("recurrence: a bidirectional EMA has no recurrent view (it reads future inputs)")
        return self._system(0, rate)

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """K (1, H, L); bidirectional: (2, H, L) as ops.fftconv reads it (causal half, then the anti-causal half
        from lag −1), with the backward EMA's lag-0 term K'_0 added to the causal half; lags from truncation on zero."""
        if not self.bidirectional:
            return self._system(0, rate).kernel(L)
        n = L if self.truncation is None else min(self.truncation, L)
        K, back = (F.pad(self._system(d, rate).kernel(n), (0, L - n)) for d in (0, 1))
        return torch.cat([K + F.pad(back[..., :1], (0, L - 1)), F.pad(back[..., 1:], (0, 1))])
