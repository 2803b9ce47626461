"""DLR: diagonal linear RNN (Gupta, Mehta, Berant 2022) — no discretization, Λ parameterized directly.

    x_k = Λ ⊙ x_{k−1} + u_k,   y_k = Re Σ_n W_n x_{k,n},   K_l = Re Σ_n W_n Λ_n^l,   Λ_n = exp(−r_n² + iθ_n)

so |Λ_n| <= 1 always. d_state N counts complex modes (no conjugate half). ``rate`` resamples the implied continuous
system: Λ -> Λ^rate. Init as the official code (ag1988/dlr, src/models/sequence/ss/standalone/dss.py, DLRKernel,
Lambda_init 'omega'): θ_n = 2πn/N over the full circle, r_n² = Δ_n/2 with Δ_n log-uniform in [dt_min, dt_max] per mode
(1e-4, 0.1), Λ shared by the channels (n_ssm = 1), W complex with real and imaginary parts N(0, 1/N²), trained with the
SSM parameters (lr 1e-4 in its configs, no weight decay).
"""
from __future__ import annotations

import math

import torch

from .base import SSMKernel
from .diag import DiagonalSystem


class DLRKernel(SSMKernel):
    def __init__(self, d_model: int, d_state: int = 1024, channels: int = 1, dt_min: float = 1e-4,
                 dt_max: float = 1e-1, ssm_lr: float | None = 1e-4, n_ssm: int | None = 1):
        if not isinstance(d_state, int) or d_state < 1:
            raise ValueError(f"d_state: expected a positive integer (the number of complex modes), got {d_state!r}")
        super().__init__(d_model, 2 * d_state, channels, ssm_lr, n_ssm)  # N2 = d_state modes
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min, dt_max: expected 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        N = d_state
        dt = torch.exp(torch.rand(self.n_ssm, N, dtype=torch.float64) * math.log(dt_max / dt_min) + math.log(dt_min))
        self.register_ssm("r", torch.sqrt(dt / 2))
        self.register_ssm("theta", (2 * math.pi * torch.arange(N, dtype=torch.float64) / N).expand(self.n_ssm, -1))
        W = torch.randn(channels, d_model, N, dtype=torch.complex128) * (math.sqrt(2) / N)
        self.register_output("C", W, ssm_group=True)

    def log_Lambda(self, rate: float = 1.0) -> torch.Tensor:
        return torch.complex(-self.real("r") ** 2, self.real("theta")) * rate

    def recurrence(self, rate: float = 1.0) -> DiagonalSystem:
        log_L = self.log_Lambda(rate)
        return DiagonalSystem(log_L, torch.ones_like(log_L), self.cplx("C"), 1.0)

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        return self.recurrence(rate).kernel(L)
