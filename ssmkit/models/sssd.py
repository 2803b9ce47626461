"""SSSD^S4 (Lopez Alcaraz & Strodthoff 2022, "Diffusion-based Time Series Imputation and Forecasting with Structured
State Space Models"): a DiffWave-style residual network of bidirectional S4 layers predicting the noise of a DDPM
(diffusion.py), conditioned on the observed values.

    e = swish(W₂ swish(W₁ step_embedding(t)))                                      (128 -> 512 -> 512)
    h = ReLU(Conv1x1(x_t))                                                          (K -> H channels)
    block b = 1 … n_blocks, with c = [x_obs ⊙ m, m] (2K channels):
        z = Conv3(h + W_b e)                                 (H -> 2H, kernel 3)
        z = S4Layer(z) + Conv1x1(c)                          S4Layer(z) = LayerNorm(z + Dropout(S4(z))), bidirectional
        z = S4Layer'(z)
        g = tanh(z_{:H}) ⊙ σ(z_{H:})
        h = (h + Conv1x1(g)) / √2,   skip_b = Conv1x1(g)
    ε_θ = Conv1x1_zero(ReLU(Conv1x1(Σ_b skip_b / √n_blocks)))               (-> K channels, zero-initialized)

The convolutions are weight-normalized, as in the official code. Training (forward): at a random step t, the noise
on observed entries is replaced by x_0 itself (the official only_generate_missing), x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) z,
and the error ε_θ − z is returned; its square on the missing entries is the loss. Imputation (impute): from noise,
the reverse process with the observed values put back before every step and after the last, so that they come back
exactly.

With the official weights copied, ε_θ equals the official SSSDS4Imputer's to 1e-16 in float64
(benchmarks/versus_official.py) when the official S4 sums its Cauchy kernel over both members of each conjugate pair,
as it does with pykeops. Installed from its requirements.txt (no pykeops, no CUDA extension), its S4Model.py falls
back on cauchy_slow, which sums one member only: a different S4 kernel (51 % apart at N = 8), so networks trained
that way do not carry over exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..layers import layer as build_layer
from ..layers.dropout import dropout as make_dropout
from ..layers.registry import with_defaults
from ..layers.stack_parts import stacked_parts
from .diffusion import DiffusionSchedule, step_embedding
from .pretrained import Pretrained


class S4Layer(nn.Module):
    """LayerNorm(z + Dropout(layer(z))) over (B, L, H): the official SSSD's S4 wrapper (post-norm residual)."""

    def __init__(self, layer: nn.Module, d_model: int, dropout: float):
        super().__init__()
        self.layer, self.norm = layer, nn.LayerNorm(d_model)
        self.dropout = make_dropout(dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm(z + self.dropout(self.layer(z)[0]))


class ResidualBlock(nn.Module):
    def __init__(self, d_model: int, d_skip: int, d_input: int, d_embed: int, make_layer, dropout: float):
        super().__init__()
        H = d_model
        self.embed = nn.Linear(d_embed, H)
        self.conv = weight_norm(nn.Conv1d(H, 2 * H, kernel_size=3, padding=1))
        self.s4_in, self.s4_out = (S4Layer(make_layer(2 * H), 2 * H, dropout) for _ in range(2))
        self.cond = weight_norm(nn.Linear(2 * d_input, 2 * H))
        self.res = weight_norm(nn.Linear(H, H))
        self.skip = weight_norm(nn.Linear(H, d_skip))

    def forward(self, h: torch.Tensor, cond: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, L, H), cond (B, L, 2K), e (B, d_embed) -> ((h + res)/√2, skip)."""
        z = self.conv((h + self.embed(e)[:, None]).transpose(1, 2)).transpose(1, 2)
        z = self.s4_out(self.s4_in(z) + self.cond(cond))
        H = h.shape[-1]
        g = torch.tanh(z[..., :H]) * torch.sigmoid(z[..., H:])
        return (h + self.res(g)) * math.sqrt(0.5), self.skip(g)


@dataclass
class Imputation:
    """samples (S, B, L, K) with the observed entries exactly as given; median and the [q, 1 − q] band over S."""
    samples: torch.Tensor
    median: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor


class SSSD(Pretrained, nn.Module):
    def __init__(self, d_input: int, *, n_blocks: int = 36, d_model: int = 256, d_skip: int = 256,
                 d_embed_in: int = 128, d_embed: int = 512, layer: str = "s4", layer_options: dict | None = None,
                 dropout: float = 0.0, T: int = 200, beta_0: float = 1e-4, beta_T: float = 0.02):
        super().__init__()
        self.config = dict(d_input=d_input, n_blocks=n_blocks, d_model=d_model, d_skip=d_skip, d_embed_in=d_embed_in,
                           d_embed=d_embed, layer=layer, layer_options=dict(layer_options or {}), dropout=dropout, T=T,
                           beta_0=beta_0, beta_T=beta_T)
        for key, value in (("d_input", d_input), ("n_blocks", n_blocks), ("d_model", d_model), ("d_skip", d_skip)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}: expected a positive integer, got {value!r}")
        # SSSD's own S4 (S4Model.py nplr) keeps the exact HiPPO B̃
        options = with_defaults(layer, {"B_clip": None}, {"bidirectional": True, "output": "linear",
                                                           **(layer_options or {})})
        self.schedule = DiffusionSchedule(T, beta_0, beta_T)
        self.d_input, self.d_embed_in = d_input, d_embed_in
        self.embed = nn.Sequential(nn.Linear(d_embed_in, d_embed), nn.SiLU(), nn.Linear(d_embed, d_embed), nn.SiLU())
        self.inp = nn.Sequential(weight_norm(nn.Linear(d_input, d_model)), nn.ReLU())
        def make_layer(H: int) -> nn.Module:
            return build_layer(layer, d_model=H, **options)

        self.blocks = nn.ModuleList(ResidualBlock(d_model, d_skip, d_input, d_embed, make_layer, dropout)
                                    for _ in range(n_blocks))
        self.out = nn.Sequential(weight_norm(nn.Linear(d_skip, d_skip)), nn.ReLU(), nn.Linear(d_skip, d_input))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def _check(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_input or not x.is_floating_point():
            got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a floating-point series (B, L, K={self.d_input}), got {got}")
        if not isinstance(mask, torch.Tensor) or mask.shape != x.shape:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask: expected the shape of x {tuple(x.shape)} (1 observed, 0 missing), got {got}")

    def denoise(self, x_t: torch.Tensor, x_obs: torch.Tensor, mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε_θ(x_t, t | x_obs, m): x_t, x_obs, mask (B, L, K), t (B,) -> predicted noise (B, L, K). Missing entries of
        x_obs are never read (they may be NaN)."""
        observed = mask.bool()
        cond = torch.cat([torch.where(observed, x_obs, torch.zeros_like(x_obs)), mask.to(x_obs.dtype)], dim=-1)
        e = self.embed(step_embedding(t, self.d_embed_in).to(x_t.dtype))
        h, skip = self.inp(x_t), 0
        for block in self.blocks:
            h, s = block(h, cond, e)
            skip = skip + s
        return self.out(skip * math.sqrt(1.0 / len(self.blocks)))

    def forward(self, x0: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The training objective's error ε_θ − z (B, L, K) at a random step t per series (module docstring); the loss
        is its square on the missing entries. In eval mode without a generator, t and z are drawn from a fixed seed,
        so that validation scores compare across epochs."""
        self._check(x0, mask)
        if generator is None and not self.training:
            generator = torch.Generator(device=x0.device).manual_seed(0)
        B = x0.shape[0]
        t = torch.randint(self.schedule.T, (B,), device=x0.device, generator=generator)
        z = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        z = torch.where(mask.bool(), x0, z)
        with stacked_parts(self):  # like layers form their chunk matrices together in GPU training
            return self.denoise(self.schedule.noisy(x0, t, z), x0, mask, t) - z

    @torch.no_grad()
    def impute(self, x: torch.Tensor, mask: torch.Tensor, n_samples: int = 10, quantile: float = 0.05,
               generator: torch.Generator | None = None) -> Imputation:
        """x, mask (B, L, K) (1 observed) -> n_samples imputations by the reverse process (module docstring); the
        observed entries come back exactly, missing ones of x are never read."""
        self._check(x, mask)
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples: expected an integer >= 1, got {n_samples!r}")
        if not 0 < quantile < 0.5:
            raise ValueError(f"quantile: expected a lower quantile in (0, 0.5), got {quantile}")
        S, (B, L, K) = n_samples, x.shape
        x_obs, m = x.repeat(S, 1, 1), mask.repeat(S, 1, 1)
        observed = m.bool()
        x_t = torch.randn(x_obs.shape, device=x.device, dtype=x.dtype, generator=generator)
        for t in range(self.schedule.T - 1, -1, -1):
            x_t = torch.where(observed, x_obs, x_t)
            eps = self.denoise(x_t, x_obs, m, torch.full((S * B,), t, device=x.device))
            x_t = self.schedule.reverse_mean(x_t, t, eps)
            if t > 0:
                noise = torch.randn(x_t.shape, device=x.device, dtype=x.dtype, generator=generator)
                x_t = x_t + float(self.schedule.sigma[t]) * noise
        samples = torch.where(observed, x_obs, x_t).view(S, B, L, K)
        q = torch.tensor([quantile, 0.5, 1 - quantile], device=x.device, dtype=x.dtype)
        low, median, high = torch.quantile(samples, q, dim=0)
        return Imputation(samples, median, low, high)
