import math

import pytest
import torch

from ssmkit import hippo


@pytest.mark.parametrize("measure", hippo.MEASURES)
@pytest.mark.parametrize("N", [2, 4, 8, 16, 64])
def test_nplr_reconstructs_the_hippo_matrix(measure, N):
    dplr = hippo.nplr(measure, N)
    A, B = hippo.transition(measure, N)
    A_rec = hippo.reconstruct(dplr)
    assert (A_rec.real - A).abs().max() < 1e-11 * max(1.0, A.abs().max().item())
    assert A_rec.imag.abs().max() < 1e-11 * max(1.0, A.abs().max().item())
    Vf = torch.cat([dplr.V, dplr.V.conj()], dim=1)
    assert (Vf.conj().T @ Vf - torch.eye(N, dtype=torch.complex128)).abs().max() < 1e-12  # unitary
    Bf = Vf @ torch.cat([dplr.B, dplr.B.conj()])
    assert (Bf.real - B).abs().max() < 1e-11 and Bf.imag.abs().max() < 1e-11


@pytest.mark.parametrize("measure", hippo.MEASURES)
def test_normal_part_is_a_multiple_of_identity_plus_skew(measure):
    A, _ = hippo.transition(measure, 12)
    P = hippo.rank_correction(measure, 12)
    S = A + P.T @ P
    sigma = torch.diagonal(S).mean()
    S0 = S - sigma * torch.eye(12, dtype=torch.float64)
    assert torch.allclose(S0, -S0.T, atol=1e-12)


def test_legs_entries_follow_the_definition():
    A, B = hippo.transition("legs", 3)
    s = math.sqrt
    expected = torch.tensor([[-1, 0, 0], [-s(3), -2, 0], [-s(5), -s(15), -3]], dtype=torch.float64)
    assert torch.allclose(A, expected) and torch.allclose(B, torch.tensor([1, s(3), s(5)], dtype=torch.float64))
    assert torch.allclose(hippo.rank_correction("legs", 3)[0], torch.tensor([s(0.5), s(1.5), s(2.5)]).double())


def test_legt_needs_rank_two():
    assert hippo.rank_correction("legt", 8).shape == (2, 8)
    assert hippo.nplr("legt", 8).P.shape == (2, 4)


def test_fout_zero_eigenvalue_pair_is_kept_once_as_a_conjugate_pair():
    dplr = hippo.nplr("fout", 16)
    assert (dplr.Lambda.abs() < 1e-12).sum() == 1  # one member of the zero pair
    assert torch.allclose(dplr.Lambda.real, torch.zeros(8, dtype=torch.float64), atol=1e-12)
    freqs = sorted(dplr.Lambda.imag.tolist())
    assert freqs[1:] == pytest.approx([math.pi * k for k in range(1, 8)])  # πk, as the official code (not 2πk)


def test_fout_rotates_the_pair_of_states_2k_2k_plus_1_at_pi_k():
    A, B = hippo.transition("fout", 8)
    rotation = A + B[:, None] * B[None, :]
    expected = torch.zeros(8, 8, dtype=torch.float64)
    for k in (1, 2, 3):
        expected[2 * k + 1, 2 * k], expected[2 * k, 2 * k + 1] = math.pi * k, -math.pi * k
    assert torch.equal(rotation, expected)
    assert torch.equal(B, torch.tensor([1, 0, 2 ** 0.5, 0, 2 ** 0.5, 0, 2 ** 0.5, 0], dtype=torch.float64))


def test_clipped_legs_B_for_N8_is_the_official_one():
    """The official nplr('legs', 8) (B_clip=2) gives, per eigenvalue −0.5 − iμ, B̃ = the conjugates of these, up to
    the sign of each mode; its last entry is clipped from −5.154 to −2."""
    dplr = hippo.nplr("legs", 8, B_clip=2.0)
    assert torch.allclose(dplr.Lambda.imag, torch.tensor([0.427489, 1.957794, 5.354209, 19.857410]).double(),
                          atol=1e-6)
    expected = torch.tensor([0.607648 - 0.519525j, 0.290741 - 1.138420j, 0.171443 - 1.835881j, 0.129775 - 2.0j])
    assert torch.allclose(dplr.B, expected.to(torch.complex128), atol=1e-6)
    assert hippo.nplr("legs", 8).B[3].imag == pytest.approx(-5.153992, abs=1e-6)


def test_the_B_clip_cuts_11_of_32_entries_at_N64():
    clipped, exact = hippo.nplr("legs", 64, B_clip=2.0).B, hippo.nplr("legs", 64).B
    assert int((clipped != exact).sum()) == 11 and clipped.imag.abs().max() == 2.0
    assert torch.equal(clipped.real, exact.real)


