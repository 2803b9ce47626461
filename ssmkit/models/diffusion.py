"""Denoising diffusion (DDPM, Ho et al. 2020) with a linear variance schedule, as SSSD and DiffWave use it.

    β_t = β_0 + (β_T − β_0)·t/(T − 1),  α_t = 1 − β_t,  ᾱ_t = Π_{s ≤ t} α_s          (t = 0 … T − 1)
    forward:  x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε,  ε ~ N(0, I)
    reverse:  x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) · ε_θ(x_t, t)) / √α_t + σ_t z,   z ~ N(0, I) (none at t = 0)
              σ_t² = β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t),  β̃_0 = β_0

With the true ε the reverse mean is the posterior mean of q(x_{t−1} | x_t, x_0):
μ̃_t = √ᾱ_{t−1} β_t/(1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) · x_t.

The diffusion step enters the network through a sinusoidal embedding of t (DiffWave's):
    e(t) = [sin(t·10^{−4j/(d/2 − 1)}), cos(t·10^{−4j/(d/2 − 1)})],  j = 0 … d/2 − 1.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t (B,) diffusion steps -> (B, dim): the sinusoidal embedding of the module docstring."""
    if dim % 2 or dim < 4:
        raise ValueError(f"dim: expected an even embedding size >= 4, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half, dtype=torch.float64, device=t.device))
    angles = t.to(torch.float64)[:, None] * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class DiffusionSchedule(nn.Module):
    """β, α, ᾱ, σ (T,) of the linear schedule (module docstring), as float64 buffers."""

    def __init__(self, T: int = 200, beta_0: float = 1e-4, beta_T: float = 0.02):
        super().__init__()
        if not isinstance(T, int) or T < 2:
            raise ValueError(f"T: expected an integer >= 2 diffusion steps, got {T!r}")
        if not 0 < beta_0 <= beta_T < 1:
            raise ValueError(f"beta_0, beta_T: expected 0 < beta_0 <= beta_T < 1, got {beta_0}, {beta_T}")
        self.T = T
        beta = torch.linspace(beta_0, beta_T, T, dtype=torch.float64)
        alpha_bar = torch.cumprod(1 - beta, 0)
        beta_tilde = torch.cat([beta[:1], beta[1:] * (1 - alpha_bar[:-1]) / (1 - alpha_bar[1:])])
        for name, value in (("beta", beta), ("alpha", 1 - beta), ("alpha_bar", alpha_bar),
                            ("sigma", beta_tilde.sqrt())):
            self.register_buffer(name, value, persistent=False)

    def noisy(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε for x0 (B, ...) and steps t (B,)."""
        a = self.alpha_bar[t].to(x0.dtype).view(-1, *[1] * (x0.dim() - 1))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def reverse_mean(self, x_t: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
        """(x_t − β_t/√(1 − ᾱ_t) · ε) / √α_t: the mean of x_{t−1} given the predicted noise."""
        beta, alpha, alpha_bar = (float(v[t]) for v in (self.beta, self.alpha, self.alpha_bar))
        return (x_t - beta / math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha)
