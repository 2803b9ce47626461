"""Kernel modules: each equals the functional form of its own parameters; lengths and rates; DSS and DLR formulas."""
import math

import pytest
import torch

from conftest import rel_err
from ssmkit import functional as F
from ssmkit.kernels import DLRKernel, DPLRKernel, DSSKernel, S4DKernel


def _dplr_params(k: DPLRKernel, rate=1.0):
    return k.Lambda(), k.cplx("P"), k.cplx("B"), k.plain_C(), k.dt(rate)


@pytest.mark.parametrize("init", ["legs", "legt", "legs+fout"])
def test_s4_kernel_lengths_L_2L_3L_and_shorter_equal_fresh_computations(init):
    L = 48
    k = DPLRKernel(3, 8, channels=2, init=init, l_max=L).double()
    Lambda, P, B, C, dt = _dplr_params(k)
    for n in (L, 2 * L, 3 * L, L // 2, 7):
        assert rel_err(k(n), F.dplr_kernel(Lambda, P, B, C, dt, n)) < 1e-9, n


def test_s4_kernel_at_its_own_length_uses_the_trained_ctilde():
    """With l_max set the parameter C is C̃: the kernel is the generating function of exactly that C̃."""
    k = DPLRKernel(2, 8, l_max=32).double()
    K = F.dplr_generating_kernel(k.Lambda(), k.cplx("P"), k.cplx("B"), k.cplx("C"), k.dt(), 32)
    assert torch.equal(k(32), K)


def test_s4_rate_samples_the_same_continuous_system_at_a_finer_step():
    k = DPLRKernel(2, 8, l_max=40).double()
    Lambda, P, B, C, _ = _dplr_params(k)
    assert rel_err(k(80, rate=0.5), F.dplr_kernel(Lambda, P, B, C, k.dt(0.5), 80)) < 1e-9


def test_s4_without_l_max_treats_C_as_the_plain_C():
    k = DPLRKernel(2, 8).double()
    Lambda, P, B, _, dt = _dplr_params(k)
    for n in (5, 64):
        assert rel_err(k(n), F.dplr_kernel(Lambda, P, B, k.cplx("C"), dt, n)) < 1e-9


@pytest.mark.parametrize("init", ["lin", "inv", "legs", "real", "random"])
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_s4d_kernel_is_the_diag_kernel_of_its_parameters(init, disc):
    k = S4DKernel(3, 8, channels=2, init=init, disc=disc).double()
    K = F.diag_kernel(k.Lambda(), k.cplx("B"), k.cplx("C"), k.dt(), 50, disc)
    assert rel_err(k(50), K) < 1e-12


@pytest.mark.parametrize("transform", ["exp", "relu", "none"])
def test_s4d_real_transforms_reproduce_the_init(transform):
    k = S4DKernel(2, 8, init="lin", real_transform=transform).double()
    assert torch.allclose(k.Lambda().real, torch.full((2, 4), -0.5, dtype=torch.float64))


def test_dss_exp_kernel_follows_its_formula():
    k = DSSKernel(2, 8, channels=1, variant="exp").double()
    lam, w, dt = k.Lambda(), k.cplx("C")[0], k.dt()[:, None]
    j = torch.arange(30, dtype=torch.float64)
    K = ((w / lam * (torch.exp(lam * dt) - 1))[..., None] * torch.exp(lam[..., None] * dt[..., None] * j)).sum(-2)
    assert rel_err(k(30)[0], K.real) < 1e-12


def _softmax_reference(lam, w, dt, L, L_norm):
    logits = lam[..., None] * dt[:, None, None] * torch.arange(L_norm, dtype=torch.float64)
    e = torch.exp(logits)
    return ((w / lam)[..., None] * e / e.sum(-1, keepdim=True)).sum(-2).real[..., :L]


@pytest.mark.parametrize("l_max", [None, 64])
def test_dss_softmax_matches_a_direct_softmax_for_mixed_signs(l_max):
    k = DSSKernel(2, 8, variant="softmax", l_max=l_max).double()
    with torch.no_grad():
        k.A_real[0, :2] = -0.3  # Re λ = −A_real: two growing modes in channel 0
    L = 40
    ref = _softmax_reference(k.Lambda(), k.cplx("C")[0], k.dt(), L, l_max or L)
    assert rel_err(k(L)[0], ref) < 1e-10


def test_dss_softmax_is_finite_where_the_naive_softmax_overflows():
    k = DSSKernel(2, 8, variant="softmax", l_max=None, dt_min=0.5, dt_max=0.5).double()
    with torch.no_grad():
        k.A_real.fill_(-4.0)  # every mode grows: Re(λΔ)·L = 2·4096, e^8192 overflows float64
    K = k(4096)
    assert torch.isfinite(K).all()
    # for a strongly growing mode the normalized kernel concentrates at the last position: K_{L-1} ≈ Re Σ w/λ·(1 − e^{−x})
    lam, w, x = k.Lambda(), k.cplx("C")[0], k.Lambda() * 0.5
    assert torch.allclose(K[0, :, -1], (w / lam * (1 - torch.exp(-x))).sum(-1).real, rtol=1e-10)


def test_dlr_kernel_follows_its_formula_and_is_stable():
    k = DLRKernel(2, 8, channels=2).double()
    log_L = k.log_Lambda()
    assert (log_L.real < 0).all()
    l = torch.arange(25, dtype=torch.float64)
    K = (k.cplx("C")[..., None] * torch.exp(log_L[..., None] * l)).sum(-2).real
    assert rel_err(k(25), K) < 1e-12
    assert rel_err(k(25, rate=2.0), (k.cplx("C")[..., None] * torch.exp(2 * log_L[..., None] * l)).sum(-2).real) < 1e-12


def test_dlr_init_is_s4d_lin_discretized():
    k = DLRKernel(3, 8).double()
    dt = torch.exp(k.nu[:, :1]) * 2
    n = torch.arange(4, dtype=torch.float64)
    assert torch.allclose(k.log_Lambda(), torch.complex(-0.5 * dt.expand(-1, 4), dt * math.pi * n))


@pytest.mark.parametrize("make, match", [
    (lambda: S4DKernel(2, 7), "d_state"),
    (lambda: S4DKernel(0, 8), "d_model"),
    (lambda: S4DKernel(2, 8, disc="euler"), "disc"),
    (lambda: S4DKernel(2, 8, real_transform="softplus"), "real_transform"),
    (lambda: S4DKernel(2, 8, dt_min=0.1, dt_max=0.01), "dt_min"),
    (lambda: DPLRKernel(2, 8, init="legs+chebyshev"), "init"),
    (lambda: DPLRKernel(2, 8, l_max=0), "l_max"),
    (lambda: DSSKernel(2, 8, variant="relu"), "variant"),
])
def test_bad_kernel_options_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()
