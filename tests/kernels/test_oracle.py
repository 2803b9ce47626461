"""Every kernel against the dense float64 oracle: materialized Ā, B̄ (matrix exponential / solve), K_k = C Ā^k B̄."""
import pytest
import torch

from conftest import random_stable, rel_err
from ssmkit import functional as F
from ssmkit.kernels import DPLRKernel
from ssmkit.kernels.dplr import _hippo_dplr

LENGTHS = [1, 2, 3, 5, 16, 17, 100, 257, 1024]


def _oracle(A, Bf, Cf, dt, L, disc):
    dA, dB = F.dense_discretize(A, Bf, dt, disc)
    K = F.dense_kernel(dA, dB, Cf, L)
    assert K.imag.abs().max() <= 1e-9 * K.abs().max()  # the full conjugate-symmetric system is real
    return K.real


@pytest.mark.parametrize("L", LENGTHS)
@pytest.mark.parametrize("rank", [1, 2])
def test_dplr_kernel_matches_dense_oracle_random(L, rank):
    Lambda, P, B, C, dt = random_stable(3, 4, R=rank, Cch=2)
    K = F.dplr_kernel(Lambda, P, B, C, dt, L)
    assert K.shape == (2, 3, L)
    assert rel_err(K, _oracle(*F.dplr_dense(Lambda, P, B, C), dt, L, "bilinear")) < 1e-9


@pytest.mark.parametrize("init", ["legs", "legt", "fout", "legs+fout+legt"])
@pytest.mark.parametrize("L", [1, 64, 333, 4096])
def test_dplr_kernel_matches_dense_oracle_hippo(init, L):
    """The HiPPO inits as the S4 layer parameterizes them (Re λ floored at -1e-4, which moves FouT's zero pair)."""
    H, N = 3, 16
    k = DPLRKernel(H, N, init=init).double()
    Lambda, P, B = k.Lambda(), k.cplx("P"), k.cplx("B")
    C = torch.randn(1, H, N // 2, dtype=torch.complex128)
    dt = torch.tensor([1e-3, 1e-2, 1e-1], dtype=torch.float64)
    K = F.dplr_kernel(Lambda, P, B, C, dt, L)
    assert rel_err(K, _oracle(*F.dplr_dense(Lambda, P, B, C), dt, L, "bilinear")) < 1e-9


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("L", LENGTHS + [4096])
def test_diag_kernel_matches_dense_oracle(disc, L):
    Lambda, _, B, C, dt = random_stable(3, 4, Cch=2)
    K = F.diag_kernel(Lambda, B, C, dt, L, disc)
    assert rel_err(K, _oracle(*F.diag_dense(Lambda, B, C), dt, L, disc)) < 1e-9


def test_ctilde_round_trip():
    Lambda, P, B, C, dt = random_stable(2, 4, R=2, Cch=3)
    from ssmkit.kernels.dplr import dplr_transition
    dA = dplr_transition(Lambda, P, dt)
    assert rel_err(F.c_from_ctilde(F.ctilde_from_c(C, dA, 50), dA, 50), C) < 1e-10


@pytest.mark.parametrize("L", [1, 7, 1000])
def test_ctilde_and_plain_c_on_the_real_form_equal_the_complex_definitions_with_their_gradients(L):
    """C̃_f = C_f (I − Ā^L) and C_f = C̃_f (I − Ā^L)^{-1} with the full complex N×N Ā, against the real-form
    computation (values and the gradients of a real loss in C, Λ, P and Δ)."""
    from ssmkit.dense import conj_full
    from ssmkit.kernels.dplr import dplr_transition
    params = [t.requires_grad_() for t in random_stable(3, 8, R=2, Cch=2)]
    Lambda, P, _, C, dt = params
    N2 = C.shape[-1]

    def oracle(C, dA):
        power = torch.linalg.matrix_power(dA, L)
        C_tilde = (conj_full(C) - torch.einsum("chi,hij->chj", conj_full(C), power))[..., :N2]
        eye = torch.eye(dA.shape[-1], dtype=dA.dtype)
        plain = torch.linalg.solve((eye - power).transpose(-1, -2), conj_full(C)[..., None])[..., 0][..., :N2]
        return C_tilde, plain

    dA = dplr_transition(Lambda, P, dt)
    for got, want in zip((F.ctilde_from_c(C, dA, L), F.c_from_ctilde(C, dA, L)), oracle(C, dA)):
        assert rel_err(got, want) < 1e-12
        weights = torch.randn_like(want)
        loss = lambda out: (out * weights).real.sum()  # noqa: E731
        g_got = torch.autograd.grad(loss(got), [Lambda, P, C, dt], retain_graph=True)
        g_want = torch.autograd.grad(loss(want), [Lambda, P, C, dt], retain_graph=True)
        for a, b in zip(g_got, g_want):
            assert rel_err(a, b) < 1e-10


def test_an_exactly_zero_eigenvalue_is_refused_not_turned_into_nan():
    Lambda, P, B = _hippo_dplr("fout", 8, 1, None)
    C = torch.randn(1, 1, 4, dtype=torch.complex128)
    with pytest.raises(ValueError, match="Lambda: an eigenvalue is exactly 0"):
        F.dplr_kernel(Lambda, P, B, C, torch.tensor([0.01], dtype=torch.float64), 16)


def test_dplr_unknown_discretization_is_an_error():
    Lambda, P, B, C, dt = random_stable(1, 2)
    with pytest.raises(ValueError, match="disc"):
        F.dplr_kernel(Lambda, P, B, C, dt, 4, disc="zoh")


@pytest.mark.parametrize("tie_pq", [True, False])
@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_recurrence_real_form_and_discrete_B_from_the_resolvent_pieces_equal_the_dense_discretization(tie_pq, rate):
    """DPLRRecurrence's M (step_form.real_matrix over resolvent_pieces: no complex N×N) and B̄ (O(N·R)) against the
    dense bilinear discretization of the materialized A; rate 1 forms them in complex128 for the plain C, 0.5 not."""
    from ssmkit.kernels.chunked import interleave, real_form
    k = DPLRKernel(3, 8, channels=2, l_max=64, tie_pq=tie_pq).double()
    with torch.no_grad():  # Q apart from P, so that a mix-up of the two shows
        for p in k.parameters():
            p.add_(0.1 * torch.randn_like(p))
    rec = k.recurrence(rate)
    P, Q = k.low_rank()
    A, Bf, _ = F.dplr_dense(k.Lambda(), P, k.cplx("B"), k.output_C(), Q)
    dA, dB = F.dense_discretize(A, Bf, k.dt(rate), "bilinear")
    assert rel_err(rec.M, real_form(dA)) < 1e-12
    assert rel_err(rec.dB, dB[:, :k.N2]) < 1e-12
    assert rel_err(rec.dA, dA) < 1e-12  # the dense Ā, formed when a view asks for it
    assert rel_err(rec.real_step_form()[1], interleave(dB[:, :k.N2])) < 1e-12
