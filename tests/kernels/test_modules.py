"""Kernel modules: each equals the functional form of its own parameters; lengths and rates; DSS and DLR formulas."""
import math

import pytest
import torch

from conftest import CHUNKS, rel_err, three_views
import ssmkit
from ssmkit import functional as F
from ssmkit.dense import conj_full
from ssmkit.kernels import DLRKernel, DPLRKernel, DSSKernel, S4DKernel
from ssmkit.train.optim import optim_settings


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


def test_s4_length_correction_off_takes_the_random_draw_as_ctilde():
    """length_correction=False (ViS4mer's S4): the parameter C is the CN(0, 1) draw itself, read as C̃ for l_max; with
    it on (the default) the same draw is the plain C and the parameter its C̃."""
    torch.manual_seed(0)
    raw = DPLRKernel(2, 8, l_max=None).C.detach()
    torch.manual_seed(0)
    off = DPLRKernel(2, 8, l_max=32, length_correction=False)
    torch.manual_seed(0)
    on = DPLRKernel(2, 8, l_max=32)
    assert torch.equal(off.C, raw) and not torch.allclose(on.C, raw)
    assert rel_err(on.plain_C().detach().to(torch.complex128), torch.view_as_complex(raw.double())) < 1e-5


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


@pytest.mark.parametrize("transform", ["exp", "relu", "softplus", "sigmoid", "none"])
def test_s4d_real_transforms_reproduce_the_init(transform):
    """Re λ = −1/2 from every transform; relu's starts 1e-4 further left (relu(raw) + 1e-4, as the official code)."""
    k = S4DKernel(2, 8, init="lin", real_transform=transform).double()
    want = -0.5 - (1e-4 if transform == "relu" else 0.0)
    assert torch.allclose(k.Lambda().real, torch.full((2, 4), want, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("transform", ["exp", "relu", "softplus", "sigmoid", "none"])
def test_real_part_floor_follows_the_official_transforms(transform):
    """−Re λ is floored at 1e-4 at init for every transform (FouT's Re λ = 0 pair, a positive real part), and relu keeps
    Re λ <= −1e-4 whatever its raw parameter (state-spaces/s4 kernels/ssm.py inv_transform / param_transform)."""
    from ssmkit.kernels.diag import real_part, real_part_inverse
    re = torch.tensor([0.0, 1e-6, -3e-5, -0.25, 0.3], dtype=torch.float64)
    got = real_part(real_part_inverse(re, transform), transform)
    want = torch.clamp(re, max=-1e-4) - (1e-4 if transform == "relu" else 0.0)
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-14)
    if transform == "relu":
        assert real_part(torch.tensor([-5.0, 0.0]), "relu").max() <= -1e-4


def test_dss_exp_kernel_follows_its_formula():
    """x = Re λ·Δ_re + i Im λ·Δ_im (the official separate steps); K_k = Re Σ_n w_n λ_n^{-1}(e^{x_n} − 1) e^{k x_n}."""
    k = DSSKernel(2, 8, channels=1, variant="exp").double()
    with torch.no_grad():
        k.log_dt[:, 1] += 0.7  # the two steps apart
    lam, w, dt = k.Lambda(), k.cplx("C")[0], k.dt()
    x = torch.complex(lam.real * dt[:, :1], lam.imag * dt[:, 1:])
    j = torch.arange(30, dtype=torch.float64)
    K = ((w / lam * (torch.exp(x) - 1))[..., None] * torch.exp(x[..., None] * j)).sum(-2)
    assert rel_err(k(30)[0], K.real) < 1e-12


def test_dss_starts_as_the_official_init():
    """ag1988/dss: N complex modes, the Im > 0 eigenvalues of the size-2N skew HiPPO-LegS minus ½, shared by the
    channels; one Δ each for Re and Im, drawn equal; E|w|² = 2 with the SSM parameters' lr and no weight decay."""
    torch.manual_seed(0)
    k = DSSKernel(64, 4)
    assert torch.allclose(k.Lambda().imag, torch.tensor([0.427489, 1.957794, 5.354209, 19.857410]).expand(64, 4),
                          atol=1e-5)  # = the size-8 HiPPO-LegS spectrum, 4 modes
    assert (k.Lambda().real == -0.5).all() and k.A_real.shape == (1, 4)
    assert k.log_dt.shape == (64, 2) and torch.equal(k.log_dt[:, 0], k.log_dt[:, 1])
    big = DSSKernel(64, 256)
    assert big.cplx("C").abs().square().mean().item() == pytest.approx(2.0, rel=0.02)
    assert optim_settings(big)["C"] == {"weight_decay": 0.0, "lr": 1e-3} and big.variant == "softmax"
    layer = ssmkit.DSS(8, 4)
    assert isinstance(layer.output, torch.nn.Linear) and layer.kernel.state_shape == (8, 4)


def _softmax_reference(lam, w, dt, L, L_norm):
    logits = lam[..., None] * dt[:, None, None] * torch.arange(L_norm, dtype=torch.float64)
    e = torch.exp(logits)
    return ((w / lam)[..., None] * e / e.sum(-1, keepdim=True)).sum(-2).real[..., :L]


@pytest.mark.parametrize("l_max", [None, 64])
def test_dss_softmax_matches_a_direct_softmax_for_mixed_signs(l_max):
    k = DSSKernel(2, 8, variant="softmax", l_max=l_max, sep_dt=False, n_ssm=None, epsilon=0.0).double()
    with torch.no_grad():
        k.A_real[0, :2] = -0.3  # Re λ = −A_real: two growing modes in channel 0
    L = 40
    ref = _softmax_reference(k.Lambda(), k.cplx("C")[0], k.dt(), L, l_max or L)
    assert rel_err(k(L)[0], ref) < 1e-10


def test_dss_softmax_regularizes_its_normalizer_as_the_official_code():
    """ag1988/dss DSSKernel: w·(e^{x} − 1)/(λ(e^{Lx} − 1)) with the reciprocal of d = λ(e^{Lx} − 1) taken as
    conj(d)/(|d|² + 1e-7); at a short length with a small Δ, |d|² is near ε and the kernel is damped (epsilon=0: the
    plain softmax)."""
    torch.manual_seed(0)
    k = DSSKernel(3, 4, variant="softmax", dt_min=1e-4, dt_max=1e-4).double()
    assert k.epsilon == 1e-7 and ssmkit.DSS(3, 4).kernel.epsilon == 1e-7
    L = 6
    lam, w, dt = k.Lambda(), k.cplx("C")[0], k.dt()
    x = torch.complex(lam.real * dt[:, :1], lam.imag * dt[:, 1:])
    d = lam * (torch.exp(L * x) - 1)
    coef = w * (torch.exp(x) - 1) * d.conj() / (d.abs() ** 2 + 1e-7)
    K = (coef[..., None] * torch.exp(x[..., None] * torch.arange(L, dtype=torch.float64))).sum(-2).real
    assert rel_err(k(L)[0], K) < 1e-10
    plain = DSSKernel(3, 4, variant="softmax", dt_min=1e-4, dt_max=1e-4, epsilon=0.0).double()
    plain.load_state_dict(k.state_dict())
    assert rel_err(plain(L)[0], k(L)[0]) > 1e-3
    assert rel_err(plain(L)[0], _softmax_reference(lam, w, dt[:, 0], L, L)) < 1e-10
    with pytest.raises(ValueError, match="epsilon"):
        DSSKernel(3, 4, epsilon=-1.0)


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


def test_dlr_starts_as_the_official_omega_init():
    """ag1988/dlr: N modes shared by the channels, θ_n = 2πn/N over the circle, Re log Λ = −Δ_n/2 with Δ_n log-uniform
    per mode in [1e-4, 0.1], W with real and imaginary parts N(0, 1/N²)."""
    torch.manual_seed(0)
    k = DLRKernel(64, 512).double()
    log_L = k.log_Lambda()
    assert log_L.shape == (64, 512) and torch.equal(log_L[0], log_L[63])  # one Λ for every channel
    assert torch.allclose(log_L.imag[0], 2 * math.pi * torch.arange(512, dtype=torch.float64) / 512)
    dt = -2 * log_L.real[0]
    assert dt.min() >= 1e-4 and dt.max() <= 0.1 and dt.log().mean().item() == pytest.approx(
        (math.log(1e-4) + math.log(0.1)) / 2, abs=0.3)
    assert k.cplx("C").abs().square().mean().item() == pytest.approx(2 / 512 ** 2, rel=0.02)
    assert optim_settings(k)["C"] == {"weight_decay": 0.0, "lr": 1e-4}


@pytest.mark.parametrize("make, match", [
    (lambda: S4DKernel(2, 7), "d_state"),
    (lambda: S4DKernel(0, 8), "d_model"),
    (lambda: S4DKernel(2, 8, disc="euler"), "disc"),
    (lambda: S4DKernel(2, 8, real_transform="tanh"), "real_transform"),
    (lambda: S4DKernel(2, 8, init="real", real_transform="sigmoid"), "sigmoid"),
    (lambda: S4DKernel(2, 8, dt_min=0.1, dt_max=0.01), "dt_min"),
    (lambda: DPLRKernel(2, 8, init="legs+chebyshev"), "init"),
    (lambda: DPLRKernel(2, 8, l_max=0), "l_max"),
    (lambda: DSSKernel(2, 8, variant="relu"), "variant"),
])
def test_bad_kernel_options_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make", [lambda n: DPLRKernel(6, 8, n_ssm=n, l_max=20), lambda n: S4DKernel(6, 8, n_ssm=n),
                                  lambda n: DSSKernel(6, 4, n_ssm=n, variant="exp"), lambda n: DLRKernel(6, 4, n_ssm=n)])
