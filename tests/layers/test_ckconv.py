"""CKConv (CCNN's separable flex convolution): MAGNet is its formula, the mask crops where it says, the causal FFT path
is a causal conv1d, the 2-D path a direct double sum, and a resolution change resamples the same continuous kernel."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import rel_err
import ssmkit
from ssmkit.kernels.continuous import ContinuousKernel
from ssmkit.kernels.magnet import MAGNet


def test_magnet_equals_a_direct_evaluation_of_its_formula():
    net = MAGNet(2, out_channels=3, hidden=5, n_layers=3, omega_0=7.0, causal=False).double()
    x = 2 * torch.rand(11, 2, dtype=torch.float64) - 1

    def g(i, p):  # g_i(x) for one position p, unit by unit
        return torch.stack([
            torch.exp(-0.5 * sum((net.gamma[i][f, d] * (p[d] - net.mu[i][f, d])) ** 2 for d in range(2)))
            * torch.sin(sum(net.W[i][f, d] * p[d] for d in range(2)) + net.b[i][f]) for f in range(5)])

    expected = []
    for p in x:
        h = g(0, p)
        for i in range(1, 4):
            h = g(i, p) * (net.U[i - 1].weight @ h + net.U[i - 1].bias)
        expected.append(net.V.weight @ h + net.V.bias)
    assert rel_err(net(x), torch.stack(expected)) < 1e-12


def test_magnet_frequencies_scale_with_omega_0_and_gamma():
    torch.manual_seed(3)
    a = MAGNet(1, 2, hidden=4, omega_0=1.0)
    torch.manual_seed(3)
    b = MAGNet(1, 2, hidden=4, omega_0=100.0)
    for i in range(4):
        assert torch.allclose(b.W[i], 100 * a.W[i])
        assert (a.W[i].abs() <= 2 * math.pi * a.gamma[i] + 1e-6).all()  # U(±1) · 2π ω0 γ


def test_the_causal_mask_starts_at_lag_0_and_crops_as_the_official_code():
    """The official crop (david-knigge/ccnn ckconv/nn/flexconv.py, crop_kernel_positions_causal) starts at index
    ⌊(m − a + 1) / Δ0⌋ of the grid −1, −1 + Δ0, ..., 1: every lag where the mask reaches the threshold and the first
    one under it. At L = 64 and σ = 0.2 that is 15 lags, the last at mask 0.085."""
    kernel = ContinuousKernel(3, 1, 64, causal=True, mask_width=0.2, threshold=0.1).double()
    x, shape = kernel.positions(1.0)
    everything = kernel.axis(1.0)
    assert shape == (len(x),) and x[0, 0] == 1.0 and len(everything) == 64
    root = 1 - 0.2 * math.sqrt(-2 * math.log(0.1))
    assert len(x) == 64 - math.floor((root + 1) / (2 / 63)) == 15
    mask = kernel.mask(x)
    assert (mask[:-1] >= 0.1).all() and mask[-1] < 0.1  # the boundary sample, under the threshold
    assert kernel().shape == (3, len(x))


@pytest.mark.parametrize("size, lags", [(784, 65), (64, 7)])
def test_the_smnist_mask_keeps_the_official_number_of_lags(size, lags):
    """At the sMNIST settings (σ 0.075, threshold 0.1) the official SeparableFlexConv keeps 65 lags of 784 and 7 of
    64 (benchmarks/versus_official.py); the Chang scale of the last MAGNet layer is √(1 / lags)."""
    assert ContinuousKernel(1, 1, size, causal=True).positions(1.0)[1] == (lags,)


def test_the_mask_divides_by_the_official_variance_plus_1e_8():
    """exp(−½ Σ_d (x_d − m_d)² / (σ_d² + 10⁻⁸)), as the official gaussian_mask (ckconv/nn/flexconv.py): 1 % from
    exp(−½ Σ_d (x_d − m_d)² / σ_d²) at σ = 10⁻³."""
    kernel = ContinuousKernel(1, 2, 33, causal=False, mask_width=1e-3).double()
    with torch.no_grad():
        kernel.mask_width.fill_(1e-3)  # not the float32 rounding of 1e-3
    x = torch.tensor([[1e-3, -2e-3]], dtype=torch.float64)
    assert abs(float(kernel.mask(x).detach()) - math.exp(-0.5 * 5e-6 / (1e-6 + 1e-8))) < 1e-12


def test_a_centered_2d_kernel_is_an_odd_grid_cropped_per_axis():
    kernel = ContinuousKernel(2, 2, 33, causal=False, mask_width=0.3).double()
    with torch.no_grad():
        kernel.mask_width[1] = 0.1
    x, shape = kernel.positions(1.0)
    assert all(k % 2 == 1 for k in shape) and shape[0] > shape[1] and kernel().shape == (2, *shape)
    reach = kernel.mask_width * math.sqrt(-2 * math.log(0.1))
    assert (x.abs() <= reach + 1e-12).all()
    assert len(kernel.axis(1.0)) == 33 and kernel.axis(1.0)[16] == 0.0


def test_the_fft_path_equals_conv1d_with_causal_padding():
    layer = ssmkit.CKConv(4, 32, mask_width=0.3, omega_0=30.0).double()
    u = torch.randn(2, 32, 4, dtype=torch.float64)
    K = layer.kernel()  # (H, n) lags
    x = F.pad(u.transpose(1, 2), (K.shape[-1] - 1, 0))
    direct = F.conv1d(x, K.flip(-1)[:, None], groups=4) + layer.bias[:, None]
    expected = layer.mixer(direct.transpose(1, 2))
    y, state = layer(u)
    assert state is None and rel_err(y, expected) < 1e-12


def test_the_1d_layer_is_causal():
    layer = ssmkit.CKConv(3, 40, mask_width=1.0).double()
    u = torch.randn(1, 40, 3, dtype=torch.float64)
    v = u.clone()
    v[:, 25:] = torch.randn(1, 15, 3, dtype=torch.float64)
    y, w = layer(u)[0], layer(v)[0]
    assert rel_err(w[:, :25], y[:, :25]) < 1e-14  # the FFT leaves rounding, no more
    assert rel_err(w[:, 25:], y[:, 25:]) > 1e-3


@pytest.mark.parametrize("X, Y", [(6, 5), (3, 2)])  # (3, 2): a kernel wider than the image
def test_the_2d_layer_equals_a_direct_double_sum(X, Y):
    layer = ssmkit.CKConv(2, dim=2, kernel_size=9, mask_width=0.5, omega_0=5.0).double()
    u = torch.randn(1, X, Y, 2, dtype=torch.float64)
    K = layer.kernel()
    m1, m2 = K.shape[1] // 2, K.shape[2] // 2
    conv = torch.zeros(1, X, Y, 2, dtype=torch.float64)
    for i in range(X):
        for j in range(Y):
            for a in range(-m1, m1 + 1):
                for b in range(-m2, m2 + 1):
                    if 0 <= i + a < X and 0 <= j + b < Y:
                        conv[0, i, j] += K[:, a + m1, b + m2] * u[0, i + a, j + b]
    expected = layer.mixer(conv + layer.bias)
    assert rel_err(layer(u)[0], expected) < 1e-12


@pytest.mark.parametrize("dim, causal, size", [(1, True, 33), (2, False, 17)])
def test_twice_the_resolution_samples_the_same_kernel_between_the_old_samples(dim, causal, size):
    """rate 1/2: the new grid holds every old position (and one between each two); there the kernel is the old one
    times 2^−D, the cell volume ratio."""
    kernel = ContinuousKernel(2, dim, size, causal=causal, mask_width=0.4, omega_0=10.0).double()
    old, fine = kernel(1.0), kernel(0.5)
    if causal:  # lag j of the old grid is lag 2j of the new one
        shared = fine[:, 0:2 * old.shape[1] - 1:2]
    else:  # offset i of the old grid is offset 2i of the new one, from the centre
        m, c = old.shape[1] // 2, fine.shape[1] // 2
        shared = fine[:, c - 2 * m:c + 2 * m + 1:2, c - 2 * m:c + 2 * m + 1:2]
    assert shared.shape == old.shape and rel_err(shared, old * 0.5 ** dim) < 1e-12
    assert fine.shape[1] in (2 * old.shape[1] - 1, 2 * old.shape[1], 2 * old.shape[1] + 1)


def test_resampled_outputs_converge_to_the_continuous_convolution():
    """The resolution change in use: a smooth signal sampled 2, 4 and 8 times as densely, at rates 1/2, 1/4, 1/8 (a
    low ω0, so the kernel is smooth at every spacing). Each output is a Riemann sum of the same continuous
    convolution, first order in the spacing: at the shared positions the error to the finest (spacing Δ/8) goes
    as Δ_s − Δ/8, i.e. as 7 : 3 : 1 for spacings Δ, Δ/2, Δ/4."""
    layer = ssmkit.CKConv(2, 64, mask_width=0.3, omega_0=0.5).double()
    t = torch.linspace(0, 1, 8 * 63 + 1, dtype=torch.float64)
    signal = torch.stack([torch.sin(6 * t), torch.cos(4 * t)], -1)[None]
    finest = layer(signal, rate=1 / 8)[0]
    errors = [rel_err(layer(signal[:, ::s], rate=s / 8)[0][:, ::8 // s], finest[:, ::8]) for s in (8, 4, 2)]
    assert errors[0] < 0.05
    assert errors[1] / errors[0] == pytest.approx(3 / 7, rel=0.15)
    assert errors[2] / errors[1] == pytest.approx(1 / 3, rel=0.15)


def test_there_is_no_recurrent_view():
    layer = ssmkit.CKConv(4, 16)
    for call in (lambda: layer.step(torch.randn(1, 4)), lambda: layer.default_state(1),
                 lambda: layer(torch.randn(1, 16, 4), state=torch.zeros(1))):
        with pytest.raises(ValueError, match="no recurrent view"):
            call()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="l_max: a causal CKConv's kernel spans the training length"):
        ssmkit.CKConv(4)
    with pytest.raises(ValueError, match="size: expected an integer >= 2 .odd"):
        ssmkit.CKConv(4, dim=2, kernel_size=32)
    with pytest.raises(ValueError, match="causal: only a 1-D kernel is causal"):
        ssmkit.CKConv(4, 16, dim=2, causal=True)
    with pytest.raises(ValueError, match=r"u: expected channels-last input \(B, 2 spatial sizes, H=4\)"):
        ssmkit.CKConv(4, dim=2)(torch.randn(1, 8, 4))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_causal_crop_counts_the_official_lags_for_every_width_in_float32_too(dtype):
    """The number of lags kept is the official index's, 64 − ⌊(root + 1)/Δ0⌋ with root = 1 − σ√(−2 ln 0.1), for
    widths σ swept over (0.01, 0.5): counted by index, not by comparing float32 positions with the bound."""
    kernel = ContinuousKernel(1, 1, 64, causal=True).to(dtype)
    for sigma in torch.linspace(0.01, 0.5, 600).tolist():
        with torch.no_grad():
            kernel.mask_width.fill_(sigma)
        width = float(kernel.mask_width[0].detach())  # as stored, in the kernel's dtype
        root = 1 - width * math.sqrt(-2 * math.log(0.1))
        assert kernel.positions(1.0)[1] == (64 - math.floor((root + 1) / (2 / 63)),), sigma
