"""S4ND: the N-D convolution against direct sums, the 1-D case against our bidirectional layers, resolution change
(rate) against sum-pooling, and the bandlimit rule. Float64 oracles."""
import math

import pytest
import torch

import ssmkit
from ssmkit.kernels.base import bandlimit_mask


def _lags(k, k_rev):
    """One axis' two-sided kernel on the lags −l .. l−1 (index j + l): (R, C, H, 2l)."""
    return torch.cat([k_rev.flip(-1), k], dim=-1)


def _full_kernel_2d(layer, shape, rate=1.0):
    """K[c, h, j1 + l1, j2 + l2] = mean_r K¹_r(j1) K²_r(j2) on all lags: (C, H, 2l1, 2l2)."""
    k, k_rev = layer.axis_kernels(shape, rate)
    a, b = _lags(k[0], k_rev[0]), _lags(k[1], k_rev[1])
    return (a[..., :, None] * b[..., None, :]).mean(0)


def _linear_2d(layer, shape):
    return ssmkit.S4ND(3, 8, l_max=shape, trank=2, channels=2, activation="id", output="linear",
                       dt_min=0.1, dt_max=1.0, kernel=layer).double()


@pytest.mark.parametrize("kernel", ["s4", "s4d"])
def test_s4nd_2d_convolution_equals_the_direct_double_sum(kernel):
    """y[t] = Σ_s K(t − s) u(s) + D u(t) over both axes, before the activation and the output map (< 1e-12)."""
    shape = (5, 4)
    layer = _linear_2d(kernel, shape).eval()
    u = torch.randn(2, *shape, 3, dtype=torch.float64)
    K = _full_kernel_2d(layer, shape)  # (C, H, 10, 8)
    l1, l2 = shape
    y = torch.zeros(2, 2, 3, *shape, dtype=torch.float64)  # (B, C, H, L1, L2)
    for t1 in range(l1):
        for t2 in range(l2):
            for s1 in range(l1):
                for s2 in range(l2):
                    y[..., t1, t2] += K[None, :, :, t1 - s1 + l1, t2 - s2 + l2] * u[:, None, s1, s2, :]
    y = y + layer.D[None, :, :, None, None] * u.movedim(-1, 1)[:, None]
    features = y.movedim(1, -1).movedim(1, -1).flatten(-2)  # (B, L1, L2, C·H)
    got, _ = layer(u)
    assert (got - layer.output(features)).abs().max() < 1e-12


@pytest.mark.parametrize("name,options", [("s4", {}), ("s4d", {"init": "lin", "disc": "zoh"}),
                                          ("s4d", {"init": "legs", "disc": "bilinear", "bandlimit": 0.5})])
@pytest.mark.parametrize("L,rate", [(16, 1.0), (8, 2.0)])
def test_1d_s4nd_equals_the_bidirectional_1d_layer(name, options, L, rate):
    """dim=1 with the same weights: the bidirectional S4 / S4D layer (its anti-causal half from the second channels),
    also at rate 2 on an input half as long (< 1e-12)."""
    torch.manual_seed(1)
    nd = ssmkit.S4ND(4, 8, l_max=16, dim=1, kernel=name, dt_min=0.05, dt_max=0.5, **options).double()
    cls = ssmkit.S4 if name == "s4" else ssmkit.S4D
    one_d = cls(4, 8, bidirectional=True, l_max=16, **options).double()
    one_d.load_state_dict({k.replace("kernels.0.", "kernel."): v for k, v in nd.state_dict().items()})
    u = torch.randn(3, L, 4, dtype=torch.float64)
    assert (nd(u, rate=rate)[0] - one_d(u, rate=rate)[0]).abs().max() < 1e-12


def _pool2(K):
    """2 × 2 sum-pooling of a (..., 2l1, 2l2) lag grid that starts at an even lag (−l, l even)."""
    return K.unflatten(-1, (-1, 2)).sum(-1).unflatten(-2, (-1, 2)).sum(-2)


def test_zoh_rate_2_kernel_is_the_2x2_sum_pooling_of_the_rate_1_kernel():
    """ZOH: B̄(2Δ) = (1 + Ā) B̄(Δ), so K_l(2Δ) = K_2l(Δ) + K_2l+1(Δ) along each axis, both halves (< 1e-12)."""
    layer = ssmkit.S4ND(3, 8, l_max=(8, 6), kernel="s4d", init="lin", disc="zoh", trank=2, dt_min=0.1,
                        dt_max=1.0).double()
    fine = _full_kernel_2d(layer, (8, 6))
    coarse = _full_kernel_2d(layer, (4, 3), rate=2.0)
    assert coarse.shape[-2:] == (8, 6)
    assert (coarse - _pool2(fine)).abs().max() < 1e-12 * fine.abs().max()


@pytest.mark.parametrize("kernel,options", [("s4", {}), ("s4d", {"disc": "bilinear"})])
def test_bilinear_rate_2_kernel_is_only_close_to_the_pooled_kernel(kernel, options):
    """Documented: with the bilinear discretization the pooling identity is not exact; the relative error grows with
    Δ·|Im λ| (N = 16, max Δ·|Im λ| = 0.08 at Δ = 1e-3: 2e-4 for S4, 2e-3 for S4D-bilinear; about 100 % at 5)."""
    errors = []
    for dt in (1e-3, 4e-3):
        torch.manual_seed(0)
        layer = ssmkit.S4ND(3, 16, l_max=(16, 16), dt_min=dt, dt_max=dt, kernel=kernel, **options).double()
        fine = _pool2(_full_kernel_2d(layer, (16, 16)))
        coarse = _full_kernel_2d(layer, (8, 8), rate=2.0)
        errors.append(((coarse - fine).norm() / fine.norm()).item())
    assert 1e-9 < errors[0] < 3e-3 and errors[1] > 10 * errors[0]