def test_n_ssm_copies_are_tiled_over_the_channels(make):
    """n_ssm = 2 over H = 6: channel h has SSM copy h mod 2 (the official tiling); a per-channel kernel holding the
    tiled copies gives the same kernel, Δ and C staying per channel."""
    shared, per_channel = make(2).double(), make(None).double()
    for name, p in shared.named_parameters():
        q = getattr(per_channel, name)
        with torch.no_grad():
            q.copy_(p if q.shape == p.shape else p.repeat(*[a // b for a, b in zip(q.shape, p.shape)]))
    assert rel_err(shared(20), per_channel(20)) < 1e-12
    assert sum(p.numel() for p in shared.parameters()) < sum(p.numel() for p in per_channel.parameters())
    with pytest.raises(ValueError, match="n_ssm"):
        make(4)


@pytest.mark.parametrize("kernel", [lambda: DPLRKernel(3, 8).double(), lambda: S4DKernel(3, 8).double(),
                                    lambda: DSSKernel(3, 8, l_max=64).double()], ids=["s4", "s4d", "dss"])
def test_end_state_in_blocks_is_the_state_after_the_whole_input(kernel, monkeypatch):
    """x_L = Σ_j Ā^{L−1−j} B̄ u_j and forward_state's x_L, walked in blocks of 7 steps (L = 37: a short last block)
    by Horner's rule, against the recurrence stepped one sample at a time."""
    import ssmkit.kernels.base as base
    k = kernel()
    system = k.recurrence()
    u = torch.randn(2, 3, 37, dtype=torch.float64)
    N2 = system.dB.shape[-1]
    x0 = torch.randn(2, 3, N2, dtype=torch.complex128)
    x, stepped = x0.clone(), torch.zeros_like(x0)
    for t in range(37):
        stepped = system.step(stepped, u[..., t])[1]
        x = system.step(x, u[..., t])[1]
    per_step = (2 if isinstance(k, DPLRKernel) else 1) * 3 * N2  # what a block forms per step
    monkeypatch.setattr(base, "BLOCK_ELEMENTS", 7 * per_step)
    assert rel_err(system.end_state(u), stepped) < 1e-12
    assert rel_err(system.forward_state(u, x0)[1], x) < 1e-12


def _untied(d_model=4, **options):
    """ViS4mer's S4 kernel (Λ shared, P, B per channel, Q apart from P) with P and Q moved apart from their init."""
    k = DPLRKernel(d_model, 8, share_lambda=True, tie_pq=False, B_clip=None, **options).double()
    with torch.no_grad():
        k.Q.add_(0.3 * torch.randn_like(k.Q))
        k.P.add_(0.1 * torch.randn_like(k.P))
    return k


@pytest.mark.parametrize("l_max, init", [(None, "legs"), (24, "legs"), (24, "legt")])
def test_untied_low_rank_kernel_matches_the_dense_system(l_max, init):
    """A = diag(Λ_f) − P_f Q_f* with Q ≠ P (rank 1, and rank 2 for LegT, where the Woodbury cap's rows are P's and its
    columns Q's): the Cauchy + Woodbury kernel, the structured step and the stepped recurrence all equal the dense
    materialized system (float64)."""
    torch.manual_seed(0)
    k = _untied(channels=2, l_max=l_max, init=init)
    P, Q = k.low_rank()
    A, Bf, Cf = F.dplr_dense(k.Lambda(), P, k.cplx("B"), k.plain_C(), Q)
    dA, dB = F.dense_discretize(A, Bf, k.dt(), "bilinear")
    for n in (24, 13, 50):
        assert rel_err(k(n), F.dense_kernel(dA, dB, Cf, n).real) < 1e-10, n
    rec = k.recurrence()
    assert rel_err(rec.dA, dA) < 1e-12
    form, x = rec.lowrank_step_form(), torch.randn(3, 4, 4, dtype=torch.complex128)
    stepped = form.a * x - (form.E[:, None] * 2 * (form.V[:, None] * x).sum(-1, keepdim=True).real).sum(0)
    assert rel_err(stepped, torch.einsum("hij,bhj->bhi", dA, conj_full(x))[..., :4]) < 1e-12
    u, x0 = torch.randn(2, 4, 30, dtype=torch.float64), torch.randn(2, 4, 4, dtype=torch.complex128)
    carried, end = rec.forward_state(u, x0)
    _, end_dense = F.dense_recurrence(dA, dB, Cf, u, conj_full(x0))
    carried_dense, _ = F.dense_recurrence(dA, dB, Cf, torch.zeros_like(u), conj_full(x0))
    assert rel_err(end, end_dense[..., :4]) < 1e-10 and rel_err(carried, carried_dense.real) < 1e-10


@pytest.mark.parametrize("init", ["legs", "legt"])
def test_untied_s4_layer_views_agree_and_tie_is_the_official_s4(init):
    """The S4 layer with ViS4mer's kernel: forward, steps and chunks agree with Q ≠ P (ranks 1 and 2); with Q = P
    (its init) it is the tied S4 of the same Λ, P, B, C, Δ."""
    torch.manual_seed(1)
    layer = ssmkit.S4(4, 8, l_max=40, share_lambda=True, tie_pq=False, init=init).double().eval()
    with torch.no_grad():
        layer.kernel.Q.add_(0.3 * torch.randn_like(layer.kernel.Q))
    y, y_step, y_chunk = three_views(layer, torch.randn(2, CHUNKS[-1][1], 4, dtype=torch.float64))
    assert rel_err(y_step, y) < 1e-9 and rel_err(y_chunk, y) < 1e-9
    fresh = ssmkit.S4(4, 8, l_max=40, share_lambda=True, tie_pq=False).double()
    tied = ssmkit.S4(4, 8, l_max=40).double()
    state = {k: v for k, v in fresh.state_dict().items() if k != "kernel.Q"}
    state["kernel.A_real"], state["kernel.A_imag"] = (state[n].repeat(4, 1) for n in ("kernel.A_real", "kernel.A_imag"))
    tied.load_state_dict(state)
    assert torch.equal(fresh.kernel(40), tied.kernel(40))


def test_vis4mer_kernel_layout_and_optimizer_groups():
    """As ViS4mer's s4.py: Λ once, P and B per channel (SSM group: ssm_lr, no decay), Q per channel starting at P,
    trained with C (the model's lr and weight decay)."""
    k = DPLRKernel(6, 8, share_lambda=True, tie_pq=False)
    assert k.A_real.shape == (1, 4) and k.P.shape == (1, 6, 4, 2) and k.B.shape == (6, 4, 2)
    assert torch.equal(k.Q, k.P)
    settings = optim_settings(k)
    assert settings["P"] == {"lr": 1e-3, "weight_decay": 0.0} and "Q" not in settings and "C" not in settings
    with pytest.raises(ValueError, match="share_lambda: one Λ for every channel needs one measure"):
        DPLRKernel(6, 8, init="legs+fout", share_lambda=True)
    with pytest.raises(ValueError, match="tie_pq: expected true or false"):
        DPLRKernel(6, 8, tie_pq="no")
