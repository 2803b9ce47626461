"""DLR: diagonal linear RNN (Gupta, Mehta, Berant 2022) — no discretization, Λ parameterized directly.

    x_k = Λ ⊙ x_{k−1} + u_k,   y_k = Re Σ_n C_n x_{k,n},   K_l = Re Σ_n C_n Λ_n^l,   Λ_n = exp(−exp(ν_n) + iθ_n)

so |Λ_n| < 1 always. ``rate`` resamples the implied continuous system: Λ -> Λ^rate. Initialization: Λ = e^{Δλ} with
the S4D-Lin spectrum λ_n = −½ + iπn and Δ log-uniform in [dt_min, dt_max] per channel (ν = log(Δ/2), θ = Δπn).
"""
from __future__ import annotations

import math

import torch

from .base import SSMKernel
from .diag import DiagonalSystem


class DLRKernel(SSMKernel):
    def __init__(self, d_model: int, d_state: int = 64, channels: int = 1, dt_min: float = 1e-3,
                 dt_max: float = 1e-1, ssm_lr: float | None = 1e-3):
        super().__init__(d_model, d_state, channels, ssm_lr)
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min, dt_max: expected 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        dt = torch.exp(torch.rand(d_model, 1, dtype=torch.float64) * math.log(dt_max / dt_min) + math.log(dt_min))
        n = torch.arange(self.N2, dtype=torch.float64)
        self.register_ssm("nu", torch.log(dt / 2).expand(-1, self.N2).clone())
        self.register_ssm("theta", dt * math.pi * n)
        self.register_output("C", torch.randn(channels, d_model, self.N2, dtype=torch.complex128))

    def log_Lambda(self, rate: float = 1.0) -> torch.Tensor:
        dtype = self.real_dtype
        return torch.complex(-torch.exp(self.nu.to(dtype)), self.theta.to(dtype)) * rate

    def recurrence(self, rate: float = 1.0) -> DiagonalSystem:
        log_L = self.log_Lambda(rate)
        return DiagonalSystem(log_L, torch.ones_like(log_L), self.cplx("C"), 1.0)

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        return self.recurrence(rate).kernel(L)
