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


def diagonal_form(dA, dB, C) -> LowRankStep:
    """A diagonal system (R = 0): Ā = dA, B̄ = dB (H, N2), C (H, N2) with the output scale folded in."""
    empty = dA.new_zeros(0, *dA.shape)
    return LowRankStep(dA, dB, C, empty, empty)
