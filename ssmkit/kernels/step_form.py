"""The structured recurrent step of a DPLR or diagonal system on half states: O(N·R) numbers per channel where the
dense Ā (real_form) has N², so that a whole stack of layers fits one GPU program (ops.block_step).

    x' = a ⊙ x − Σ_r E_r · 2Re(V_r · x) + b u,        y = Re(c · x')        x, a, b, c, E_r, V_r: (H, N2) complex

For the bilinear DPLR system (kernels/dplr.py), Ā = 2(I − Δ/2·A)^{-1} − I with A = diag(Λ_f) − Σ_r P_f,r P_f,r*, and
Woodbury writes the resolvent as d_f − Δ/2·Σ_rs (d_f P_f,r) cap_rs (P_f,s* d_f ·), d = 1/(1 − Δ/2·Λ),
cap = (I_R + Δ/2·P_f* diag(d_f) P_f)^{-1}. On a conjugate-symmetric full state [x; x̄] every P_f,s* d_f [x; x̄] is
2Re(Σ_n P̄_s,n d_n x_n), so cap is real and the top half of Ā [x; x̄] is

    a = 2d − 1,    E_s = Δ·Σ_r cap_rs d ⊙ P_r,    V_s = P̄_s ⊙ d,

with b = B̄ and c = 2C (y = 2Re(C x')). A diagonal system has R = 0, a = Ā and c = s·C.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LowRankStep:
    """The step's numbers (module docstring): a, b, c (H, N2); E, V (R, H, N2), all complex of one dtype."""

    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    E: torch.Tensor
    V: torch.Tensor

    def step(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, H, N2) complex, u (B, H) real -> (y (B, H), x')."""
        w = 2 * torch.einsum("rhn,bhn->brh", self.V, x).real  # (B, R, H)
        x = self.a * x - torch.einsum("rhn,brh->bhn", self.E, w.to(x.dtype)) + self.b * u[..., None].to(x.dtype)
        return (self.c * x).real.sum(-1), x

    def planes(self) -> torch.Tensor:
        """(6 + 4R, H, N2) real: Re, Im of a, b, c, then of E_r and V_r for each r (ops.block_step's layout)."""
        parts = [self.a, self.b, self.c] + [t for r in range(self.E.shape[0]) for t in (self.E[r], self.V[r])]
        return torch.stack([p for z in parts for p in (z.real, z.imag)])


def dplr_step_form(Lambda, P, dt, dB, C) -> LowRankStep:
    """The structured step of the bilinear DPLR system (module docstring). Lambda (H, N2), P (R, H, N2), dt (H,),
    dB = B̄ (H, N2), C (H, N2) the plain C of one output channel; computed in the inputs' precision (give complex128
    and round the result once)."""
    half = (dt / 2).to(Lambda.dtype)[:, None]
    d = 1 / (1 - half * Lambda)
    gram = 2 * torch.einsum("rhn,hn,shn->hrs", P.conj(), d, P).real  # P_f,r* diag(d_f) P_f,s: real (H, R, R)
    eye = torch.eye(P.shape[0], dtype=gram.dtype, device=gram.device)
    cap = torch.linalg.inv(eye + half.real[..., None] * gram)  # (H, R, R)
    E = torch.einsum("hrs,rhn->shn", (dt[:, None, None] * cap).to(d.dtype), d * P)
    return LowRankStep(2 * d - 1, dB, 2 * C, E, P.conj() * d)


def diagonal_form(dA, dB, C) -> LowRankStep:
    """A diagonal system (R = 0): Ā = dA, B̄ = dB (H, N2), C (H, N2) with the output scale folded in."""
    empty = dA.new_zeros(0, *dA.shape)
    return LowRankStep(dA, dB, C, empty, empty)
