"""SSSD: the DDPM schedule's closed forms, the training objective, and imputation that keeps observed values exactly."""
import math

import pytest
import torch

from ssmkit.models import SSSD
from ssmkit.models.diffusion import DiffusionSchedule, step_embedding


def tiny(**kw) -> SSSD:
    return SSSD(3, n_blocks=2, d_model=8, d_skip=8, d_embed_in=8, d_embed=16,
                layer_options={"d_state": 4, "l_max": 16}, **kw).double()


def test_schedule_matches_the_ddpm_closed_forms_float64():
    s = DiffusionSchedule(T=200, beta_0=1e-4, beta_T=0.02)
    beta = [1e-4 + (0.02 - 1e-4) * t / 199 for t in range(200)]
    alpha_bar, product = [], 1.0
    for b in beta:
        product *= 1 - b
        alpha_bar.append(product)
    assert torch.allclose(s.beta, torch.tensor(beta, dtype=torch.float64), rtol=1e-13, atol=0)
    assert torch.allclose(s.alpha_bar, torch.tensor(alpha_bar, dtype=torch.float64), rtol=1e-12, atol=0)
    tilde = [beta[0]] + [beta[t] * (1 - alpha_bar[t - 1]) / (1 - alpha_bar[t]) for t in range(1, 200)]
    assert torch.allclose(s.sigma ** 2, torch.tensor(tilde, dtype=torch.float64), rtol=1e-12, atol=0)


@pytest.mark.parametrize("t", [1, 57, 199])
def test_reverse_mean_with_the_true_noise_is_the_posterior_mean(t):
    s = DiffusionSchedule()
    x0, eps = torch.randn(4, 10, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64)
    x_t = s.noisy(x0, torch.full((4,), t), eps)
    ab, ab_prev, a, b = s.alpha_bar[t], s.alpha_bar[t - 1], s.alpha[t], s.beta[t]
    posterior = ab_prev.sqrt() * b / (1 - ab) * x0 + a.sqrt() * (1 - ab_prev) / (1 - ab) * x_t
    assert torch.allclose(s.reverse_mean(x_t, t, eps), posterior, rtol=1e-12, atol=1e-12)


def test_step_embedding_is_sin_then_cos_of_t_at_geometric_frequencies():
    e = step_embedding(torch.tensor([0, 3, 150]), 128)
    freq = [math.exp(-math.log(10000) * j / 63) for j in range(64)]
    assert torch.allclose(e[1, :64], torch.tensor([math.sin(3 * f) for f in freq], dtype=torch.float64))
    assert torch.allclose(e[2, 64:], torch.tensor([math.cos(150 * f) for f in freq], dtype=torch.float64))
    assert torch.equal(e[0], torch.cat([torch.zeros(64), torch.ones(64)]).double())


def test_training_error_replaces_the_noise_by_x0_on_observed_entries():
    model = tiny()  # the output layer starts at zero, so the error is -z
    x0 = torch.randn(2, 16, 3, dtype=torch.float64)
    mask = (torch.rand(2, 16, 3) > 0.5).double()
    err = model(x0, mask, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    torch.randint(model.schedule.T, (2,), generator=g)
    z = torch.randn(x0.shape, dtype=torch.float64, generator=g)
    assert torch.equal(err, -torch.where(mask.bool(), x0, z))
    model.eval()
    assert torch.equal(model(x0, mask), model(x0, mask))  # evaluation draws from a fixed seed


def test_impute_returns_observed_entries_exactly_even_when_missing_ones_are_nan():
    model = tiny(T=8)
    torch.nn.init.normal_(model.out[-1].weight, std=0.5)  # a non-trivial denoiser
    x = torch.randn(2, 16, 3, dtype=torch.float64)
    mask = (torch.rand(2, 16, 3) > 0.4).double()
    x_nan = torch.where(mask.bool(), x, torch.full_like(x, float("nan")))
    result = model.impute(x_nan, mask, n_samples=5, generator=torch.Generator().manual_seed(0))
    observed = mask.bool()
    assert result.samples.shape == (5, 2, 16, 3) and torch.isfinite(result.samples).all()
    for s in result.samples:
        assert torch.equal(s[observed], x[observed])
    assert torch.equal(result.median[observed], x[observed])
    assert (result.low <= result.median).all() and (result.median <= result.high).all()
    assert (result.samples[:, ~observed].std(0) > 0).all()  # missing entries are sampled


def test_impute_with_the_true_noise_recovers_a_known_series():
    model = tiny(T=20)
    x0 = torch.randn(1, 16, 3, dtype=torch.float64)
    s = model.schedule

    def oracle(x_t, x_obs, mask, t):  # the exact ε of x_t = √ᾱ x0 + √(1 − ᾱ) ε for this one x0
        ab = s.alpha_bar[t].view(-1, 1, 1)
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()

    model.denoise = oracle
    mask = torch.zeros(1, 16, 3, dtype=torch.float64)
    result = model.impute(torch.zeros_like(x0), mask, n_samples=3)
    assert torch.allclose(result.samples, x0.expand(3, 1, 16, 3), atol=1e-10)


def test_sssd_checks_shapes():
    model = tiny()
    with pytest.raises(ValueError, match="x: expected a floating-point series"):
        model(torch.randn(2, 16, 4, dtype=torch.float64), torch.ones(2, 16, 4))
    with pytest.raises(ValueError, match="mask: expected the shape of x"):
        model.impute(torch.randn(2, 16, 3, dtype=torch.float64), torch.ones(2, 16, 2))


@pytest.mark.slow
def test_sssd_at_the_paper_size_has_the_official_parameter_count():
    # SSSDS4Imputer of AI4HealthUOL/SSSD with config_SSSDS4.json (14 channels, 36 blocks of 256, N=64, l_max 100):
    # 48,371,726 parameters; its S4 keeps A, B, P and dt fixed, which is ssm_lr=0 here
    model = SSSD(14, layer_options={"l_max": 100, "ssm_lr": 0.0})
    assert sum(p.numel() for p in model.parameters()) == 48_371_726


def test_sssd_s4_layers_keep_the_exact_hippo_b_as_its_own_s4_does():
    """SSSD's S4 (S4Model.py nplr) does not clip Im B̃ at 2 and never trains B: ours starts from the same B̃, unless
    layer_options set B_clip."""
    import ssmkit

    exact = ssmkit.S4(8, d_state=16, B_clip=None).kernel.B
    clipped = ssmkit.S4(8, d_state=16).kernel.B
    assert not torch.equal(exact, clipped)
    for options, expected in (({}, exact), ({"B_clip": 2.0}, clipped)):
        model = SSSD(3, n_blocks=1, d_model=4, d_skip=4, layer_options={"d_state": 16, **options})
        layers = [m for m in model.modules() if isinstance(m, ssmkit.S4)]
        assert len(layers) == 2 and all(torch.equal(m.kernel.B, expected) for m in layers)