@pytest.mark.parametrize("kernel", ["s4", "s4d"])
def test_bandlimit_zeroes_c_above_half_the_band_at_the_base_dt_whatever_the_rate(kernel):
    """C_n = 0 exactly where Δ·|Im λ_n|/2π >= bandlimit/2, with Δ the base step: the kernels at rate 1 and 2 are
    those of the unlimited kernel with that C masked."""
    torch.manual_seed(2)
    options = dict(l_max=16, dim=1, kernel=kernel, init="legs", dt_min=0.05, dt_max=0.5)
    limited = ssmkit.S4ND(4, 16, bandlimit=0.3, **options).double()
    plain = ssmkit.S4ND(4, 16, **options).double()
    plain.load_state_dict(limited.state_dict())
    kernel_l, kernel_p = limited.kernels[0], plain.kernels[0]
    dt, Lambda = kernel_l.dt(), kernel_l.Lambda()
    keep = dt[:, None] * Lambda.imag.abs() / (2 * math.pi) < 0.15
    assert keep.any() and (~keep).any()
    assert torch.equal(bandlimit_mask(Lambda, dt, 0.3), keep.double())
    with torch.no_grad():
        C = torch.view_as_complex(kernel_p.C)
        C.mul_(keep)
    for rate, L in [(1.0, 16), (2.0, 8), (0.5, 32)]:
        assert torch.equal(kernel_l.output_C(), kernel_p.output_C())
        assert (kernel_l(L, rate) - kernel_p(L, rate)).abs().max() < 1e-12


def test_bandlimit_mask_ignores_rate_and_follows_dt():
    kernel = ssmkit.S4ND(2, 32, l_max=8, dim=1, kernel="s4d", init="lin", bandlimit=1.0).kernels[0]
    Lambda = kernel.Lambda().detach()
    dt = torch.tensor([0.1, 0.4])
    mask = bandlimit_mask(Lambda, dt, 1.0)
    # init lin: Im λ_n = πn, so Δ·πn/2π < 1/2 keeps n < 1/Δ modes
    assert mask.sum(-1).tolist() == [10.0, 3.0]


def test_rate_keeps_round_l_max_over_rate_samples_per_axis():
    layer = ssmkit.S4ND(2, 8, l_max=(8, 6), kernel="s4d")
    assert layer.kernel_lengths((32, 24), (0.25, 0.25)) == [32, 24]
    assert layer.kernel_lengths((4, 3), (2.0, 2.0)) == [4, 3]
    assert layer.kernel_lengths((40, 5), (1.0, 0.5)) == [8, 5]  # never longer than the input
    y, _ = layer(torch.randn(1, 32, 24, 2), rate=0.25)
    assert y.shape == (1, 32, 24, 2)
    y, _ = layer(torch.randn(1, 4, 12, 2), rate=(2.0, 0.5))
    assert y.shape == (1, 4, 12, 2)


def test_s4nd_trains_under_autocast_and_in_3d():
    layer = ssmkit.S4ND(4, 8, l_max=(3, 4, 5), kernel="s4d", trank=2)
    u = torch.randn(2, 3, 4, 5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = layer(u)
    assert y.shape == u.shape and y.dtype == torch.bfloat16
    y.float().square().mean().backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_s4nd_has_no_recurrent_view():
    layer = ssmkit.S4ND(4, 8, l_max=4)
    for call in (lambda: layer.step(torch.randn(1, 4), None), lambda: layer.default_state(1),
                 lambda: layer(torch.randn(1, 4, 4, 4), torch.zeros(1))):
        with pytest.raises(ValueError, match="S4ND has no recurrent view"):
            call()


@pytest.mark.parametrize("options,match", [
    ({"kernel": "s5"}, "kernel: expected one of"),
    ({"disc": "zoh"}, "disc: the S4 .* kernel is bilinear"),
    ({"l_max": (4, 4), "dim": 3}, r"dim: expected 2"),
    ({"l_max": (4, 0)}, "l_max: expected None, a positive integer or one per axis"),
    ({"trank": 0}, "trank: expected a positive integer"),
    ({"bandlimit": -1.0}, "bandlimit: expected None"),
    ({"output": "none", "channels": 2}, "output='none'"),
])
def test_s4nd_names_a_bad_option(options, match):
    with pytest.raises(ValueError, match=match):
        ssmkit.S4ND(4, 8, **{"l_max": 4, **options})


@pytest.mark.parametrize("u,rate,match", [
    (torch.randn(1, 4, 4), 1.0, r"u: expected shape \(B, L_1, .., L_2, H=4\)"),
    (torch.randn(1, 4, 4, 3), 1.0, r"u: expected shape"),
    (torch.randn(0, 4, 4, 4), 1.0, "non-empty"),
    (torch.randn(1, 4, 4, 4), (1.0, 2.0, 3.0), "rate: expected a number or 2 numbers"),
    (torch.randn(1, 4, 4, 4), math.nan, "rate: expected a positive finite number"),
    (torch.randn(1, 4, 4, 4), 9.0, "leaves no kernel sample"),
    (torch.randn(1, 4, 4, 4, dtype=torch.float64), 1.0, "u: expected dtype torch.float32"),
])
def test_s4nd_names_a_bad_input(u, rate, match):
    with pytest.raises(ValueError, match=match):
        ssmkit.S4ND(4, 8, l_max=4)(u, rate=rate)
