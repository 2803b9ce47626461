"""HiPPO transition matrices, their low-rank corrections, and the NPLR -> DPLR decomposition.

Everything here is stateless float64 math on small N x N matrices, computed once at initialization.

Conventions: ``transition(measure, N)`` returns (A, B) of the continuous SSM x' = A x + B u, with A (N, N) and B (N,);
``rank_correction(measure, N)`` returns P (R, N) such that A + Σ_r P_r P_rᵀ is normal; ``nplr(measure, N)`` returns the
diagonal-plus-low-rank form in the eigenbasis of that normal part, keeping one eigenvalue of each conjugate pair.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MEASURES = ("legs", "legt", "fout")


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"measure: expected one of {MEASURES}, got {measure!r}")


def _check_even(N: int) -> None:
    if not isinstance(N, int) or N < 2 or N % 2:
        raise ValueError(f"N: expected an even integer >= 2 (the state is stored as N/2 conjugate pairs), got {N!r}")


def transition(measure: str, N: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The HiPPO (A, B) of ``measure`` with state size N, float64.

    LegS: A_nk = -√(2n+1)√(2k+1) (n > k), -(n+1) (n = k), 0 (n < k);  B_n = √(2n+1).
    LegT: A_nk = -½√(2n+1)√(2k+1)·(1 if n >= k else (-1)^(n-k));    B_n = ½√(2n+1).
    FouT: the pair (cosine 2k, sine 2k+1) rotates at rate πk, k = 1 .. N/2 − 1 (A_{2k+1,2k} = πk = −A_{2k,2k+1});
          A = rotations − B Bᵀ with B_0 = 1, B_n = √2 for even n > 0 and 0 for odd n. State 1 is never driven (its
          row and column of A are zero, B_1 = 0), as in the official code (state-spaces/s4, src/models/hippo/
          hippo.py, transition 'fout': d = (0, 0, 1, 0, 2, 0, 3, ...) on the sub/superdiagonals times π).
    """
    _check_measure(measure)
    if not isinstance(N, int) or N < 1:
        raise ValueError(f"N: expected a positive integer, got {N!r}")
    n = torch.arange(N, dtype=torch.float64)
    r = torch.sqrt(2 * n + 1)
    if measure == "legs":
        A = -torch.tril(r[:, None] * r[None, :], diagonal=-1) - torch.diag(n + 1)
        return A, r.clone()
    if measure == "legt":
        sign = torch.where(n[:, None] >= n[None, :], 1.0, (-1.0) ** (n[:, None] - n[None, :]))
        return -0.5 * r[:, None] * r[None, :] * sign, 0.5 * r
    B = torch.zeros(N, dtype=torch.float64)
    B[0] = 1.0
    B[2::2] = math.sqrt(2.0)
    A = torch.zeros(N, N, dtype=torch.float64)
    for k in range(1, N // 2):
        A[2 * k + 1, 2 * k] = math.pi * k
        A[2 * k, 2 * k + 1] = -math.pi * k
    return A - B[:, None] * B[None, :], B


def rank_correction(measure: str, N: int) -> torch.Tensor:
    """P (R, N) with A + Σ_r P_r P_rᵀ normal (a multiple of I plus a skew-symmetric matrix).

    LegS: rank 1, P_n = √(n + ½).  LegT: rank 2, P⁽⁰⁾_n = √((2n+1)/2) for odd n, P⁽¹⁾_n the same for even n.
    FouT: rank 1, P = B.
    """
    _check_measure(measure)
    n = torch.arange(N, dtype=torch.float64)
    if measure == "legs":
        return torch.sqrt(n + 0.5)[None]
    if measure == "legt":
        p = torch.sqrt((2 * n + 1) / 2)
        odd = (n % 2 == 1).to(torch.float64)
        return torch.stack([p * odd, p * (1 - odd)])
    return transition("fout", N)[1][None]


@dataclass
class NPLR:
    """A = V_f (diag(Λ_f) - P̃_f P̃_f*) V_f*, with V_f = [V, V̄] unitary and Λ_f = [Λ, Λ̄].

    Lambda (N/2,) complex, P (R, N/2), B (N/2,) and V (N, N/2): one member of each conjugate pair. The transformed
    B̃ = V* B and P̃ = V* P; for a real input the second half of the state is the conjugate of the first.
    """

    Lambda: torch.Tensor
    P: torch.Tensor
    B: torch.Tensor
    V: torch.Tensor


BASES = ("first_positive", "official")


def _conjugate_pair_basis(S_skew: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decompose a real skew-symmetric matrix as S = V_f diag(i μ_f) V_f*, keeping μ >= 0.

    Returns (mu (N/2,), V (N, N/2)) with [V, V̄] unitary. The eigenvectors of -iS (Hermitian) for +μ and -μ are
    conjugates of each other, so the half with μ > 0 determines the rest. Zero eigenvalues (FouT has a pair) have a
    real null space: there we pair real basis vectors u1, u2 into v = (u1 + i u2)/√2, whose conjugate spans the rest.
    An odd N has one zero eigenvalue that pairs with nothing: its real mode is dropped, leaving (N−1)/2 pairs whose
    [V, V̄] spans all but that mode (nplr).

    Phase: each eigenvector is scaled so that its first component is real and positive (when it is not negligible),
    the convention of LAPACK's Hermitian solver up to sign, which the official S4 code inherits. The phase does not
    change the system (a diagonal unitary change of basis) but it does change which entries the B̃ clip of ``nplr``
    cuts, so it is fixed here.
    """
    N = S_skew.shape[0]
    mu, W = torch.linalg.eigh(-1j * S_skew.to(torch.complex128))
    tol = 1e-9 * max(1.0, mu.abs().max().item())
    zero = mu.abs() <= tol
    n_zero = int(zero.sum())
    if n_zero % 2 != N % 2 or (N % 2 and n_zero != 1):
        raise ValueError(f"a real skew-symmetric matrix of size {N} has {n_zero} zero eigenvalues: expected an even "
                         f"number for an even size, one (the real mode, dropped) for an odd size")
    pos = mu > tol
    mus, vecs = [mu[pos]], [W[:, pos]]
    if n_zero and not N % 2:
        null = W[:, zero]
        U, _, _ = torch.linalg.svd(torch.cat([null.real, null.imag], dim=1))
        real_basis = U[:, :n_zero]
        vecs.append((real_basis[:, 0::2] + 1j * real_basis[:, 1::2]) / math.sqrt(2.0))
        mus.append(torch.zeros(n_zero // 2, dtype=mu.dtype))
    mu, V = torch.cat(mus), torch.cat(vecs, dim=1)
    first = V[0]
    phase = torch.where(first.abs() > 1e-6, first.abs() / first, torch.ones_like(first))
    order = torch.argsort(mu)
    return mu[order], (V * phase)[:, order]


def _official_phases(measure: str, N: int, V: torch.Tensor) -> torch.Tensor:
    """The unit factors (N2,) that turn the eigenvectors V (N, N2) of _conjugate_pair_basis into those the official
    nplr keeps (raminmh/liquid-s4 src/models/hippo/hippo.py, as its kernel calls it through dplr.combination): the
    Hermitian solver's eigenvectors of −i(A + PPᵀ) for −μ, conjugated, with A + PPᵀ formed in float32 (nplr's default
    dtype there) and diagonalized in float64. Their phases are the solver's: its first components come out real, and
    each sign is whatever LAPACK gives for those float32-rounded entries (a change of the input at rounding level
    flips some), so that arithmetic is repeated here; the values of V stay the float64 ones."""
    A, _ = transition(measure, N)
    P = rank_correction(measure, N).float()
    S = (A.float() + torch.sum(P.unsqueeze(-2) * P.unsqueeze(-1), dim=-3)).double()
    mu, W = torch.linalg.eigh(S * -1j)
    neg = mu < -1e-9 * max(1.0, mu.abs().max().item())
    ref = W[:, neg].conj()[:, torch.argsort(-mu[neg])]  # for +|μ|, ascending as V
    overlap = (V.conj() * ref).sum(0) if ref.shape == V.shape else None
    if overlap is None or (overlap.abs() < 0.5).any():
        raise ValueError(f"basis='official': the official eigenvectors of HiPPO-{measure} at N = {N} do not pair with "
                         f"ours one to one (zero eigenvalues?); use basis='first_positive'")
    phase = overlap / overlap.abs()
    # both first components are real (the solver's and first_positive's): the factors are signs, up to rounding
    return torch.where(phase.imag.abs() < 1e-6, torch.sign(phase.real).to(phase.dtype), phase)


def nplr(measure: str, N: int, B_clip: float | None = None, basis: str = "first_positive") -> NPLR:
    """Decompose the HiPPO matrix of ``measure`` as normal plus low rank, in the eigenbasis of the normal part.

    S = A + P Pᵀ = σ I + S_skew with σ the mean of diag(S); S_skew is diagonalized by a Hermitian eigensolver in
    float64 (stable, unlike a general eigensolver on A). Λ = σ + i μ for the eigenvalues with Im >= 0.
    An odd N keeps its (N−1)/2 conjugate pairs and drops the real mode (the zero eigenvalue of S_skew), as the
    official S4 nplr does (state-spaces/s4 and raminmh/liquid-s4 src/models/hippo/hippo.py keep w[:N//2]; the
    Liquid-S4 LRA configs' d_state 7): B̃ and P̃ are the projections onto the kept modes, so A is then only
    approximately V (Λ − P̃ P̃*) V* (reconstruct).
    basis: the phase of each eigenvector, which changes no kernel (a diagonal unitary change of basis) but does
    change B̃ and P̃ entry by entry: first_positive (each first component real and positive, _conjugate_pair_basis)
    or official (the official code's, _official_phases: each mode's sign as its solver gives it), for the official
    Liquid-S4 form, whose frozen Σ_n B̄_n reads those signs (layers/liquid.py).
    B_clip: clip Im B̃ to [−B_clip, B_clip] (None: B̃ = V* B exactly). The official S4 code clips at 2 for its S4
    and S4D-LegS inits (state-spaces/s4, src/models/hippo/hippo.py, nplr(..., B_clip=2.0)); with the phase of
    _conjugate_pair_basis the clipped entries are the official ones, up to conjugation and sign.
    """
    _check_measure(measure)
    if basis not in BASES:
        raise ValueError(f"basis: expected one of {BASES}, got {basis!r}")
    if not isinstance(N, int) or N < 2:
        raise ValueError(f"N: expected an integer >= 2 (the state is stored as N//2 conjugate pairs), got {N!r}")
    if B_clip is not None and not B_clip > 0:
        raise ValueError(f"B_clip: expected None or a positive bound, got {B_clip}")
    A, B = transition(measure, N)
    P = rank_correction(measure, N)
    S = A + P.T @ P
    sigma = torch.diagonal(S).mean()
    S_skew = S - sigma * torch.eye(N, dtype=torch.float64)
    if not torch.allclose(S_skew, -S_skew.T, atol=1e-9):
        raise AssertionError(f"HiPPO-{measure}: A + PPᵀ is not (multiple of I) + skew-symmetric")  # a bug, not input
    mu, V = _conjugate_pair_basis(S_skew)
    if basis == "official":
        V = V * _official_phases(measure, N, V)
    B_tilde = V.conj().T @ B.to(torch.complex128)
    if B_clip is not None:
        B_tilde = torch.complex(B_tilde.real, B_tilde.imag.clamp(-B_clip, B_clip))
    return NPLR(Lambda=sigma + 1j * mu, P=P.to(torch.complex128) @ V.conj(), B=B_tilde, V=V)


def reconstruct(dplr: NPLR) -> torch.Tensor:
    """The dense real A = V_f (diag(Λ_f) - P̃_f P̃_f*) V_f* of an NPLR decomposition (for checks)."""
    Vf = torch.cat([dplr.V, dplr.V.conj()], dim=1)
    Lf = torch.cat([dplr.Lambda, dplr.Lambda.conj()])
    Pf = torch.cat([dplr.P, dplr.P.conj()], dim=1)  # (R, N)
    A = Vf @ (torch.diag(Lf) - Pf.T @ Pf.conj()) @ Vf.conj().T
    return A


def diagonal_init(init: str, N: int) -> torch.Tensor:
    """Λ (N/2,) complex128 of a diagonal SSM (S4D), one member of each conjugate pair.

    lin:  λ_n = -½ + iπn                      inv: λ_n = -½ + i(N/π)(N/(2n+1) - 1)
    legs: Λ of the DPLR form of HiPPO-LegS    real: λ_n = -(n+1)
    random: λ_n = -½ + i·π·(N/2)·U(0, 1)     (draws from torch's global generator)
    """
    _check_even(N)
    n = torch.arange(N // 2, dtype=torch.float64)
    half = torch.full_like(n, -0.5)
    if init == "lin":
        return torch.complex(half, math.pi * n)
    if init == "inv":
        return torch.complex(half, (N / math.pi) * (N / (2 * n + 1) - 1))
    if init == "legs":
        return nplr("legs", N).Lambda
    if init == "real":
        return torch.complex(-(n + 1), torch.zeros_like(n))
    if init == "random":
        return torch.complex(half, math.pi * (N / 2) * torch.rand(N // 2, dtype=torch.float64))
    raise ValueError(f"init: expected one of ('lin', 'inv', 'legs', 'real', 'random'), got {init!r}")


def hippo_n_blocks(P: int, blocks: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """S5's init: Λ (P/2,) and V (P, P/2) of the HiPPO-N matrix (the normal part A + PPᵀ of LegS) in ``blocks``
    diagonal blocks, each the size-P/blocks HiPPO-N; V is block-diagonal, and [V, V̄] is unitary."""
    if not isinstance(blocks, int) or blocks < 1 or P % (2 * blocks):
        raise ValueError(f"blocks: expected a positive integer with d_state={P} divisible by 2·blocks, got {blocks!r}")
    part = nplr("legs", P // blocks)
    n, n2 = P // blocks, P // (2 * blocks)
    V = torch.zeros(P, P // 2, dtype=torch.complex128)
    for j in range(blocks):
        V[j * n:(j + 1) * n, j * n2:(j + 1) * n2] = part.V
    return part.Lambda.repeat(blocks), V
