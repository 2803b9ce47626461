"""Liquid-S4 (Hasani, Lechner, Wang, Chahine, Amini, Rus 2022): S4 plus kernels on causal products of the input.

    y = K ∗ u + Σ_{p=2}^{P} K^(p) ∗ U^(p) + D u,      U^(p)_k = u_k u_{k−1} ⋯ u_{k−p+1}   (earlier inputs: 0, or
                                                                                      the carried history)
liquid_kernel = kb ("kernel × B"):  K^(p)_k = C_f Ā^k (B̄^p)_f  — the S4 kernel with the discrete B̄ replaced by its
    elementwise p-th power (in the DPLR eigenbasis), computed by the same generating function.
liquid_kernel = pb ("powers of B"): K^(p) = δ_0 · 2Re Σ_n C_n B̄_n^p — Ā dropped: one weight per order and channel,
    applied to U^(p) at lag 0 (the official implementation's cheap mode).
Every order shares Ā and C, so the recurrent view keeps one SSM state, driven by B̄ u_k + Σ_p B̄^p U^(p)_k (kb), and
the last P − 1 inputs to form the products: state = (SSM state, history (B, H, P−1)).
"""
from __future__ import annotations

import torch

from ..kernels.base import complex_dtype
from ..ops import fftconv
from .checks import check_step_input, mask_padding
from .registry import register_layer
from .s4 import S4

LIQUID_KERNELS = ("kb", "pb")


@register_layer("liquid_s4")
class LiquidS4(S4):
    """Liquid-S4: S4 options plus liquid_order P (2..4: products of up to P inputs) and liquid_kernel kb | pb."""

    def __init__(self, d_model: int, d_state: int = 64, *, liquid_order: int = 2, liquid_kernel: str = "kb",
                 channels: int = 1, init: str = "legs", l_max: int | None = None, real_transform: str = "exp",
                 dt_min: float = 1e-3, dt_max: float = 1e-1, ssm_lr: float | None = 1e-3, B_clip: float | None = 2.0,
                 n_ssm: int | None = None, activation: str = "gelu", output: str = "glu", dropout: float = 0.0):
        if not isinstance(liquid_order, int) or not 2 <= liquid_order <= 4:
            raise ValueError(f"liquid_order: expected 2, 3 or 4, got {liquid_order!r}")
        if liquid_kernel not in LIQUID_KERNELS:
            raise ValueError(f"liquid_kernel: expected one of {LIQUID_KERNELS}, got {liquid_kernel!r}")
        super().__init__(d_model, d_state, channels=channels, init=init, l_max=l_max, real_transform=real_transform,
                         dt_min=dt_min, dt_max=dt_max, ssm_lr=ssm_lr, B_clip=B_clip, n_ssm=n_ssm,
                         activation=activation, output=output, dropout=dropout)
        self.order, self.liquid_kernel = liquid_order, liquid_kernel

    def _products(self, x: torch.Tensor, history: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """[U^(2), ..., U^(P)] for x (B, H, L) after ``history`` (B, H, P−1), and the new history."""
        lag, L = self.order - 1, x.shape[-1]
        ext = torch.cat([history.to(x.dtype), x], dim=-1)  # u_k sits at index lag + k
        products, prod = [], x
        for i in range(1, self.order):
            prod = prod * ext[..., lag - i:lag - i + L]
            products.append(prod)
        return products, ext[..., -lag:]

    def _powers(self, dB: torch.Tensor) -> torch.Tensor:
        return torch.stack([dB ** p for p in range(2, self.order + 1)])  # (P−1, H, N2)

    def default_state(self, batch_size: int):
        ssm = super().default_state(batch_size)
        return ssm, torch.zeros(batch_size, self.H, self.order - 1, dtype=ssm.real.dtype, device=ssm.device)

    def _check_liquid_state(self, state, batch: int):
        if not isinstance(state, tuple) or len(state) != 2:
            raise ValueError("state: expected (SSM state, input history) as given by default_state")
        self._check_state(state[0], batch)
        if tuple(state[1].shape) != (batch, self.H, self.order - 1):
            raise ValueError(f"state: expected an input history of shape {(batch, self.H, self.order - 1)}, got "
                             f"{tuple(state[1].shape)}")

    def forward(self, u: torch.Tensor, state=None, rate: float = 1.0, lengths=None):
        self._check_input(u)
        self._check_rate(rate)
        u = mask_padding(u, lengths, state is not None)
        B, L, _ = u.shape
        if state is not None:
            self._check_liquid_state(state, B)
        with torch.autocast(device_type=u.device.type, enabled=False):
            x = u.transpose(1, 2).to(self.kernel.real_dtype)
            history = state[1] if state is not None else x.new_zeros(B, self.H, self.order - 1)
            products, history = self._products(x, history)
            y = fftconv(x, self.kernel(L, rate)) + self.D.to(x.dtype)[..., None] * x[:, None]
            rec = self.kernel.recurrence(rate) if (state is not None or self.liquid_kernel == "pb") else None
            powers = self._powers(rec.dB if rec is not None else self.kernel.discrete_B(rate))
            if self.liquid_kernel == "kb":
                K_liquid = self.kernel.kernel_of_discrete_B(powers, L, rate)  # (P−1, C, H, L)
                for U, K in zip(products, K_liquid):
                    y = y + fftconv(U, K)
            else:
                weights = 2 * torch.einsum("chn,phn->pch", rec.C, powers).real  # (P−1, C, H)
                for U, w in zip(products, weights):
                    y = y + w[..., None] * U[:, None]
            next_state = None
            if state is not None:
                cdt = complex_dtype(x.dtype)
                drive = rec.dB[:, None] * x[..., None].to(cdt)
                if self.liquid_kernel == "kb":
                    for U, Bp in zip(products, powers):
                        drive = drive + Bp[:, None] * U[..., None].to(cdt)
                y_state, ssm = rec.forward_state(x, state[0].to(cdt), drive)
                y = y + y_state
                next_state = (ssm, history)
        return self._output(y), next_state

    def step(self, u: torch.Tensor, state, rate: float = 1.0):
        check_step_input(u, self.H)
        self._check_liquid_state(state, u.shape[0])
        y, next_state = self.forward(u[:, None], state, rate)
        return y[:, 0], next_state
