"""S4: the diagonal-plus-low-rank (DPLR) SSM kernel (Gu, Goel, Ré 2022; S4 v2 "How to Train Your HiPPO").

State matrix A = diag(Λ, Λ̄) − P_f Q_f* (rank R, P_f = [P, P̄], Q_f = [Q, Q̄]; S4 ties Q = P, the older S4 that
ViS4mer ships trains Q apart), bilinear discretization, B_f = [B, B̄], C_f = [C, C̄].
The kernel K_k = C_f Ā^k B̄_f (k < L) is computed from its truncated generating function at the roots of unity:

    K̂(ω) = Σ_{k<L} K_k ω^k = C̃ (I − Ā ω)^{-1} B̄ = 2/(1+ω) · [k00 − k01 (I + k11)^{-1} k10],     C̃ = C_f (I − Ā^L)
    k_ab(ω) = Σ_n a_n b_n / (g(ω) − λ_n),   g(ω) = (2/Δ)(1−ω)/(1+ω),   (a, b) ∈ {C̃, Q*} × {B, P}

(Woodbury on (gI − A)^{-1}; each k_ab is a Cauchy sum over conjugate pairs), then K = IFFT(K̂). With z = Δg the sums
are Δ·cauchy(a·b, z, Δλ) with the dt-free points z_j = 2i·tan(πj/L) (no λ may equal 0, which is z_0). At ω = −1
(even L), g = ∞ and the bracket is 0 while 2/(1+ω) is infinite; the limit is K̂(−1) = Δ·Re Σ_n C̃_n B_n, used there.

C̃ and lengths: the layer's parameter ``C`` is C̃ for the kernel length ``l_kernel`` (= l_max), as S4 trains it; at
init it is the C̃ of a plain C ~ CN(0, 1), as the official code converts its random C at the first forward
(length_correction=False: the draw is C̃ itself, as older official S4 versions with length_correction off, e.g.
ViS4mer's). A
kernel of length L <= l_kernel is the first L values of the length-l_kernel kernel. Any other length or rate goes
through the plain C = C̃_f (I − Ā^{l_kernel})^{-1} and C̃' = C_f (I − Ā'^{L}) (dense N×N solves and powers per channel;
no parameter is rewritten). With l_max=None, ``C`` is the plain C (C̃ at infinite length) and C̃ is formed per call.
"""
from __future__ import annotations

import functools
import math

import torch

from .. import hippo
from ..dense import apply_half, conj_full, dense_reduce
from ..ops import cauchy
from ..ops.dispatch import host_reads, implementation, recording, register
from .base import SSMKernel, block_length, blocked_end_state, check_bandlimit
from .chunked import ChunkSystem, dense_chunks, interleave, real_form
from .diag import real_part, real_part_inverse
from .step_form import LowRankStep, real_matrix


def _unit_circle_points(L: int, dtype: torch.dtype, device) -> torch.Tensor:
    """z_j = 2(1 − ω_j)/(1 + ω_j) = 2i·tan(πj/L) at ω_j = e^{−2πij/L}, j = 0 .. ⌈L/2⌉ − 1 (ω ≠ −1)."""
    j = torch.arange((L + 1) // 2, dtype=torch.float64, device=device)  # on the device: no copy in a graph capture
    return (2j * torch.tan(math.pi * j / L)).to(dtype)


def _small_inverse(M: torch.Tensor) -> torch.Tensor:
    """Inverse of (..., R, R) for the low rank R: closed forms for R <= 2 (no batched LU launch)."""
    R = M.shape[-1]
    if R == 1:
        return 1 / M
    if R == 2:
        a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
        adj = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2)
        return adj / (a * d - b * c)[..., None, None]
    return torch.linalg.inv(M)


