"""S5: the simplified state space layer (Smith, Warrington, Linderman 2022) — one MIMO diagonal SSM over all H.

    x_k = Λ̄_k ⊙ x_{k−1} + B̄_k u_k,   y_k = 2·Re(C̃ x_k) + D ⊙ u_k         x_k ∈ C^{P/2}, u_k, y_k ∈ R^H

Λ (P/2,) from HiPPO-N (``blocks`` diagonal blocks), B̃ = V* B₀ (P/2, H), C̃ = C₀ V (H, P/2), Δ (P/2,) one per state.
Discretization per state: ZOH Λ̄ = e^{ΛΔ}, B̄ = (Λ̄ − 1)/Λ · B̃; bilinear Λ̄ = (1 + ΛΔ/2)/(1 − ΛΔ/2), B̄ = Δ/(1 − ΛΔ/2)·B̃.
Since the discretization scales each state's row of B̃, B̄_k u_k = q_k ⊙ (B̃ u_k) with q_k the per-state factor, so a
per-position Δ_k = Δ·dt_scale_k (irregular sampling) costs O(P) per position, not O(P·H).
The sequence is computed by ops.scan (parallel, log depth); bidirectional adds a second scan over the reversed
sequence, read out by its own C̃₂. Output, with g = Drop(GELU(y)) (the official SequenceLayer, s5/layers.py; GELU is
flax's nn.gelu there, the tanh approximation, and so here):
    gelu        g
    full_glu    Drop(W₁g ⊙ σ(W₂g))
    half_glu    Drop(g ⊙ σ(W g))          (the official half_glu1)
    half_glu2   Drop(y ⊙ σ(W g))          (the raw SSM output gated)
Drop is tied across positions by default (one mask per sample and channel), as the official dropout broadcasts over
the length; tie_dropout=False draws per element.
Optimizer groups (opt_config, as the official s5/train_helpers.py): standard — Λ, B̃, Δ at ssm_lr without weight
decay, C̃ and D with the model's; BandCdecay — B̃ at ssm_lr with the model's weight decay; BfastandCdecay — B̃ with
the model's lr and decay; noBCdecay — C̃ and D too at ssm_lr without decay. dt_global: Δ with the model's lr and decay.

Init and defaults as the official S5 (lindermanlab/S5, s5/ssm.py S5SSM.setup, s5/ssm_init.py, run_train.py): J = 8
blocks, B₀ LeCun normal over its fan-in P (std 1/√P, JAX's truncated normal), C_init trunc_normal (the official
trunc_standard_normal: C₀ complex, real and imaginary parts LeCun normal over P), activation half_glu, and the
output maps LeCun normal with zero bias (flax Dense).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import hippo
from ..discretize import DISCRETIZATIONS, discretize
from ..kernels.base import as_complex, complex_dtype, register_ssm
from ..ops import scan
from ..ops.float32_backward import autocast_off
from .checks import check_batch_size, check_input, check_rate, check_state, check_step_input, mask_padding
from .dropout import dropout as make_dropout
from .factory import factory_kwargs
from .registry import register_layer

ACTIVATIONS = ("gelu", "full_glu", "half_glu", "half_glu2")
OPT_CONFIGS = ("standard", "BandCdecay", "BfastandCdecay", "noBCdecay")
C_INITS = ("lecun", "trunc_normal", "complex_normal")
MAX_BLOCKS = 8  # the official default


def lecun_normal(*shape: int, fan_in: int) -> torch.Tensor:
    """JAX's lecun_normal: a normal truncated at ±2 standard deviations, rescaled to variance 1/fan_in (float64)."""
    t = torch.nn.init.trunc_normal_(torch.empty(shape, dtype=torch.float64), a=-2.0, b=2.0)
    return t / (0.87962566103423978 * math.sqrt(fan_in))