@pytest.mark.parametrize("measure", hippo.MEASURES)
def test_each_eigenvector_has_a_real_positive_first_component(measure):
    V = hippo.nplr(measure, 16).V
    first = V[0][V[0].abs() > 1e-6]
    assert first.imag.abs().max() < 1e-15 and (first.real > 0).all()


def test_diagonal_inits_follow_their_formulas():
    N = 8
    n = torch.arange(4, dtype=torch.float64)
    assert torch.allclose(hippo.diagonal_init("lin", N), torch.complex(-0.5 * torch.ones(4).double(), math.pi * n))
    inv = hippo.diagonal_init("inv", N)
    assert torch.allclose(inv.imag, (N / math.pi) * (N / (2 * n + 1) - 1))
    assert torch.allclose(hippo.diagonal_init("real", N).real, -(n + 1))
    assert torch.allclose(hippo.diagonal_init("legs", N), hippo.nplr("legs", N).Lambda)
    rnd = hippo.diagonal_init("random", N)
    assert (rnd.real == -0.5).all() and (rnd.imag >= 0).all() and (rnd.imag <= math.pi * N / 2).all()


@pytest.mark.parametrize("call, match", [
    (lambda: hippo.transition("legx", 4), "measure"),
    (lambda: hippo.nplr("legs", 1), "N: expected an integer >= 2"),
    (lambda: hippo.diagonal_init("legs", 5), "N: expected an even"),
    (lambda: hippo.diagonal_init("nope", 4), "init"),
    (lambda: hippo.nplr("legs", 4, B_clip=0.0), "B_clip"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_odd_n_drops_the_real_mode_as_the_official_nplr():
    """The official nplr('legs', 7) (state-spaces/s4 and raminmh/liquid-s4 hippo.py, the Liquid-S4 LRA configs'
    d_state 7) keeps w[:N//2]: three pairs −0.5 ± iμ and the real mode (μ = 0) dropped. Its |B̃| and |P̃| per mode,
    printed from it: [1.0302, 1.6397, 4.5271] and [0.7285, 1.1595, 3.2011] for μ = 1.1216, 3.7975, 15.0855."""
    dplr = hippo.nplr("legs", 7)
    assert torch.allclose(dplr.Lambda, torch.tensor([1.1215728183, 3.7974849781, 15.0854626132]).double() * 1j - 0.5,
                          atol=1e-9)
    assert torch.allclose(dplr.B.abs(), torch.tensor([1.0302011776, 1.6397382908, 4.5270527821]).double(), atol=1e-9)
    assert torch.allclose(dplr.P.abs(), torch.tensor([[0.7284622387, 1.1594700648, 3.2011097210]]).double(),
                          atol=1e-9)
    assert dplr.V.shape == (7, 3)
    assert (dplr.V.conj().T @ dplr.V - torch.eye(3, dtype=torch.complex128)).abs().max() < 1e-12
    assert torch.equal(hippo.nplr("legs", 7, B_clip=1.0).B.imag.abs().max(), torch.tensor(1.0).double())
    with pytest.raises(ValueError, match="zero eigenvalues"):
        hippo.nplr("fout", 7)  # state 1 is never driven: three zero eigenvalues, no single real mode to drop


@pytest.mark.parametrize("N", [7, 8, 16, 64])
def test_official_basis_takes_the_signs_of_the_official_nplr(N):
    """The official nplr as its kernel calls it (raminmh/liquid-s4 hippo.py through dplr.combination, dtype float32):
    A + PPᵀ summed in float32, −i times it diagonalized in float64, the eigenvectors of the N//2 most negative μ kept;
    B̃ = V* B. Conjugated (ours keep Im λ > 0), its B̃ is ours in the official basis, to float32 rounding and with
    every mode's sign, which first_positive does not keep (at N = 7 its μ = 15.09 mode is flipped)."""
    A, B = hippo.transition("legs", N)
    P = hippo.rank_correction("legs", N).float()
    S = (A.float() + torch.sum(P.unsqueeze(-2) * P.unsqueeze(-1), dim=-3)).double()
    mu, W = torch.linalg.eigh(S * -1j)
    V = W[:, torch.argsort(mu)[: N // 2]]  # most negative μ first
    theirs = (V.conj().T @ B.float().double().to(torch.complex128)).conj().flip(0)  # ascending |μ|, as ours
    official, ours = hippo.nplr("legs", N, basis="official"), hippo.nplr("legs", N)
    assert torch.allclose(official.Lambda, ours.Lambda) and torch.allclose(official.B.abs(), ours.B.abs())
    assert (official.B - theirs).abs().max() < 1e-6 * theirs.abs().max()
    if N == 7:
        assert torch.equal(torch.sign(official.B.real / ours.B.real), torch.tensor([1.0, 1.0, -1.0]).double())
    with pytest.raises(ValueError, match="basis"):
        hippo.nplr("legs", N, basis="lapack")
