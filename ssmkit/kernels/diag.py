"""Diagonal SSMs: the shared discrete system (kernel, step, chunk) and the S4D kernel (Gu, Gupta et al. 2022).

A diagonal SSM with conjugate pairs, discretized: x_k = Ā ⊙ x_{k−1} + B̄ u_k, y_k = s·Re(C x_k), with s = 2 when the
conjugate half of the state is implied (S4D) and s = 1 for models that take the real part of a half sum (DSS, DLR).
Its convolution kernel is the Vandermonde product K_l = s·Re Σ_n C_n B̄_n Ā_n^l.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import hippo
from ..discretize import discretize
from ..ops import vandermonde
from ..ops.vandermonde import powers as vandermonde_powers
from .base import SSMKernel, block_length, blocked_end_state, check_bandlimit
from ..dense import conj_full
from .chunked import ChunkSystem, diagonal_chunks, interleave, real_form
from .step_form import LowRankStep, diagonal_form


@dataclass
class DiagonalSystem:
    """The discretized diagonal SSM. log_dA, dB (H, N2); C (Cch, H, N2) complex; scale s."""

    log_dA: torch.Tensor
    dB: torch.Tensor
    C: torch.Tensor
    scale: float

    def kernel(self, L: int) -> torch.Tensor:
        """K_l = s·Re Σ_n C_n B̄_n Ā_n^l, l < L: (Cch, H, L)."""
        return self.scale * vandermonde(self.C * self.dB, self.log_dA, L).real

    def step(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, H, N2), u (B, H) -> y (B, Cch, H), x'.  x' = Ā x + B̄ u, y = s·Re(C x')."""
        x = torch.exp(self.log_dA) * x + self.dB * u[..., None]
        return self.scale * torch.einsum("chn,bhn->bch", self.C, x).real, x

    def forward_state(self, u: torch.Tensor, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What a carried state adds to a chunk, and the state at its end. u (B, H, L), x0 (B, H, N2).

        y_k += s·Re Σ_n C_n Ā_n^{k+1} x0_n      x_L = Ā^L x0 + B̄ Σ_j Ā^{L−1−j} u_j
        """
        L = u.shape[-1]
        return self.carried_output(x0, L), self.advance(x0, L) + self.end_state(u)

    def carried_output(self, x0: torch.Tensor, L: int) -> torch.Tensor:
        """y_k = s·Re Σ_n C_n Ā_n^{k+1} x0_n, k < L: what the state x0 (B, H, N2) adds to the next L outputs
        (B, Cch, H, L)."""
        return self.scale * vandermonde(self.C * (torch.exp(self.log_dA) * x0)[:, None], self.log_dA, L).real

    def advance(self, x0: torch.Tensor, L: int) -> torch.Tensor:
        """Ā^L x0: the state x0 (B, H, N2) after L steps without input."""
        return torch.exp(L * self.log_dA) * x0

    def end_state(self, u: torch.Tensor) -> torch.Tensor:
        """x_L = B̄ Σ_j Ā^{L−1−j} u_j: the state after u (B, H, L) from the zero state (B, H, N2), in blocks of
        steps (blocked_end_state: a table of Ā^0 … Ā^{T−1} instead of one of the whole length)."""
        T = block_length(u.shape[-1], self.log_dA.numel())
        powers = vandermonde_powers(self.log_dA, T).flip(-1)  # (H, N2, T): Ā^{T−1−i} at i

        def block_state(block):
            n = block.shape[-1]
            return torch.einsum("bhl,hnl->bhn", block.to(powers.dtype), powers[..., T - n:])

        return self.dB * blocked_end_state(u, T, block_state, lambda x, n: torch.exp(n * self.log_dA) * x)

    def chunks(self, T: int, channels: slice = slice(None), delay: bool = False) -> ChunkSystem:
        """The chunked form (kernels/chunked.py) of output channels ``channels``: B̄ and s folded into C."""
        return diagonal_chunks(self.log_dA, self.scale * self.C[channels] * self.dB, T, delay)

    def diagonal_step_form(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a, b, c) of ops.ssm_step's diagonal form: a = interleaved (Re Ā_n, Im Ā_n) (H, 2·N2); b, c as in
        real_step_form."""
        return (interleave(torch.exp(self.log_dA).expand_as(self.dB)),) + self._readout()

    def real_step_form(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(M, b, c) of ops.ssm_step on the interleaved state: M block-diagonal rotations-and-decays, b = B̄,
        c = s·conj(C) (so that c · z = s·Re(C x))."""
        return (real_form(torch.diag_embed(conj_full(torch.exp(self.log_dA)))),) + self._readout()

    def lowrank_step_form(self) -> LowRankStep:
        """The structured step (kernels/step_form.py) of output channel 0: R = 0, a = Ā, c = s·C."""
        return diagonal_form(torch.exp(self.log_dA).expand_as(self.dB), self.dB, self.scale * self.C[0])

    def _readout(self) -> tuple[torch.Tensor, torch.Tensor]:
        return interleave(self.dB), interleave(self.scale * self.C.conj())


def diag_kernel(Lambda, B, C, dt, L: int, disc: str = "zoh") -> torch.Tensor:
    """K_k = 2·Re Σ_n C_n B̄_n Ā_n^k of the diagonal SSM (diag(Λ, Λ̄), [B, B̄], [C, C̄]) discretized with ``disc``.

    Lambda (H, N2), B (H, N2), C (Cch, H, N2) complex; dt (H,) > 0 -> (Cch, H, L) real.
    """
    log_dA, dB = discretize(disc, Lambda * dt[:, None], dt[:, None], B)
    return DiagonalSystem(log_dA, dB, C, 2.0).kernel(L)


REAL_TRANSFORMS = ("exp", "relu", "softplus", "sigmoid", "none")
REAL_FLOOR = 1e-4  # the official kernels' floor on −Re λ (state-spaces/s4 kernels/ssm.py inv_transform, param_transform)


def real_part(raw: torch.Tensor, transform: str) -> torch.Tensor:
    """Re λ = −f(raw) with f = exp | relu(·) + 1e-4 | softplus | sigmoid | identity, as the official param_transform:
    all but the identity keep the SSM stable whatever the optimizer does (relu's 1e-4 keeps Re λ off 0)."""
    if transform == "exp":
        return -torch.exp(raw)
    if transform == "relu":
        return -(torch.relu(raw) + REAL_FLOOR)
    if transform == "softplus":
        return -F.softplus(raw)
    if transform == "sigmoid":
        return -torch.sigmoid(raw)
    return -raw


def real_part_inverse(re: torch.Tensor, transform: str) -> torch.Tensor:
    """raw with real_part(raw) = re, after −re is floored at 1e-4 (every transform, as the official inv_transform; FouT
    and LegT have Re λ = 0 exactly). relu's raw is −re itself, so its Re λ starts 1e-4 further left, as there."""
    if transform not in REAL_TRANSFORMS:
        raise ValueError(f"real_transform: expected one of {REAL_TRANSFORMS}, got {transform!r}")
    x = torch.clamp(-re, min=REAL_FLOOR)
    if transform == "exp":
        return torch.log(x)
    if transform == "softplus":
        return torch.log(torch.expm1(x))
    if transform == "sigmoid":
        if bool((x >= 1).any()):
            raise ValueError(f"real_transform='sigmoid' keeps −Re λ below 1, but the init has −Re λ up to "
                             f"{x.max().item():.3g}; take another init or transform")
        return torch.logit(x)
    return x


class S4DKernel(SSMKernel):
    """S4D: A = diag(λ), λ_n = −f(a_n) + i b_n; B, C complex; Δ per channel; K by Vandermonde product.

    init: lin (default, the official S4D layer's diag-lin) | inv | legs | real | random (hippo.diagonal_init);
    disc: zoh | bilinear;
    real_transform: exp | relu | softplus | sigmoid | none (real_part); bandlimit: None | b > 0, C zeroed for the modes
    at or above b/2 cycles per sample (base.bandlimit_mask). B starts at 1 (for legs: the HiPPO B̃, Im clipped to
    [−B_clip, B_clip] as in the official S4D-LegS init), C ~ complex normal with E|C|² = 1. dt_transform (exp | softplus) and dt_lr: Δ's
    parameter and learning rate (base.SSMKernel.init_dt).
    """

    def __init__(self, d_model: int, d_state: int = 64, channels: int = 1, init: str = "lin", disc: str = "zoh",
                 real_transform: str = "exp", dt_min: float = 1e-3, dt_max: float = 1e-1, ssm_lr: float | None = 1e-3,
                 B_clip: float | None = 2.0, n_ssm: int | None = None, bandlimit: float | None = None,
                 dt_transform: str = "exp", dt_lr: float | None | str = "ssm", C_lr: float | None = None):
        super().__init__(d_model, d_state, channels, ssm_lr, n_ssm)
        self.init_dt(dt_min, dt_max, transform=dt_transform, lr=dt_lr)
        self.bandlimit = check_bandlimit(bandlimit)
        if disc not in ("zoh", "bilinear"):
            raise ValueError(f"disc: expected 'zoh' or 'bilinear', got {disc!r}")
        self.disc, self.real_transform = disc, real_transform
        Lambda = hippo.diagonal_init(init, d_state).expand(self.n_ssm, -1)
        B = hippo.nplr("legs", d_state, B_clip).B if init == "legs" else torch.ones(self.N2, dtype=torch.complex128)
        self.register_ssm("A_real", real_part_inverse(Lambda.real, real_transform))
        self.register_ssm("A_imag", Lambda.imag.clone())
        self.register_ssm("B", B.expand(self.n_ssm, -1).clone())
        self.register_output("C", torch.randn(channels, d_model, self.N2, dtype=torch.complex128), lr=C_lr)

    def Lambda(self) -> torch.Tensor:
        return torch.complex(real_part(self.real("A_real"), self.real_transform), self.real("A_imag"))

    def system(self, rate: float = 1.0) -> DiagonalSystem:
        dt = self.dt(rate)[:, None]
        log_dA, dB = discretize(self.disc, self.Lambda() * dt, dt, self.cplx("B"))
        return DiagonalSystem(log_dA, dB, self.output_C(), 2.0)

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        return self.system(rate).kernel(L)

    def recurrence(self, rate: float = 1.0) -> DiagonalSystem:
        return self.system(rate)
