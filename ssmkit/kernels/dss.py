"""DSS: diagonal state spaces (Gupta, Gu, Berant 2022), ZOH with B folded into w ∈ C^N.

DSS-exp:     λ = −exp(a) + i b;   K_k = Re Σ_n w_n λ_n^{-1} (e^{x_n} − 1) e^{k x_n}
DSS-softmax: λ unconstrained;     K_k = Re Σ_n w_n λ_n^{-1} e^{k x_n} / S_n,   S_n = Σ_{j<L'} e^{j x_n}
with x_n = Re λ_n·Δ_re + i Im λ_n·Δ_im (one Δ for each part, per channel; sep_dt=False ties them).

As the official code (ag1988/dss, src/models/sequence/ss/standalone/dss.py, DSSKernel): d_state N counts complex
modes (the output is Re Σ over all N, no conjugate half), Λ is the N eigenvalues with Im > 0 of the skew part of the
size-2N HiPPO-LegS matrix, minus ½, shared by the channels (n_ssm = 1); w has E|w|² = 2 and trains with the SSM
parameters (lr 1e-3, no weight decay); softmax is the default variant.

For softmax the normalizing length L' is l_max when given (needed for the recurrent and chunked views, whose kernel
must not depend on the chunk) and the input length otherwise (the official code: always the input length). The
normalizer is summed in closed form, S = expm1(L'x)/expm1(x), and is evaluated relative to the largest term so that
either sign of Re λ is stable: for Re x > 0, e^{kx}/S = e^{−(L'−1−k)x}/S' with S' = expm1(−L'x)/expm1(−x), a decaying
power read backwards. The recurrent view of a growing mode (Re x > 0) is the forward recurrence x_k = e^{x} x_{k−1} +
u_k, whose state grows like e^{k·Re x}: it is exact, but only representable while L'·Re x stays within the float range,
and step() raises a ValueError beyond that instead of producing inf/NaN. As the official code, the reciprocal
1/(λS) = expm1(x)/d with d = λ·expm1(L'x) is regularized: expm1(x)·conj(d)/(|d|² + ε), ε = ``epsilon`` (1e-7
there; 0 the plain formula, which differs where |d|² is small: short lengths with a small Δ).
"""
from __future__ import annotations

import math

import torch

from .. import hippo
from .base import SSMKernel
from .diag import DiagonalSystem, real_part, real_part_inverse
from ..ops import vandermonde

VARIANTS = ("exp", "softmax")


