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
from torch.autograd.function import once_differentiable

from ..ops.chunkconv import toeplitz_t
from ..ops.chunkconv_act import ChunkPart
from ..ops.float32_backward import float32_backward
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


class _PowerRows(torch.autograd.Function):
    """V_j = (M^j b)ᵀ (H, n, S), R_j = c M^j (H, Cch, n, S) for j < n, and the last power used, M^m (m the largest
    power of two below n), by doubling over M alone (log2 n levels): with P = M^(2^i),

        V ← [V, V Pᵀ],   R ← [R, R P],   P ← P²

    (V is bᵀ (Mᵀ)^j: the powers of Mᵀ are those of M transposed, so one chain serves both; R keeps row j's channels
    side by side, so each level is one batched matmul over H). The backward walks the levels down with the adjoints
    written out, each a fused multiply-add into the gradient it updates (baddbmm):

        Ṗ += V̇_hiᵀ V_lo + R_loᵀ Ṙ_hi,   V̇_lo += V̇_hi P,   Ṙ_lo += Ṙ_hi Pᵀ,   Q̇ = Ṗ Qᵀ + Qᵀ Ṗ  (P = Q²)

    about 42 kernels for n = 65 where autograd's backward of the same chain ran about 76 (slices, pads and sums). The
    top level forms only the rows that are kept. Once differentiable (no second derivative)."""

    generate_vmap_rule = True  # a group of layers builds its chunk matrices under torch.func.vmap (stack_parts)

    @staticmethod
    def forward(b, c, M, n: int):
        if n < 2:
            raise ValueError(f"n: expected at least 2 rows, got {n}")
        Cch, H, S = c.shape
        V, R, Ps = b[:, None, :], c.transpose(0, 1), [M]  # (H, k, S), (H, k·Cch, S) with k = 1
        while True:
            k = V.shape[1]
            m = min(k, n - k)  # the rows of the upper half that are kept (fewer than k at the top level only)
            V = torch.cat([V, V[:, :m] @ Ps[-1].transpose(-1, -2)], dim=1)
            R = torch.cat([R, R[:, :m * Cch] @ Ps[-1]], dim=1)
            if 2 * k >= n:
                break
            Ps.append(Ps[-1] @ Ps[-1])
        last = Ps[-1] if len(Ps) > 1 else M.clone()
        # the outputs hold every row the backward reads; the squarings between come out for it too
        return V, R.view(H, n, Cch, S).transpose(1, 2), last, *Ps[1:-1]

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.n = inputs[3]
        ctx.mark_non_differentiable(*output[3:])
        ctx.set_materialize_grads(False)  # no zeros formed for the squarings' (never used) gradients
        ctx.save_for_backward(inputs[2], *output)

    @staticmethod
    @float32_backward
    @once_differentiable  # the squarings between are saved as plain outputs: no second derivative through them
    def backward(ctx, dV, dR, dP, *_):
        M, V, R, last, *Ps = ctx.saved_tensors
        n, (H, Cch, _, S) = ctx.n, R.shape
        dV, dR, dP = (torch.zeros_like(t) if d is None else d for d, t in ((dV, V), (dR, R), (dP, last)))
        Ps = [M, *Ps, last] if n > 2 else [M]  # P = M^(2^i) at level i; n = 2 takes one level, M itself
        R = R.transpose(1, 2).reshape(H, n * Cch, S)  # row j's channels side by side (a view of the forward's R)
        dR = dR.transpose(1, 2).reshape(H, n * Cch, S)
        for i in reversed(range(len(Ps))):
            P, k = Ps[i], 2 ** i
            m = min(k, n - k)  # the rows of the upper half that reach the output (fewer than k at the top only)
            dV_hi, dR_hi = dV[:, k:k + m], dR[:, k * Cch:(k + m) * Cch]
            dP = torch.baddbmm(dP, dV_hi.transpose(1, 2), V[:, :m])
            dP = torch.baddbmm(dP, R[:, :m * Cch].transpose(1, 2), dR_hi)
            dV_lo = torch.baddbmm(dV[:, :m], dV_hi, P)
            dR_lo = torch.baddbmm(dR[:, :m * Cch], dR_hi, P.transpose(1, 2))
            if m < k:
                dV_lo, dR_lo = torch.cat([dV_lo, dV[:, m:k]], 1), torch.cat([dR_lo, dR[:, m * Cch:k * Cch]], 1)
            dV, dR = dV_lo, dR_lo
            if i:
                Q = Ps[i - 1].transpose(1, 2)
                dP = torch.baddbmm(dP @ Q, Q, dP)
        return dV[:, 0], dR.view(H, Cch, S).transpose(0, 1), dP, None


def _power_rows(b, c, M, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(V, R, M^m) of _PowerRows (its class docstring)."""
    return _PowerRows.apply(b, c, M, n)[:3]


def dense_chunks(M: torch.Tensor, b: torch.Tensor, c: torch.Tensor, T: int, delay=False) -> ChunkSystem:
    """Chunked form of the real system (M (H, S, S), b (H, S), c (Cch, H, S)); T a power of two; delay: a bool or one
    per output channel.

    The rows M^j b and c M^j come from one doubling chain of M's powers (_PowerRows); its last power is the chunk
    transition M^T."""
    if T & (T - 1):
        raise ValueError(f"T: expected a power of two, got {T}")
    V, R, P = _power_rows(b, c, M, T + 1)  # (H, T+1, S), (H, Cch, T+1, S), M^T
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