@torch.no_grad()
def flax_dense_(module: nn.Module, fan_in: int) -> None:
    """flax's Dense init in place: weight LeCun normal over fan_in (JAX's truncated normal), bias (if any) zero."""
    module.weight.copy_(lecun_normal(*module.weight.shape, fan_in=fan_in))
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def initial_C(C_init: str, n_dir: int, H: int, V: torch.Tensor) -> torch.Tensor:
    """C̃ (n_dir, H, P/2) complex128 as the official S5SSM draws it (V: (P, P/2) eigenvectors).

    trunc_normal: C₀ = C_re + i C_im, each LeCun normal over P (the official 'trunc_standard_normal'); C̃ = C₀ V.
    lecun: the same with JAX's fan-in of an (H, P, 2) array, P·H (the official 'lecun_normal'); C̃ = C₀ V.
    complex_normal: C̃ drawn directly, real and imaginary parts N(0, ½).
    """
    P = V.shape[0]
    if C_init == "complex_normal":
        return torch.complex(*torch.randn(2, n_dir, H, P // 2, dtype=torch.float64)) * math.sqrt(0.5)
    C0 = lecun_normal(2, n_dir, H, P, fan_in=P if C_init == "trunc_normal" else P * H)
    return torch.complex(C0[0], C0[1]) @ V


def default_blocks(d_state: int) -> int:
    """The official 8 HiPPO-N blocks, or the most (fewer) that split d_state into blocks of even size."""
    return max(j for j in range(1, MAX_BLOCKS + 1) if d_state % (2 * j) == 0)


@register_layer("s5")
class S5(nn.Module):
    """S5. d_state P (P/2 conjugate pairs), blocks J (None: default_blocks), disc zoh | bilinear, C_init lecun |
    trunc_normal | complex_normal, clip_eigs (keep Re Λ <= −1e-4), bidirectional, activation gelu | full_glu |
    half_glu | half_glu2, dropout and tie_dropout, opt_config and dt_global (module docstring).
    forward/step take dt_scale (B, L) / (B,): per-position multipliers of Δ for irregularly sampled series."""

    @factory_kwargs
    def __init__(self, d_model: int, d_state: int = 64, *, blocks: int | None = None, disc: str = "zoh",
                 bidirectional: bool = False, C_init: str = "trunc_normal", clip_eigs: bool = False,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, ssm_lr: float | None = 1e-3,
                 activation: str = "half_glu", dropout: float = 0.0, tie_dropout: bool = True,
                 opt_config: str = "standard", dt_global: bool = False, l_max: int | None = None):
        super().__init__()
        if disc not in DISCRETIZATIONS:
            raise ValueError(f"disc: expected one of {DISCRETIZATIONS}, got {disc!r}")
        if C_init not in C_INITS:
            raise ValueError(f"C_init: expected one of {C_INITS}, got {C_init!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
        if opt_config not in OPT_CONFIGS:
            raise ValueError(f"opt_config: expected one of {OPT_CONFIGS}, got {opt_config!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"dt_min, dt_max: expected 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        if not isinstance(d_state, int) or isinstance(d_state, bool) or d_state < 2 or d_state % 2:
            raise ValueError(f"d_state: expected an even integer >= 2 (P/2 conjugate pairs), got {d_state!r}")
        Lambda, V = hippo.hippo_n_blocks(d_state, default_blocks(d_state) if blocks is None else blocks)
        H, P2 = d_model, d_state // 2
        self.H, self.P2, self.disc, self.clip_eigs = H, P2, disc, clip_eigs
        self.bidirectional, self.l_max, self.activation = bidirectional, l_max, activation
        B0 = lecun_normal(d_state, H, fan_in=d_state)
        register_ssm(self, "A_real", Lambda.real.clone(), ssm_lr)
        register_ssm(self, "A_imag", Lambda.imag.clone(), ssm_lr)
        register_ssm(self, "B", V.conj().T @ B0.to(torch.complex128), ssm_lr)
        log_dt = torch.rand(P2, dtype=torch.float64) * math.log(dt_max / dt_min) + math.log(dt_min)
        register_ssm(self, "log_dt", log_dt, ssm_lr)
        C = initial_C(C_init, 2 if bidirectional else 1, H, V)
        self.C = nn.Parameter(torch.view_as_real(C).to(torch.get_default_dtype()).contiguous())
        self.D = nn.Parameter(torch.randn(H))
        self.out1 = nn.Linear(H, H) if activation != "gelu" else None
        self.out2 = nn.Linear(H, H) if activation == "full_glu" else None
        for linear in (self.out1, self.out2):
            if linear is not None:
                flax_dense_(linear, fan_in=H)
        self.dropout = make_dropout(dropout, tie_dropout)
        self._group(opt_config, dt_global, ssm_lr)

    def _group(self, opt_config: str, dt_global: bool, ssm_lr: float | None) -> None:
        """The optimizer settings of opt_config and dt_global (module docstring) over register_ssm's defaults."""
        settings = self.__dict__.setdefault("_optim_settings", {})
        ssm = {"weight_decay": 0.0, **({} if ssm_lr is None else {"lr": ssm_lr})}
        if opt_config == "BandCdecay" and "B" in settings:
            settings["B"] = {} if ssm_lr is None else {"lr": ssm_lr}
        elif opt_config == "BfastandCdecay":
            settings.pop("B", None)
        elif opt_config == "noBCdecay":
            settings.update(C=dict(ssm), D=dict(ssm))
        if dt_global:
            settings.pop("log_dt", None)

    @property
    def real_dtype(self) -> torch.dtype:
        return torch.float64 if self.C.dtype == torch.float64 else torch.float32

    def Lambda(self) -> torch.Tensor:
        re = self.A_real.to(self.real_dtype)
        if self.clip_eigs:
            re = torch.clamp(re, max=-1e-4)
        return torch.complex(re, self.A_imag.to(self.real_dtype))

    def discrete(self, rate: float = 1.0, dt_scale: torch.Tensor | None = None):
        """(Λ̄, q): (P2,) or, with dt_scale (...,), (..., P2) each; B̄ u = q ⊙ (B̃ u)."""
        dt = torch.exp(self.log_dt.to(self.real_dtype)) * rate
        if dt_scale is not None:
            dt = dt_scale.to(self.real_dtype)[..., None] * dt
        Lambda = self.Lambda()
        log_dA, q = discretize(self.disc, Lambda * dt, dt, torch.ones_like(Lambda))
        return torch.exp(log_dA), q

    def default_state(self, batch_size: int) -> torch.Tensor:
        if self.bidirectional:
            raise ValueError("default_state: a bidirectional layer has no recurrent view (it reads future inputs)")
        check_batch_size(batch_size)
        return torch.zeros(batch_size, self.P2, dtype=complex_dtype(self.real_dtype), device=self.C.device)

    def _output(self, y: torch.Tensor) -> torch.Tensor:
        g = self.dropout(nn.functional.gelu(y, approximate="tanh"))  # flax's nn.gelu, as the official layer
        if self.activation == "gelu":
            return g
        if self.activation == "full_glu":
            return self.dropout(self.out1(g) * torch.sigmoid(self.out2(g)))
        return self.dropout((g if self.activation == "half_glu" else y) * torch.sigmoid(self.out1(g)))

    def _check_dt_scale(self, dt_scale, shape: tuple) -> None:
        if dt_scale is not None and (not isinstance(dt_scale, torch.Tensor) or tuple(dt_scale.shape) != shape):
            got = tuple(dt_scale.shape) if isinstance(dt_scale, torch.Tensor) else type(dt_scale).__name__
            raise ValueError(f"dt_scale: expected a tensor of shape {shape} (a multiplier of Δ per position), got {got}")

    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None, rate: float = 1.0,
                dt_scale: torch.Tensor | None = None, lengths=None):
        """u (B, L, H) -> (y (B, L, H), next state or None); ``state`` continues a previous chunk. lengths (B,):
        a suffix-padded batch, whose input beyond each length is zeroed (the backward scan never reads padding)."""
        check_input(u, self.H, self.l_max, self.D.dtype)
        check_rate(rate)
        u = mask_padding(u, lengths, state is not None)
        Bt, L, _ = u.shape
        self._check_dt_scale(dt_scale, (Bt, L))
        if state is not None:
            check_state(state, (Bt, self.P2), self.bidirectional)
        with autocast_off(u.device.type):
            x_in = u.to(self.real_dtype)
            dA, q = self.discrete(rate, dt_scale)
            a = dA.expand(1, L, -1) if dA.dim() == 1 else dA
            Bu = q * (x_in.to(complex_dtype(self.real_dtype)) @ as_complex(self.B).T)  # (B, L, P2)
            if state is not None:
                Bu = torch.cat([Bu[:, :1] + a[:, :1] * state.to(Bu.dtype)[:, None], Bu[:, 1:]], dim=1)
            xs = scan(a, Bu)
            C = as_complex(self.C)
            y = 2 * (xs @ C[0].T).real
            if self.bidirectional:
                y = y + 2 * (scan(a.flip(1), Bu.flip(1)).flip(1) @ C[1].T).real
            y = y + self.D.to(y.dtype) * x_in
        return self._output(y.to(u.dtype)), (xs[:, -1] if state is not None else None)

    def step(self, u: torch.Tensor, state: torch.Tensor, rate: float = 1.0, dt_scale: torch.Tensor | None = None):
        """One sample: u (B, H), state (B, P2) -> (y (B, H), next state)."""
        if self.bidirectional:
            raise ValueError("step: a bidirectional layer has no recurrent view (it reads future inputs)")
        check_step_input(u, self.H, self.D.dtype)
        check_state(state, (u.shape[0], self.P2), False)
        check_rate(rate)
        self._check_dt_scale(dt_scale, (u.shape[0],))
        with autocast_off(u.device.type):
            x_in = u.to(self.real_dtype)
            dA, q = self.discrete(rate, dt_scale)
            cdtype = complex_dtype(self.real_dtype)
            x = dA * state.to(cdtype) + q * (x_in.to(cdtype) @ as_complex(self.B).T)
            y = 2 * (x @ as_complex(self.C)[0].T).real + self.D.to(x_in.dtype) * x_in
        return self._output(y.to(u.dtype)), x
