"""Liquid-S4 (Hasani, Lechner, Wang, Chahine, Amini, Rus 2022): S4 plus kernels on causal products of the input.

    y = K ∗ u + Σ_{p=2}^{P} K^(p) ∗ U^(p) + D u,      U^(p)_k = u_k u_{k−1} ⋯ u_{k−p+1}   (earlier inputs: 0, or
                                                                                      the carried history)
liquid_kernel = kb ("kernel × B"):  K^(p)_k = C_f Ā^k (B̄^p)_f  — the S4 kernel with the discrete B̄ replaced by its
    elementwise p-th power (in the DPLR eigenbasis), computed by the same generating function.
liquid_kernel = pb ("powers of B"): K^(p) = δ_0 · 2Re Σ_n C_n B̄_n^p — Ā dropped: one weight per order and channel,
    applied to U^(p) at lag 0 (the official implementation's cheap mode).
Every order shares Ā and C, so the recurrent view keeps one SSM state, driven by B̄ u_k + Σ_p B̄^p U^(p)_k (kb), and
the last P − 1 inputs to form the products: state = (SSM state, history (B, H, P−1)).

liquid_form = causal (default) is the paper's formula above. liquid_form = official computes the liquid terms as the
official code does (layers.liquid_official: non-causal products, coefficients frozen at initialization), to
reproduce its published numbers; it has no recurrent view, and it alone takes bidirectional=True (the official
two-sided layer, which its LRA Image config uses).
"""
from __future__ import annotations

import torch

from ..kernels.base import complex_dtype
from ..ops import fftconv
from ..ops.float32_backward import autocast_off
from .checks import check_step_input, mask_padding
from .conv import block_options
from .factory import factory_kwargs
from .liquid_official import official_liquid
from .registry import register_layer
from .s4 import S4

LIQUID_KERNELS = ("kb", "pb")
LIQUID_FORMS = ("causal", "official")


@register_layer("liquid_s4")
class LiquidS4(S4):
    """Liquid-S4: S4 options plus liquid_order P (>= 2: products of up to P inputs; the paper's LRA runs take 2 to
    6), liquid_kernel kb | pb and liquid_form causal | official (module docstring); bidirectional with the official
    form only. B̃ starts unclipped (B_clip None), as the official code's nplr (raminmh/liquid-s4
    src/models/hippo/hippo.py, an S4 version before the clip); the official form also takes that nplr's eigenvector
    signs (S4's basis='official'), which its frozen Σ_n B̄_n reads."""

    @factory_kwargs
    @block_options(leave_out=("recompute", "cuda_graph"))  # its own forward: no chunked path to recompute or capture
    def __init__(self, d_model: int, d_state: int = 64, *, liquid_order: int = 2, liquid_kernel: str = "kb",
                 liquid_form: str = "causal", channels: int = 1, bidirectional: bool = False, init: str = "legs",
                 l_max: int | None = None, real_transform: str = "exp",
                 dt_min: float = 1e-3, dt_max: float = 1e-1, ssm_lr: float | None = 1e-3, B_clip: float | None = None,
                 n_ssm: int | None = None, dt_transform: str = "exp", dt_lr: float | None | str = "ssm",
                 length_correction: bool = True, **block):
        if not isinstance(liquid_order, int) or isinstance(liquid_order, bool) or liquid_order < 2:
            raise ValueError(f"liquid_order: expected an integer >= 2, got {liquid_order!r}")
        if liquid_kernel not in LIQUID_KERNELS:
            raise ValueError(f"liquid_kernel: expected one of {LIQUID_KERNELS}, got {liquid_kernel!r}")
        if liquid_form not in LIQUID_FORMS:
            raise ValueError(f"liquid_form: expected one of {LIQUID_FORMS}, got {liquid_form!r}")
        if bidirectional and liquid_form != "official":
            raise ValueError("bidirectional: the causal liquid form (the paper's formula) has no anti-causal half; "
                             "liquid_form='official' takes bidirectional=True, as the official two-sided layer")
        official = liquid_form == "official"
        # the official form's frozen S = Σ_n B̄_n depends on each mode's sign: it takes the official code's
        # (hippo.nplr); and it reads the plain C drawn before it becomes C̃ (l_max set): C̃ is formed after that read
        super().__init__(d_model, d_state, channels=channels, bidirectional=bidirectional, init=init, l_max=l_max,
                         real_transform=real_transform, dt_min=dt_min, dt_max=dt_max, ssm_lr=ssm_lr, B_clip=B_clip,
                         n_ssm=n_ssm, dt_transform=dt_transform, dt_lr=dt_lr,
                         basis="official" if official else "first_positive",
                         length_correction=length_correction and not official, **block)
        self.order, self.liquid_kernel, self.liquid_form = liquid_order, liquid_kernel, liquid_form
        if official:
            self._freeze_official_coefficients()
            if length_correction and l_max:
                self.kernel.correct_length()

    def _freeze_official_coefficients(self) -> None:
        """S = Σ_n B̄_n and c = Re Σ_n C_n B̄_n over both halves of each pair, B̄ = Δ (1 − Δ/2·λ)^{-1} B with the
        initial (diagonal-only) parameters, as buffers that training does not move. C is the plain C drawn at init,
        read before __init__ turns the parameter into C̃ (l_max set): the official SSKernel keeps its drawn C
        (self.C) while the kernel's parameter, a copy, becomes C̃ at the first forward
        (src/models/sequence/ss/kernel.py _setup_C)."""
        k = self.kernel
        with torch.no_grad():
            dt = k.dt()[:, None]
            dB = dt / (1 - dt / 2 * k.Lambda()) * k.cplx("B")  # (H, N2)
            self.register_buffer("liquid_sum_dB", 2 * dB.sum(-1).real)
            self.register_buffer("liquid_CB", 2 * (k.output_C() * dB).sum(-1).real)

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

    def _no_official_recurrence(self) -> None:
        if self.liquid_form == "official":
            raise ValueError("state: liquid_form='official' has no recurrent view (its products read later inputs); "
                             "use forward(u) without state, or liquid_form='causal'")

    def default_state(self, batch_size: int):
        self._no_official_recurrence()
        ssm = super().default_state(batch_size)
        return ssm, torch.zeros(batch_size, self.H, self.order - 1, dtype=ssm.real.dtype, device=ssm.device)

    def _check_liquid_state(self, state, batch: int):
        self._no_official_recurrence()
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
        with autocast_off(u.device.type):
            x = u.transpose(1, 2).to(self.kernel.real_dtype)
            if self.liquid_form == "official":
                K = self.kernel(L, rate)
                y = self._fft_features(x, K) + official_liquid(x, K, self.liquid_sum_dB.to(x.dtype),
                                                               self.liquid_CB.to(x.dtype), self.order,
                                                               self.liquid_kernel, self.bidirectional)
                return self._output(y.to(u.dtype)), None
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
        return self._output(y.to(u.dtype)), next_state

    def step(self, u: torch.Tensor, state, rate: float = 1.0):
        check_step_input(u, self.H, self.D.dtype)
        self._check_liquid_state(state, u.shape[0])
        y, next_state = self.forward(u[:, None], state, rate)
        return y[:, 0], next_state
