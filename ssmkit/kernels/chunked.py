"""An LTI SSM in chunked form: the small matrices that the chunked convolution (ops.chunkconv) needs.

A real LTI system with state z ∈ R^S per channel, z_t = M z_{t−1} + b u_t, y_t = c z_t, has the kernel
K_l = c M^l b. Cut the sequence into chunks of T steps and let Z_c be the state at the end of chunk c. Then

    y_{cT+j} = Σ_{i≤j} K_{j−i} u_{cT+i}  +  c M^{j+1} Z_{c−1}            (inside the chunk, plus the carried state)
    Z_c      = M^T Z_{c−1}  +  Σ_i M^{T−1−i} b u_{cT+i}

so the convolution needs only: Kt_j = K_j (j < T), Win_i = M^{T−1−i} b, Wout_j = c M^{j+1} and A = M^T. With
``delay`` the output reads the state before the update, y_t = c z_{t−1} (the strictly causal kernel K'_l = K_{l−1},
K'_0 = 0: the anti-causal half of a bidirectional layer, run on the reversed input); then Kt_j = K_{j−1} and
Wout_j = c M^j. ``delay`` may be given per output channel: the two halves of a bidirectional layer share M and b, so
one set of powers serves both.

Complex diagonal systems (S4D, DSS, DLR, EMA) keep their N2 modes: the state is stored as interleaved real pairs
(Re x_n, Im x_n) and A = Ā^T stays a complex vector; dense systems (S4's DPLR recurrence) become a real S × S
matrix in the same interleaved basis. Shapes: Kt (Cch, H, T), Win (H, T, S), Wout (Cch, H, T, S) real;
A (H, S, S) real or (H, S/2) complex.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ops.chunkconv import toeplitz_t
from ..ops.chunkconv_act import ChunkPart
from ..ops.power_rows import power_rows
from ..ops.vandermonde import powers


@dataclass
class ChunkSystem:
    Kt: torch.Tensor
    Win: torch.Tensor
    Wout: torch.Tensor
    A: torch.Tensor

    @property
    def T(self) -> int:
        return self.Kt.shape[-1]

    def channels(self, index: slice) -> "ChunkSystem":
        """The system of some output channels (the same Win and A)."""
        return ChunkSystem(self.Kt[index], self.Win, self.Wout[index], self.A)

    def part(self, D: torch.Tensor | None = None, reverse: bool = False) -> ChunkPart:
        """The matrices of ops.chunkconv_act for this one-channel system, with the skip D (1, H) on the diagonal."""
        if self.Kt.shape[0] != 1:
            raise ValueError(f"part: expected a one-channel system, got {self.Kt.shape[0]} channels")
        Kt = self.Kt if D is None else torch.cat([self.Kt[..., :1] + D[..., None], self.Kt[..., 1:]], dim=-1)
        return ChunkPart(toeplitz_t(Kt), self.Win, self.Wout[0].transpose(-1, -2), self.A, reverse)


def _delayed(Kt: torch.Tensor, rows, delay) -> tuple[torch.Tensor, torch.Tensor]:
    """(Kt, Wout) with ``delay`` (a bool, or one per output channel, the leading axis): Wout = rows(1) (rows c M^{j+1})
    and, for a delayed channel, Kt shifted by one step (K'_j = K_{j−1}, K'_0 = 0) and Wout = rows(0) (c M^j)."""
    flags = [delay] * Kt.shape[0] if isinstance(delay, bool) else list(delay)
    if len(flags) != Kt.shape[0]:
        raise ValueError(f"delay: expected a bool or one per output channel ({Kt.shape[0]}), got {delay!r}")
    if not any(flags):
        return Kt, rows(1)
    shifted = torch.cat([torch.zeros_like(Kt[..., :1]), Kt[..., :-1]], dim=-1)
    if all(flags):
        return shifted, rows(0)
    # channel by channel: no flag tensor to copy to the device (CUDA graphs capture this function)
    now, out = rows(0), rows(1)
    return (torch.cat([(shifted if f else Kt)[k:k + 1] for k, f in enumerate(flags)]),
            torch.cat([(now if f else out)[k:k + 1] for k, f in enumerate(flags)]))


def interleave(z: torch.Tensor) -> torch.Tensor:
    """(..., N2) complex -> (..., 2·N2) real: [Re z_0, Im z_0, Re z_1, ...]."""
    return torch.view_as_real(z.resolve_conj()).flatten(-2)


def diagonal_chunks(log_dA: torch.Tensor, W: torch.Tensor, T: int, delay=False) -> ChunkSystem:
    """Chunked form of y_t = Re Σ_n W_n x_{t,n}, x_t = Ā x_{t−1} + u_t (Ā = exp(log_dA)).

    log_dA (H, N2) complex; W (Cch, H, N2) complex (the output weights with B̄ and any scale folded in); delay: a bool
    or one per output channel.
    """
    P = powers(log_dA, T + 1)  # (H, N2, T+1): Ā^j
    first = P[..., :T]
    Kt = torch.einsum("chn,hnj->chj", W, first).real
    Win = interleave(P[..., :T].flip(-1).transpose(-1, -2))  # row i: Ā^{T−1−i}
    # rows w Ā^{j+k}; y = Re(w x) = Re w·Re x − Im w·Im x: the real row pairs (Re w, −Im w) = interleave(conj w)
    rows = lambda k: interleave((W[..., None] * P[None, ..., k:T + k]).transpose(-1, -2).conj())  # noqa: E731
    Kt, Wout = _delayed(Kt, rows, delay)
    return ChunkSystem(Kt, Win, Wout, P[..., T])


def dense_chunks(M: torch.Tensor, b: torch.Tensor, c: torch.Tensor, T: int, delay=False) -> ChunkSystem:
    """Chunked form of the real system (M (H, S, S), b (H, S), c (Cch, H, S)); T a power of two; delay: a bool or one
    per output channel.

    The rows M^j b and c M^j come from one doubling chain of M's powers (ops.power_rows); its last power is the chunk
    transition M^T."""
    if T & (T - 1):
        raise ValueError(f"T: expected a power of two, got {T}")
    V, R, P = power_rows(b, c, M, T + 1)  # (H, T+1, S), (H, Cch, T+1, S), M^T
    R = R.transpose(0, 1)  # (Cch, H, T+1, S)
    Kt, Wout = _delayed(torch.einsum("chs,hjs->chj", c, V[:, :T]), lambda k: R[..., k:T + k, :], delay)
    return ChunkSystem(Kt, V[:, :T].flip(1), Wout, P)


def real_form(dA: torch.Tensor) -> torch.Tensor:
    """The real matrix of x ↦ top(Ā [x; x̄]) on interleaved half states: dA (H, N, N) complex -> (H, N, N) real.

    With Ā_11 = a + ib and Ā_12 = c + id (the top blocks), x' = Ā_11 x + Ā_12 x̄ reads
    Re x' = (a + c) Re x + (d − b) Im x,  Im x' = (b + d) Re x + (a − c) Im x.
    """
    N2 = dA.shape[-1] // 2
    A11, A12 = dA[:, :N2, :N2], dA[:, :N2, N2:]
    a, b, c, d = A11.real, A11.imag, A12.real, A12.imag
    rows = [torch.stack([a + c, d - b], dim=-1), torch.stack([b + d, a - c], dim=-1)]  # (H, N2, N2, 2) each
    return torch.stack(rows, dim=-3).reshape(dA.shape[0], 2 * N2, 2 * N2)
