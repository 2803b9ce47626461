"""MAGNet: the multiplicative anisotropic Gabor network that CCNN's continuous kernels come from (Romero et al. 2022,
FlexConv; Knigge, Romero et al. 2023, CCNN). A map from relative positions x ∈ [−1, 1]^D to C kernel values:

    g_l(x) = exp(−½ Σ_d (γ_{l,d} (x_d − μ_{l,d}))²) · sin(W_l x + b_l)          (F hidden units, l = 0..n)
    h_0 = g_0(x),   h_l = g_l(x) ⊙ (U_l h_{l−1} + c_l)   (l = 1..n),   MAGNet(x) = V h_n + e

Initialization, as the official code (david-knigge/ccnn, ckconv/nn/ck/magnet.py): γ_l ~ Gamma(α / (l + 1), β)
(α = 6, β = 1), W_l ~ U(±1/√D) scaled row-wise by 2π ω0 γ_l, b_l = 0; μ_l ~ U(1 − s, 1) for a causal kernel (whose
lag 0 sits at x = 1) and U(−s, s) otherwise, with s = 1.667 × the mask's initial width (FlexConv's
init_spatial_value); U_l, V Kaiming-uniform (linear gain), c_l = 1, e = 0. ω0 sets the frequencies and is tuned per
task (2976 for sequential MNIST). V is then scaled by √(1 / P) for P kernel positions (Chang et al. 2020; see
ContinuousKernel).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def gabor(x: torch.Tensor, gamma: torch.Tensor, mu: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """g(x) = exp(−½ Σ_d (γ_d (x_d − μ_d))²) · sin(W x + b): x (P, D), γ, μ, W (F, D), b (F,) -> (P, F)."""
    window = torch.exp(-0.5 * (gamma * (x[:, None, :] - mu)).square().sum(-1))
    return window * torch.sin(x @ W.T + b)


class MAGNet(nn.Module):
    def __init__(self, dim: int, out_channels: int, hidden: int = 32, n_layers: int = 3, omega_0: float = 2976.49,
                 causal: bool = True, mask_width: float = 0.075, alpha: float = 6.0, beta: float = 1.0):
        super().__init__()
        for name, value in (("dim", dim), ("out_channels", out_channels), ("hidden", hidden), ("n_layers", n_layers)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not omega_0 > 0:
            raise ValueError(f"omega_0: expected a positive frequency scale, got {omega_0}")
        self.dim, self.omega_0 = dim, omega_0
        spread = 1.667 * mask_width
        gammas = [torch.distributions.Gamma(alpha / (i + 1), beta).sample((hidden, dim)) for i in range(n_layers + 1)]
        self.gamma = nn.ParameterList(nn.Parameter(g) for g in gammas)
        centres = [torch.rand(hidden, dim) for _ in gammas]  # μ: U(1 − s, 1) causal, U(−s, s) centered
        self.mu = nn.ParameterList(nn.Parameter(1.0 - spread * c if causal else spread * (2 * c - 1)) for c in centres)
        bound = 1 / math.sqrt(dim)
        self.W = nn.ParameterList(nn.Parameter(torch.empty(hidden, dim).uniform_(-bound, bound) * 2 * math.pi
                                               * omega_0 * g) for g in gammas)
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(hidden)) for _ in gammas)
        self.U = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_layers))
        self.V = nn.Linear(hidden, out_channels)
        for lin in [*self.U, self.V]:
            nn.init.kaiming_uniform_(lin.weight, nonlinearity="linear")
        for lin in self.U:
            nn.init.ones_(lin.bias)
        nn.init.zeros_(self.V.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (P, D) positions -> (P, C) kernel values."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x: expected positions of shape (P, D={self.dim}), got {tuple(x.shape)}")
        h = gabor(x, self.gamma[0], self.mu[0], self.W[0], self.b[0])
        for i, U in enumerate(self.U, start=1):
            h = gabor(x, self.gamma[i], self.mu[i], self.W[i], self.b[i]) * U(h)
        return self.V(h)