def _cauchy_together(vs: list[torch.Tensor], z: torch.Tensor, w: torch.Tensor) -> list[torch.Tensor]:
    """cauchy(v, z, w) for each v (..., H, N2) of vs, which share w (H, N2): in one call, so that the reciprocals
    1/(z − w) are formed once for all four sums of the Woodbury form (on a CPU, ops.cauchy's torch version)."""
    flat = [v.expand(*v.shape[:-2], *w.shape).reshape(-1, *w.shape) for v in vs]
    sums = cauchy(torch.cat(flat), z, w).split([f.shape[0] for f in flat])
    return [k.reshape(*v.shape[:-2], *w.shape[:-1], z.shape[0]) for v, k in zip(vs, sums)]


def dplr_generating_kernel(Lambda, P, B, C_tilde, dt, L: int, Q=None) -> torch.Tensor:
    """K (..., Cch, H, L) from C̃ via the generating function (module docstring).

    Lambda (H, N2), P (R, H, N2), B (..., H, N2) (leading dims: e.g. a batch of states), C_tilde (Cch, H, N2)
    complex; dt (H,) real; Q (R, H, N2) or None (Q = P).
    """
    z = _unit_circle_points(L, Lambda.dtype, Lambda.device)
    w = Lambda * dt[:, None]
    # a check on values, on a CPU only (BIDMC's model failed to capture on an H100); the S4 layer's floor on Re λ rules
    # a zero out on a GPU
    if host_reads(w) and bool((w == 0).any()):
        raise ValueError("Lambda: an eigenvalue is exactly 0 (the normal part of HiPPO-FouT has a zero pair); it sits "
                         "on the sample point z = 0 of the Cauchy sums. Shift it into the left half-plane (the S4 "
                         "layer floors Re λ at -1e-4)")
    dtc = dt[:, None].to(Lambda.dtype)
    Bc = B[..., None, :, :]  # (..., 1, H, N2): broadcasts against the Cch axis
    Qc = (P if Q is None else Q).conj()
    # (..., Cch, H, Lz), (Cch, R, H, Lz), (..., R, H, Lz), (R, R, H, Lz)
    k00, k01, k10, k11 = (dtc * k for k in _cauchy_together(
        [C_tilde * Bc, C_tilde[:, None] * P, Qc * Bc, Qc[:, None] * P], z, w))
    R = P.shape[0]
    M = torch.eye(R, dtype=k11.dtype, device=k11.device) + k11.permute(2, 3, 0, 1)  # (H, Lz, R, R)
    X = (_small_inverse(M) @ k10.movedim(-3, -1)[..., None])[..., 0].movedim(-1, -3)  # (..., R, H, Lz)
    corrected = k00 - (k01 * X[..., None, :, :, :]).sum(-3)
    # on the device: a host tensor's copy would wait for it (and a CUDA graph's capture refuses one)
    omega = torch.exp(-2j * math.pi * torch.arange(z.shape[0], dtype=torch.float64, device=z.device) / L).to(z)
    K_hat = 2 / (1 + omega) * corrected
    if L % 2 == 0:
        nyquist = dt * (C_tilde * Bc).sum(-1).real
        K_hat = torch.cat([K_hat, nyquist[..., None].to(K_hat.dtype)], dim=-1)
    return torch.fft.irfft(K_hat, n=L)


def bilinear_resolvent(Lambda, P, dt, Q=None):
    """(I − Δ/2·A)^{-1} (H, N, N) of A = diag(Λ_f) − P_f Q_f* by Woodbury, with no N × N solve:

        (D + Δ/2·P_f Q_f*)^{-1} = D^{-1} − Δ/2·D^{-1} P_f (I_R + Δ/2·Q_f* D^{-1} P_f)^{-1} Q_f* D^{-1},
        D = diag(1 − Δ/2·Λ_f).    (Q None: Q = P.)
    """
    half, d, cap = _woodbury_cap(Lambda, P, dt, Q)
    Pf, Qf, d = conj_full(P), conj_full(P if Q is None else Q), conj_full(d)  # (R, H, N), D^{-1} (H, N)
    left, right = d * Pf, Qf.conj() * d  # D^{-1} P_f and Q_f* D^{-1}
    return torch.diag_embed(d) - half[..., None] * torch.einsum("rhi,hrs,shj->hij", left, cap.to(d.dtype), right)


