"""Mega's multi-dimensional damped EMA (Ma et al. 2022) as a real diagonal SSM.

Per channel j, with expansion dimension ndim (h):
    z_t = α ⊙ (β u_t) + (1 − α ⊙ δ) ⊙ z_{t−1},    y_t = ηᵀ z_t        α = σ(a), δ = σ(d) ∈ (0, 1)^h;  β, η ∈ R^h
i.e. Ā = 1 − αδ, B̄ = αβ, C = η, and the kernel K_k = Σ_i η_i α_i β_i (1 − α_iδ_i)^k (a Vandermonde product).
It runs through the same DiagonalSystem as the complex diagonal SSMs (imaginary parts zero, output Re(·)); its state
has ndim entries per channel. Init as in Mega: a, d ~ N(0, 0.2²), β ~ N(0, 0.02²) + alternating ±1, η ~ N(0, 1).
"""
from __future__ import annotations

import torch

from .base import SSMKernel
from .diag import DiagonalSystem


class EMAKernel(SSMKernel):
    def __init__(self, d_model: int, ndim: int = 16, channels: int = 1, ssm_lr: float | None = None):
        super().__init__(d_model, 2 * ndim, channels, ssm_lr)  # N2 = ndim state entries per channel
        sign = torch.ones(ndim, dtype=torch.float64)
        sign[1::2] = -1
        self.register_ssm("alpha", 0.2 * torch.randn(d_model, ndim, dtype=torch.float64))
        self.register_ssm("delta", 0.2 * torch.randn(d_model, ndim, dtype=torch.float64))
        self.register_ssm("beta", 0.02 * torch.randn(d_model, ndim, dtype=torch.float64) + sign)
        self.register_parameter("C", torch.nn.Parameter(torch.randn(channels, d_model, ndim).to(
            torch.get_default_dtype())))  # η, real

    def recurrence(self, rate: float = 1.0) -> DiagonalSystem:
        """rate resamples the decay: Ā^rate (the EMA read as a sampled continuous decay)."""
        dtype = self.real_dtype
        alpha, delta = torch.sigmoid(self.alpha.to(dtype)), torch.sigmoid(self.delta.to(dtype))
        log_dA = torch.log1p(-alpha * delta) * rate
        cplx = lambda t: torch.complex(t, torch.zeros_like(t))  # noqa: E731
        return DiagonalSystem(cplx(log_dA), cplx(alpha * self.beta.to(dtype)), cplx(self.C.to(dtype)), 1.0)

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        return self.recurrence(rate).kernel(L)
