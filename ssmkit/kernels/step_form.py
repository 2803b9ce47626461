"""The structured recurrent step of a DPLR or diagonal system on half states: O(N·R) numbers per channel where the
dense Ā (real_form) has N², so that a whole stack of layers fits one GPU program (ops.block_step).

    x' = a ⊙ x − Σ_r E_r · 2Re(V_r · x) + b u,        y = Re(c · x')        x, a, b, c, E_r, V_r: (H, N2) complex

The bilinear DPLR system's numbers come from Woodbury on its resolvent (kernels/dplr.py dplr_step_form); a diagonal
system has R = 0, a = Ā and c = s·C (diagonal_form).
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
        """(3 + 2R, H, N2, 2) real: a, b, c, then E_r and V_r for each r, each number as its (Re, Im) pair, as a
        complex tensor lies in memory (ops.block_step's layout)."""
        parts = [self.a, self.b, self.c] + [t for r in range(self.E.shape[0]) for t in (self.E[r], self.V[r])]
        return torch.view_as_real(torch.stack(parts))


def real_matrix(a: torch.Tensor, E: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """The real matrix (H, 2N2, 2N2) of x ↦ a ⊙ x − Σ_r E_r·2Re(V_r·x) on interleaved half states z = (Re x_0, Im x_0,
    Re x_1, ...), a (H, N2), E and V (R, H, N2) complex: each mode's block [[Re a, −Im a], [Im a, Re a]] on the
    diagonal, less Σ_r e_r v_rᵀ with e_r = (Re E_r, Im E_r) and v_r = 2(Re V_r, −Im V_r) interleaved (2Re(V·x) = v·z).
    For the bilinear DPLR system it is the real form of the dense Ā (chunked.real_form), formed from O(N·R) numbers
    without the complex N × N matrix."""
    H, N2 = a.shape
    blocks = torch.stack([torch.stack([a.real, -a.imag], -1), torch.stack([a.imag, a.real], -1)], -2)  # (H, N2, 2, 2)
    eye = torch.eye(N2, dtype=blocks.dtype, device=blocks.device)
    M = torch.einsum("hnij,nm->hnimj", blocks, eye).reshape(H, 2 * N2, 2 * N2)
    if E.shape[0] == 0:
        return M
    e = torch.view_as_real(E.resolve_conj()).flatten(-2)  # (R, H, 2N2)
    v = 2 * torch.view_as_real(V.conj().resolve_conj()).flatten(-2)
    return M - torch.einsum("rhi,rhj->hij", e, v)


def diagonal_form(dA, dB, C) -> LowRankStep:
    """A diagonal system (R = 0): Ā = dA, B̄ = dB (H, N2), C (H, N2) with the output scale folded in."""
    empty = dA.new_zeros(0, *dA.shape)
    return LowRankStep(dA, dB, C, empty, empty)