class DSSKernel(SSMKernel):
    def __init__(self, d_model: int, d_state: int = 64, channels: int = 1, variant: str = "softmax",
                 l_max: int | None = None, dt_min: float = 1e-3, dt_max: float = 1e-1, ssm_lr: float | None = 1e-3,
                 learn_dt: bool = True, sep_dt: bool = True, n_ssm: int | None = 1, dt_lr: float | None | str = "ssm",
                 epsilon: float = 1e-7):
        if not isinstance(d_state, int) or d_state < 1:
            raise ValueError(f"d_state: expected a positive integer (the number of complex modes), got {d_state!r}")
        super().__init__(d_model, 2 * d_state, channels, ssm_lr, n_ssm)  # N2 = d_state modes
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
        if l_max is not None and (not isinstance(l_max, int) or l_max < 1):
            raise ValueError(f"l_max: expected None or a positive integer, got {l_max!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon >= 0:
            raise ValueError(f"epsilon: expected a number >= 0, got {epsilon!r}")
        self.variant, self.l_max, self.epsilon = variant, l_max, float(epsilon)
        self.real_transform = "exp" if variant == "exp" else "none"
        self.init_dt(dt_min, dt_max, trainable=learn_dt, pair=sep_dt, lr=dt_lr)
        Lambda = hippo.nplr("legs", 2 * d_state).Lambda.expand(self.n_ssm, -1)  # the skew HiPPO-LegS spectrum
        self.register_ssm("A_real", real_part_inverse(Lambda.real, self.real_transform))
        self.register_ssm("A_imag", Lambda.imag.clone())
        w = torch.randn(channels, d_model, self.N2, dtype=torch.complex128) * math.sqrt(2)
        self.register_output("C", w, ssm_group=True)  # w

    def Lambda(self) -> torch.Tensor:
        return torch.complex(real_part(self.real("A_real"), self.real_transform), self.real("A_imag"))

    def _x(self, Lambda: torch.Tensor, rate: float) -> torch.Tensor:
        """x = λΔ (H, N2): Re λ·Δ_re + i Im λ·Δ_im with separate steps, λΔ with one."""
        dt = self.dt(rate)
        if dt.dim() == 1:
            return Lambda * dt[:, None]
        return torch.complex(Lambda.real * dt[:, :1], Lambda.imag * dt[:, 1:])

    def _norm_length(self, L: int) -> int:
        return self.l_max if self.l_max is not None else L

    def _softmax_terms(self, L_norm: int, rate: float):
        """(x = λΔ, grow = Re x > 0, xs = the decaying direction ±x, coefficient w/(λ·S) of each normalized power:
        w·expm1(xs)·conj(d)/(|d|² + ε) with d = λ·expm1(L'·xs), the regularized reciprocal of the official code)."""
        Lambda = self.Lambda()
        x = self._x(Lambda, rate)
        grow = x.real > 0
        xs = torch.where(grow, -x, x)
        d = Lambda * torch.expm1(L_norm * xs)
        reciprocal = d.conj() / (d.real.square() + d.imag.square() + self.epsilon)
        return x, grow, xs, self.cplx("C") * torch.expm1(xs) * reciprocal

    @property
    def chunkable(self) -> bool:
        """The exp variant's recurrence is its kernel; softmax normalizes over a length (and may grow)."""
        return self.variant == "exp"

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        if self.variant == "exp":
            return self.recurrence(rate).kernel(L)
        L_norm = self._norm_length(L)
        if L > L_norm:
            raise ValueError(f"L: the DSS-softmax kernel is normalized over l_max={L_norm}, got length {L}")
        _, grow, xs, coef = self._softmax_terms(L_norm, rate)
        zero = torch.zeros_like(coef)
        # powers are only ever taken in the decaying direction xs, so nothing overflows (masked terms included)
        K = vandermonde(torch.where(grow, zero, coef), xs, L).real
        # the term is 0 without growth; skipped only where reading grow costs no wait for a device (on a GPU the
        # read would stall every forward and invalidate a CUDA graph's capture) and nothing traces
        if grow.device.type != "cpu" or torch.compiler.is_compiling() or bool(grow.any()):
            K = K + vandermonde(torch.where(grow, coef, zero), xs, L_norm).real.flip(-1)[..., :L]
        return K

    def recurrence(self, rate: float = 1.0) -> DiagonalSystem:
        if self.variant == "exp":
            Lambda = self.Lambda()
            x = self._x(Lambda, rate)
            return DiagonalSystem(x, torch.expm1(x) / Lambda, self.cplx("C"), 1.0)
        if self.l_max is None:
            raise ValueError("l_max: the DSS-softmax recurrence is normalized over a fixed length; "
                             "construct the layer with l_max to step it or carry state")
        x, grow, xs, coef = self._softmax_terms(self.l_max, rate)
        worst = float((x.real.detach().clamp(min=0) * self.l_max).max())
        limit = 0.5 * math.log(torch.finfo(self.real_dtype).max)
        if worst > limit:
            raise ValueError(f"DSS-softmax: a mode grows by e^{worst:.0f} over l_max={self.l_max} steps, beyond the "
                             f"{self.real_dtype} range of the recurrent view (limit e^{limit:.0f}); use the "
                             f"convolutional view (forward without state) or float64")
        # a growing mode's weight e^{−(L'−1−k)x} = e^{−(L'−1)x}·e^{kx}: fold e^{(L'−1)·xs} into its coefficient
        coef = coef * torch.exp((self.l_max - 1) * torch.where(grow, xs, torch.zeros_like(xs)))
        return DiagonalSystem(x, torch.ones_like(x), coef, 1.0)
