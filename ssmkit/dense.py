"""The dense materialized SSM: the float64 oracle of every kernel and layer, and DPLR's dense recurrence.

A state space model is materialized as full matrices over all N = 2·(N/2) complex states (both members of each
conjugate pair), discretized with matrix functions (matrix exponential, linear solves), and run step by step. Nothing
here uses the structure that the fast paths exploit, which is what makes it a check on them.

Shapes: A (H, N, N), B (H, N), C (Cch, H, N) complex; dt (H,) real; u (Bt, H, L) real.
"""
from __future__ import annotations

import torch


def conj_full(x):
    """[x, x̄] along the last axis: the full vector of a conjugate-pair half."""
    return torch.cat([x, x.conj()], dim=-1)


def dplr_A(Lambda, P, Q=None):
    """A = diag(Λ, Λ̄) − Σ_r P_f,r Q_f,r* with P_f = [P, P̄], Q_f = [Q, Q̄]: Lambda (H, N2), P and Q (R, H, N2) ->
    (H, N, N). Q None: Q = P (S4's tied low-rank term)."""
    Pf = conj_full(P)
    Qf = Pf if Q is None else conj_full(Q)
    return torch.diag_embed(conj_full(Lambda)) - torch.einsum("rhi,rhj->hij", Pf, Qf.conj())


def dplr_dense(Lambda, P, B, C, Q=None):
    """Full system of a DPLR SSM: (A, B_f = [B, B̄], C_f = [C, C̄]); B (H, N2), C (Cch, H, N2); Q as dplr_A."""
    return dplr_A(Lambda, P, Q), conj_full(B), conj_full(C)


def diag_dense(Lambda, B, C):
    """Full system of a diagonal SSM with conjugate pairs: A = diag(Λ, Λ̄), B_f = [B, B̄], C_f = [C, C̄]."""
    return dplr_dense(Lambda, torch.zeros((0,) + Lambda.shape, dtype=Lambda.dtype, device=Lambda.device), B, C)


def dense_discretize(A, B, dt, disc):
    """(Ā, B̄) by matrix functions.

    zoh:      exp([[ΔA, ΔB], [0, 0]]) = [[Ā, B̄], [0, 1]]   (valid for singular A too)
    bilinear: Ā = (I − Δ/2·A)^{-1}(I + Δ/2·A),  B̄ = (I − Δ/2·A)^{-1} Δ B
    """
    H, N, _ = A.shape
    dt = dt.to(A.dtype)[:, None, None]
    if disc == "zoh":
        M = torch.zeros(H, N + 1, N + 1, dtype=A.dtype, device=A.device)
        M[:, :N, :N] = dt * A
        M[:, :N, N] = dt[..., 0] * B
        E = torch.linalg.matrix_exp(M)
        return E[:, :N, :N], E[:, :N, N]
    if disc == "bilinear":
        I = torch.eye(N, dtype=A.dtype, device=A.device)
        left = I - dt / 2 * A
        return torch.linalg.solve(left, I + dt / 2 * A), torch.linalg.solve(left, dt[..., 0] * B)
    raise ValueError(f"disc: expected 'zoh' or 'bilinear', got {disc!r}")


def dense_kernel(dA, dB, C, L):
    """K_k = C Ā^k B̄ for k < L by repeated multiplication: -> (Cch, H, L) complex."""
    x, out = dB, []
    for _ in range(L):
        out.append(torch.einsum("chn,hn->ch", C, x))
        x = torch.einsum("hij,hj->hi", dA, x)
    return torch.stack(out, dim=-1)


def dense_recurrence(dA, dB, C, u, x0=None):
    """x_k = Ā x_{k−1} + B̄ u_k, y_k = C x_k, step by step.  u (Bt, H, L) -> y (Bt, Cch, H, L) complex, x_L."""
    Bt, H, L = u.shape
    x = torch.zeros(Bt, H, dA.shape[-1], dtype=dA.dtype, device=u.device) if x0 is None else x0
    ys = []
    for k in range(L):
        x = torch.einsum("hij,bhj->bhi", dA, x) + dB * u[:, :, k, None]
        ys.append(torch.einsum("chn,bhn->bch", C, x))
    return torch.stack(ys, dim=-1), x


def apply_half(M, x):
    """The top half of M [x; x̄]: a full (H, N, N) matrix acting on conjugate-pair half states x (..., H, K, N2)."""
    N2 = x.shape[-1]
    return (torch.einsum("hij,...hkj->...hki", M[:, :N2, :N2], x)
            + torch.einsum("hij,...hkj->...hki", M[:, :N2, N2:], x.conj()))


def dense_reduce(dA, v):
    """Σ_j Ā^{n−1−j} v_j for half states v (B, H, n, N2), in log2(n) levels: (Ā v_{2i} + v_{2i+1}), Ā <- Ā², ...

    Work O(n·N²) per (batch, channel), depth O(log n). Leading zeros change nothing, so n is padded to 2^k in front.
    """
    n = v.shape[2]
    size = 1 << (n - 1).bit_length()
    if size > n:
        v = torch.cat([v.new_zeros(v.shape[:2] + (size - n, v.shape[-1])), v], dim=2)
    M = dA
    while v.shape[2] > 1:
        v = apply_half(M, v[:, :, 0::2]) + v[:, :, 1::2]
        M = M @ M
    return v[:, :, 0]