def _woodbury_cap(Lambda, P, dt, Q=None):
    """(Δ/2 (H, 1), d = 1/(1 − Δ/2·Λ) (H, N2), cap = (I_R + Δ/2·Q_f* D^{-1} P_f)^{-1} (H, R, R)) of bilinear_resolvent.
    cap is real: in Q_f* D^{-1} P_f each mode meets its conjugate, so the sum over the full state is 2Re of the sum
    over the half."""
    half = (dt / 2).to(Lambda.dtype)[:, None]
    d = 1 / (1 - half * Lambda)
    gram = 2 * torch.einsum("rhn,hn,shn->hrs", (P if Q is None else Q).conj(), d, P).real
    eye = torch.eye(P.shape[0], dtype=gram.dtype, device=gram.device)
    return half, d, _small_inverse(eye + half.real[..., None] * gram)


def resolvent_pieces(Lambda, P, dt, Q=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(d, E, V) with which the resolvent acts on half states in O(N·R) (Woodbury's pieces, _woodbury_cap):

        top((I − Δ/2·A)^{-1} [w; w̄]) = d ⊙ w − Σ_s E_s·Re(V_s·w),    d = 1/(1 − Δ/2·Λ),
        E_s = Δ·Σ_r cap_rs d ⊙ P_r,    V_s = Q̄_s ⊙ d        (d (H, N2); E, V (R, H, N2); Q None: Q = P),

    so that the bilinear Ā = 2(I − Δ/2·A)^{-1} − I maps x to a ⊙ x − Σ_s E_s·2Re(V_s·x) with a = 2d − 1."""
    half, d, cap = _woodbury_cap(Lambda, P, dt, Q)
    E = torch.einsum("hrs,rhn->shn", (2 * half.real[..., None] * cap).to(d.dtype), d * P)
    return d, E, (P if Q is None else Q).conj() * d


def resolvent_times(d, E, V, w):
    """top((I − Δ/2·A)^{-1} [w; w̄]) = d ⊙ w − Σ_s E_s·Re(V_s·w) for half states w (H, N2) (resolvent_pieces)."""
    return d * w - torch.einsum("rhn,rh->hn", E, torch.einsum("rhn,hn->rh", V, w).real.to(E.dtype))


@register("dplr_system", "torch")
def dplr_system_torch(Lambda, P, B, dt, Q=None):
    """dplr_system by the resolvent's pieces (resolvent_pieces, step_form.real_matrix), in complex128."""
    Lambda_w, P_w, B_w, dt_w, Q_w = widen(Lambda, P, B, dt, P if Q is None else Q)
    d, E, V = resolvent_pieces(Lambda_w, P_w, dt_w, Q_w)
    M = real_matrix(2 * d - 1, E, V)
    return M, M.to(dt.dtype), resolvent_times(d, E, V, dt_w[:, None] * B_w).to(Lambda.dtype)


def dplr_system(Lambda, P, B, dt, Q=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The bilinear system of A = diag(Λ_f) − P_f Q_f* as the recurrence needs it, formed in float64 and rounded once:

        (M, M rounded to dt's dtype, B̄ = (I − Δ/2·A)^{-1} Δ B_f in Lambda's dtype)

    with M (H, N, N) float64 the real form of Ā = 2(I − Δ/2·A)^{-1} − I on interleaved half states (the plain C's solve
    reads it in float64). Lambda, B (H, N2), P and Q (R, H, N2; Q None: Q = P) complex, dt (H,). On a GPU with Triton
    (rank 1, Q = P, complex64: S4's), one program per channel forms all three (ops/triton_dplr_system.py)."""
    if recording():
        return dplr_system_torch(Lambda, P, B, dt, Q)
    return implementation("dplr_system", Lambda.device)(Lambda, P, B, dt, Q)


def dplr_step_form(Lambda, P, dt, dB, C, Q=None) -> LowRankStep:
    """The structured step (kernels/step_form.py) of the bilinear DPLR system on half states: the top half of
    Ā [x; x̄] is a ⊙ x − Σ_s E_s·2Re(V_s·x) (resolvent_pieces), and b = B̄, c = 2C (y = 2Re(C x')). Lambda (H, N2),
    P and Q (R, H, N2; Q None: Q = P), dt (H,), dB = B̄ (H, N2), C (H, N2) the plain C of one output channel; computed
    in the inputs' precision (give complex128 and round the result once)."""
    d, E, V = resolvent_pieces(Lambda, P, dt, Q)
    return LowRankStep(2 * d - 1, dB, 2 * C, E, V)


def dplr_transition(Lambda, P, dt, Q=None):
    """Dense bilinear Ā = (I − Δ/2·A)^{-1}(I + Δ/2·A) = 2(I − Δ/2·A)^{-1} − I (H, N, N) of the full DPLR system."""
    R = bilinear_resolvent(Lambda, P, dt, Q)
    return 2 * R - torch.eye(R.shape[-1], dtype=R.dtype, device=R.device)


def widen(*tensors) -> list[torch.Tensor]:
    """complex128 / float64 copies (differentiable): the precision C̃ = C_f (I − Ā^L) needs, see ctilde_from_c."""
    return [t.to(torch.complex128 if t.is_complex() else torch.float64) for t in tensors]


def _output_row(C: torch.Tensor) -> torch.Tensor:
    """The real row c of the output functional C_f [x; x̄] = 2 Re(C x) = c · z on interleaved half states z (up to the
    factor 2, which the relations between C and C̃ do not see): interleave(C̄)."""
    return interleave(C.conj())


def _output_C(c: torch.Tensor) -> torch.Tensor:
    """_output_row's inverse: the complex half C of a real row c (..., N) = [Re C_0, −Im C_0, Re C_1, ...]."""
    return torch.complex(c[..., 0::2], -c[..., 1::2])


def ctilde_from_c(C, dA, L: int):
    """C̃ = C_f (I − Ā^L), returned as its first half (the second is its conjugate). C (Cch, H, N2), dA (H, N, N).

    On the real form M of the half-state map (real_form: Ā^L acts on [x; x̄] as M^L on z, and C_f as the row c):
    c̃ = c (I − M^L), real N×N products with a quarter of the complex N×N's multiply-adds.

    Give it float64 (complex128) inputs. At large Δ the bilinear Ā has modes with |Ā_n| ≈ 1, so I − Ā^L cancels, and
    K̂(ω) = C̃ (I − Āω)^{-1} B̄ divides that small difference by 1 − Ā_n ω, which is as small near ω ≈ Ā_n^{-1}:
    float32 rounding of Ā (and its L-th power, whose phase error grows as L times Ā's) is amplified there, to a
    relative kernel error of 8e-3 at Δ = 100 and 8e-2 at Δ = 1000 (N = 64, L = 256). Computed in float64 and rounded
    once, C̃ gives the float32 kernel its float32 accuracy at every Δ."""
    c = _output_row(C)
    return _output_C(c - torch.einsum("chi,hij->chj", c, torch.linalg.matrix_power(real_form(dA), L)))


def c_from_ctilde(C_tilde, dA, L: int):
    """C = C̃_f (I − Ā^L)^{-1} (first half): on the real form (ctilde_from_c), solves (I − M^L)ᵀ cᵀ = c̃ᵀ."""
    return plain_c(C_tilde, real_form(dA), L)


def plain_c(C_tilde, M, L: int):
    """c_from_ctilde given the real form M (H, N, N) of Ā."""
    A = (torch.eye(M.shape[-1], dtype=M.dtype, device=M.device) - torch.linalg.matrix_power(M, L)).transpose(-1, -2)
    # solve_ex: no host synchronization for the error check (I − M^L is invertible for a stable Ā)
    return _output_C(torch.linalg.solve_ex(A, _output_row(C_tilde)[..., None])[0][..., 0])


def dplr_kernel(Lambda, P, B, C, dt, L: int, disc: str = "bilinear", Q=None) -> torch.Tensor:
    """K_k = C_f Ā^k B̄_f, k < L, of the full real DPLR system (C is the plain C, not C̃): (Cch, H, L); Q None: Q = P.
    """
    if disc != "bilinear":
        raise ValueError(f"disc: the DPLR kernel is computed for the bilinear discretization only, got {disc!r}")
    dA = dplr_transition(*widen(Lambda, P, dt, P if Q is None else Q))
    C_tilde = ctilde_from_c(*widen(C, dA), L).to(C.dtype)
    return dplr_generating_kernel(Lambda, P, B, C_tilde, dt, L, Q)


def _hippo_dplr(init: str, d_state: int, copies: int, B_clip: float | None, basis: str = "first_positive"):
    """Λ (S, N2), P (R, S, N2), B (S, N2) for S = ``copies`` SSMs of ``init``: a measure or a mixture 'legs+fout'
    (copies round-robin); Im B̃ clipped to [−B_clip, B_clip]; the eigenvectors' phases by ``basis`` (hippo.nplr)."""
    measures = init.split("+")
    for m in measures:
        if m not in hippo.MEASURES:
            raise ValueError(f"init: expected measures from {hippo.MEASURES} joined by '+', got {init!r}")
    parts = [hippo.nplr(m, d_state, B_clip, basis) for m in measures]
    R = max(p.P.shape[0] for p in parts)
    pick = [parts[h % len(parts)] for h in range(copies)]
    Lambda = torch.stack([p.Lambda for p in pick])
    P = torch.stack([torch.cat([p.P, p.P.new_zeros(R - p.P.shape[0], p.P.shape[1])]) for p in pick], dim=1)
    B = torch.stack([p.B for p in pick])
    return Lambda, P, B


class DPLRKernel(SSMKernel):
    """The S4 kernel. init: legs (default) | legt (rank 2) | fout | a mixture such as 'legs+fout'.

    l_max: the length C̃ is trained for (None: any length, C is the plain C). real_transform as in S4D.
    B_clip: Im B̃ clipped to [−B_clip, B_clip] at init (2, the official S4 init; None: the exact HiPPO B̃).
    n_ssm: independent (Λ, P, B) copies behind the H channels (base module docstring). share_lambda: one Λ for every
    channel while P and B keep their n_ssm copies; tie_pq=False: A = Λ − P Q* with Q a parameter of its own, per
    channel, starting equal to P and trained in the ordinary group (with C). The S4 that ViS4mer ships does both (its
    s4.py SSKernelNPLR: Λ registered once, B and P repeated over H, Q stacked into C). C_lr: C's own learning rate
    (None: the model's), with the ordinary weight decay.
    bandlimit: C zeroed for the modes at or above bandlimit/2 cycles per sample (base.bandlimit_mask); with l_max set
    the mask applies to the trained C̃, as the official code masks its C̃ (the modes are those of Λ, the diagonal
    part). dt_transform (exp | softplus) and dt_lr: Δ's parameter and learning rate (base.SSMKernel.init_dt).
    An odd d_state keeps d_state // 2 pairs of the size-d_state HiPPO matrix and drops its real mode (hippo.nplr),
    as the official code does with the Liquid-S4 LRA configs' d_state 7. basis: the phase of each mode's eigenvector,
    first_positive or official (hippo.nplr): the same kernels, B̃ and P̃ with other signs.
    """

    odd_d_state = True

    def __init__(self, d_model: int, d_state: int = 64, channels: int = 1, init: str = "legs",
                 l_max: int | None = None, real_transform: str = "exp", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 ssm_lr: float | None = 1e-3, B_clip: float | None = 2.0, n_ssm: int | None = None,
                 bandlimit: float | None = None, dt_transform: str = "exp", dt_lr: float | None | str = "ssm",
                 length_correction: bool = True, share_lambda: bool = False, tie_pq: bool = True,
                 C_lr: float | None = None, basis: str = "first_positive"):
        super().__init__(d_model, d_state, channels, ssm_lr, n_ssm)
        for name, value in (("share_lambda", share_lambda), ("tie_pq", tie_pq)):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: expected true or false, got {value!r}")
        self.init_dt(dt_min, dt_max, transform=dt_transform, lr=dt_lr)
        self.bandlimit = check_bandlimit(bandlimit)
        if l_max is not None and (not isinstance(l_max, int) or l_max < 1):
            raise ValueError(f"l_max: expected None or a positive integer, got {l_max!r}")
        self.l_kernel = l_max or 0
        self.real_transform = real_transform
        Lambda, P, B = _hippo_dplr(init, d_state, self.n_ssm, B_clip, basis)
        if share_lambda:
            if len(set(init.split("+"))) > 1:
                raise ValueError(f"share_lambda: one Λ for every channel needs one measure in init, got {init!r}")
            Lambda = Lambda[:1]
        self.register_ssm("A_real", real_part_inverse(Lambda.real, real_transform))
        self.register_ssm("A_imag", Lambda.imag.clone())
        self.register_ssm("P", P)
        self.register_ssm("B", B)
        self.register_output("C", torch.randn(channels, d_model, self.N2, dtype=torch.complex128), lr=C_lr)
        if not tie_pq:
            self.register_output("Q", self.over_channels(P).clone())
        if self.l_kernel and length_correction:  # as the official code: the plain C drawn, the parameter its C̃
            self.correct_length()

    def correct_length(self) -> None:
        """Replace the parameter C, a plain C, by its C̃ = C (I − Āᴸ) for L = l_max (in complex128), as the official
        code does with its draw at the first forward. __init__ calls it (length_correction); a layer that must read
        the drawn C first (the official Liquid-S4 form) builds with length_correction=False and calls it after."""
        with torch.no_grad():
            C = ctilde_from_c(widen(self.cplx("C"))[0], self.transition(wide=True), self.l_kernel)
            self.C.copy_(torch.view_as_real(C))

    def Lambda(self) -> torch.Tensor:
        return torch.complex(real_part(self.real("A_real"), self.real_transform), self.real("A_imag"))

    def low_rank(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, Q) over the channels, (R, H, N2) each: A = Λ − P Q* (Q is P unless tie_pq=False)."""
        P = self.cplx("P")
        return P, (self.cplx("Q") if hasattr(self, "Q") else P)

    def transition(self, rate: float = 1.0, wide: bool = False) -> torch.Tensor:
        """Dense bilinear Ā (H, N, N); wide: in complex128 whatever the module's dtype (for C̃, see ctilde_from_c)."""
        Lambda, (P, Q), dt = self.Lambda(), self.low_rank(), self.dt(rate)
        return dplr_transition(*(widen(Lambda, P, dt, Q) if wide else (Lambda, P, dt, Q)))

    def _plain_C_wide(self, M_wide: torch.Tensor | None = None) -> torch.Tensor:
        """The plain C in complex128; M_wide: the real form of Ā at the base Δ in float64, if already formed."""
        C = widen(self.output_C())[0]
        if not self.l_kernel:
            return C
        return plain_c(C, real_form(self.transition(wide=True)) if M_wide is None else M_wide, self.l_kernel)

    def plain_C(self) -> torch.Tensor:
        """The output matrix C (Cch, H, N2) of the recurrence (the parameter is C̃ when l_max is set)."""
        return self._plain_C_wide().to(self.cplx("C").dtype)

    def c_tilde(self, L: int, rate: float = 1.0) -> tuple[torch.Tensor, int]:
        """(C̃, L_eval): the C̃ for generating-function length L_eval >= L whose first L values are the kernel."""
        C = self.output_C()
        if self.l_kernel and rate == 1.0 and L <= self.l_kernel:
            return C, self.l_kernel
        return ctilde_from_c(self._plain_C_wide(), self.transition(rate, wide=True), L).to(C.dtype), L

    def forward(self, L: int, rate: float = 1.0) -> torch.Tensor:
        C_tilde, L_eval = self.c_tilde(L, rate)
        P, Q = self.low_rank()
        return dplr_generating_kernel(self.Lambda(), P, self.cplx("B"), C_tilde, self.dt(rate), L_eval, Q)[..., :L]

    def apply_A(self, x: torch.Tensor) -> torch.Tensor:
        """top(A [x; x̄]) = Λ x − Σ_r P_r · 2Re(Q_r* x) for half states x (..., H, N2): O(N·R), no dense A."""
        P, Q = self.low_rank()
        Qx = 2 * torch.einsum("rhn,...hn->r...h", Q.conj(), x).real.to(P.dtype)
        return self.Lambda() * x - torch.einsum("rhn,r...h->...hn", P, Qx)

    def discrete_B(self, rate: float = 1.0) -> torch.Tensor:
        """B̄ = (I − Δ/2·A)^{-1} Δ B_f, its top half (H, N2), by the resolvent's pieces (resolvent_pieces, O(N·R)), in
        the module's precision (the recurrence's B̄ comes from dplr_system, formed in float64)."""
        dt, (P, Q) = self.dt(rate), self.low_rank()
        return resolvent_times(*resolvent_pieces(self.Lambda(), P, dt, Q), dt[:, None] * self.cplx("B"))

    def kernel_of_discrete_B(self, dB: torch.Tensor, L: int, rate: float = 1.0) -> torch.Tensor:
        """K_k = C_f Ā^k b̄_f for a discrete input vector b̄ (..., H, N2): the generating function with the continuous
        B = (I − Δ/2·A) b̄ / Δ, since (I − Āz)^{-1} b̄ = 2/(1+z)·(gI − A)^{-1}(I − Δ/2·A) b̄/Δ."""
        dt = self.dt(rate)[:, None]
        B = (dB - dt / 2 * self.apply_A(dB)) / dt
        C_tilde, L_eval = self.c_tilde(L, rate)
        P, Q = self.low_rank()
        return dplr_generating_kernel(self.Lambda(), P, B, C_tilde, self.dt(rate), L_eval, Q)[..., :L]

    def recurrence(self, rate: float = 1.0) -> "DPLRRecurrence":
        """The discrete system at Δ·rate, with Ā as its real form M (dplr_system: formed in float64 from O(N·R)
        numbers, no complex N × N matrix, and rounded once). At rate 1 with a trained C̃, the plain C is solved from
        the float64 M."""
        P, Q = self.low_rank()
        M_wide, M, dB = dplr_system(self.Lambda(), P, self.cplx("B"), self.dt(rate), None if Q is P else Q)
        wide = bool(self.l_kernel) and rate == 1.0
        return DPLRRecurrence(self, rate, M, dB, self._plain_C_wide(M_wide if wide else None), wide)


class DPLRRecurrence:
    """The discrete DPLR system on half states: x' = top(Ā [x; x̄]) + B̄ u, y = 2·Re(C x) (dense Ā, N×N per channel).

    M: Ā's real form (real_form; the chunked form and the real step read it); dA, the complex Ā, is formed where a view
    asks for it. C_wide: the plain C in complex128, for the C̃ of a chunk (ctilde_from_c); C: in the dtype of dB;
    wide: rate 1 with a trained C̃, the plain C solved from Ā in float64 (then dA too is formed in complex128)."""

    def __init__(self, kernel: DPLRKernel, rate: float, M, dB, C_wide, wide: bool = False):
        self.kernel, self.rate, self.M, self.dB, self.C_wide, self.wide = kernel, rate, M, dB, C_wide, wide
        self.C = C_wide.to(dB.dtype)

    @functools.cached_property
    def dA(self) -> torch.Tensor:
        """The dense complex Ā (H, N, N), for the views that step or power it (formed in complex128 where M was)."""
        return self.kernel.transition(self.rate, wide=self.wide).to(self.dB.dtype)

    def step(self, x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = apply_half(self.dA, x[..., None, :])[..., 0, :] + self.dB * u[..., None]
        return 2 * torch.einsum("chn,bhn->bch", self.C, x).real, x

    def forward_state(self, u: torch.Tensor, x0: torch.Tensor,
                      drive: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """y_k += C_f Ā^{k+1} x0 (carried_output); x_L = Ā^L x0 + Σ_j Ā^{L−1−j} B̄ u_j (end_state; by dense_reduce
        of the given drive).

        drive (B, H, L, N2), when given, replaces B̄ u_j as the input of the state (Liquid-S4's several orders)."""
        if drive is None:  # B̄ u_j: in blocks, never the whole (B, H, L, N2) drive
            return self.carried_output(x0, u.shape[-1]), self.advance(x0, u.shape[-1]) + self.end_state(u)
        return self.carried_output(x0, u.shape[-1]), dense_reduce(self.dA, torch.cat([x0[:, :, None], drive], dim=2))

    def _drive(self, u: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.dB[:, None] * u[..., None].to(dtype)  # (B, H, L, N2): B̄ u_j

    def carried_output(self, x0: torch.Tensor, L: int) -> torch.Tensor:
        """y_k = C_f Ā^{k+1} x0, k < L (B, Cch, H, L): a generating function with B := (I + Δ/2·A) x0 / Δ."""
        k = self.kernel
        Lambda, (P, Q), dt = k.Lambda(), k.low_rank(), k.dt(self.rate)
        B_eff = (x0 + dt[:, None] / 2 * k.apply_A(x0)) / dt[:, None]
        C_tilde = ctilde_from_c(self.C_wide, k.transition(self.rate, wide=True), L).to(self.C.dtype)
        return dplr_generating_kernel(Lambda, P, B_eff, C_tilde, dt, L, Q)

    def advance(self, x0: torch.Tensor, L: int) -> torch.Tensor:
        """Ā^L x0 for half states x0 (B, H, N2) (the power by squaring)."""
        return apply_half(torch.linalg.matrix_power(self.dA, L), x0[..., None, :])[..., 0, :]

    def end_state(self, u: torch.Tensor) -> torch.Tensor:
        """Σ_j Ā^{L−1−j} B̄ u_j: the state after u (B, H, L) from the zero state, in blocks of steps
        (blocked_end_state: each block's drive B̄ u_j (B, H, T, N2) by dense_reduce, Ā^T formed once)."""
        powers: dict[int, torch.Tensor] = {}

        def advance(x, n):
            if n not in powers:
                powers[n] = torch.linalg.matrix_power(self.dA, n)
            return apply_half(powers[n], x[..., None, :])[..., 0, :]

        T = block_length(u.shape[-1], u.shape[0] * u.shape[1] * self.dB.shape[-1])
        return blocked_end_state(u, T, lambda block: dense_reduce(self.dA, self._drive(block, self.dB.dtype)), advance)

    def real_step_form(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(M, b, c) of ops.ssm_step on the interleaved half state: y = 2·Re(C x) = c · z."""
        return self.M, interleave(self.dB), interleave(2 * self.C.conj())

    def lowrank_step_form(self) -> LowRankStep:
        """The structured step (kernels/step_form.py) of output channel 0: formed in complex128, rounded once."""
        k = self.kernel
        Lambda, P, Q, dt, dB = widen(k.Lambda(), *k.low_rank(), k.dt(self.rate), self.dB)
        form = dplr_step_form(Lambda, P, dt, dB, self.C_wide[0], Q)
        return LowRankStep(*(t.to(self.dB.dtype) for t in (form.a, form.b, form.c, form.E, form.V)))

    def chunks(self, T: int, channels: slice = slice(None), delay: bool = False) -> ChunkSystem:
        """The chunked form (kernels/chunked.py): the real S × S matrix of the half-state map, y = 2·Re(C x).

        The powers of Ā are formed in the layer's dtype: in float32 at Δ·rate = 1000 (Ā's eigenvalues near −1) the
        chunked view is 1.8e-4 from float64 (H100); float64 doubling gave 7e-5 but cost 2 ms per step at L = 1k."""
        return dense_chunks(self.M, interleave(self.dB), interleave(2 * self.C[channels].conj()), T, delay)
