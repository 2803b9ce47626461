"""SGConv: kernel length and scales, decay between scales, O(d log L) parameters, convolution only."""
import math

import pytest
import torch

from conftest import rel_err
import ssmkit
from ssmkit.kernels.sgconv import SGConvKernel
from ssmkit.ops import fftconv
from ssmkit.train import param_groups


@pytest.mark.parametrize("l_max, d, scales", [(64, 64, 1), (65, 64, 2), (1000, 16, 7), (4096, 64, 7)])
def test_number_of_scales_covers_l_max(l_max, d, scales):
    k = SGConvKernel(2, l_max, kernel_dim=d)
    assert k.n_scales == scales == math.ceil(math.log2(l_max / d)) + 1 if l_max > d else k.n_scales == 1
    assert d * 2 ** (k.n_scales - 1) >= l_max
    assert k(l_max).shape == (1, 2, l_max)


def test_each_scale_is_the_previous_one_times_decay():
    k = SGConvKernel(1, 512, kernel_dim=8, decay=0.5).double()
    with torch.no_grad():
        for p in k.pieces:
            p.fill_(3.0)  # constant sub-kernels: interpolation keeps them constant, so only the decay separates scales
    K = k(512)[0, 0]
    starts = [0, 8] + [8 * 2 ** (i - 1) for i in range(2, k.n_scales)]
    levels = [K[s].item() for s in starts]
    assert levels[0] == pytest.approx(3 / k.norm[0, 0, 0].item())  # normalized by the initial kernel's norm
    assert all(b / a == pytest.approx(0.5) for a, b in zip(levels, levels[1:]))
    for i in range(2, k.n_scales):
        length = 8 * 2 ** (i - 1)
        assert torch.allclose(K[starts[i]:starts[i] + length], torch.full((length,), levels[i], dtype=torch.float64))


def test_parameters_grow_with_log_length():
    counts = [sum(p.numel() for p in SGConvKernel(4, 2 ** e, kernel_dim=32).parameters()) for e in (10, 15, 20)]
    assert counts == [4 * 32 * (e - 5 + 1) for e in (10, 15, 20)]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_sgconv_layer_is_the_fft_convolution_with_its_kernel(bidirectional):
    layer = ssmkit.SGConv(3, 100, kernel_dim=16, bidirectional=bidirectional, activation="id", output="none").double()
    u = torch.randn(2, 100, 3, dtype=torch.float64)
    K = layer.kernel(100)
    k, k_rev = (K[:1], K[1:]) if bidirectional else (K, None)
    x = u.transpose(1, 2)
    expected = (fftconv(x, k, k_rev) + layer.D[..., None] * x[:, None])[:, 0].transpose(1, 2)
    assert rel_err(layer(u)[0], expected) < 1e-12


def test_sgconv_has_no_recurrent_view_and_checks_its_options():
    layer = ssmkit.SGConv(3, 32)
    for call in (lambda: layer.default_state(1), lambda: layer.step(torch.randn(1, 3), torch.zeros(1, 3, 4)),
                 lambda: layer(torch.randn(1, 8, 3), torch.zeros(1, 3, 4, dtype=torch.complex64))):
        with pytest.raises(ValueError, match="no recurrent view"):
            call()
    with pytest.raises(ValueError, match="l_max"):
        ssmkit.SGConv(3, None)
    with pytest.raises(ValueError, match="decay"):
        ssmkit.SGConv(3, 32, decay=1.5)
    with pytest.raises(ValueError, match="kernel has l_max=32 positions, got 33"):
        layer(torch.randn(1, 33, 3))


def test_the_normalizer_is_the_norm_of_the_whole_initial_kernel_and_stays_fixed():
    """As the official GConv's kernel_norm: the norm of the full concatenated kernel (all S scales, not truncated to
    L), per channel, a buffer without gradient that training does not move."""
    torch.manual_seed(0)
    layer = ssmkit.SGConv(4, 300, kernel_dim=16).double()
    k = layer.kernel
    full = k.full_kernel()
    assert full.shape[-1] == 16 * 2 ** (k.n_scales - 1) == 512
    nu = k.norm.clone()
    assert torch.allclose(nu, full.norm(dim=-1, keepdim=True)) and "norm" in dict(k.named_buffers())
    assert rel_err(k(300), full[..., :300] / nu) < 1e-15
    opt = torch.optim.AdamW(param_groups(layer, lr=1e-2, weight_decay=0.1))
    layer(torch.randn(2, 300, 4, dtype=torch.float64))[0].square().sum().backward()
    opt.step()
    assert torch.equal(k.norm, nu)
    kernel_group = [g for g in opt.param_groups if any(p is k.pieces[0] for p in g["params"])][0]
    assert kernel_group["lr"] == 1e-3 and kernel_group["weight_decay"] == 0.1  # official: lr 1e-3, ordinary decay
    assert isinstance(layer.output, torch.nn.Linear)  # the official output map: Linear, no GLU


def test_a_decay_per_channel_spreads_the_official_multipliers_linearly():
    """decay=[α_first, α_last]: channel h has α_h = 1/m_h, m = linspace(1/α_first, 1/α_last, H) (the official
    decay_min..decay_max); each channel's kernel is the scalar-decay kernel of its α_h on the same sub-kernels."""
    spread = SGConvKernel(4, 256, channels=2, kernel_dim=8, decay=[0.5, 0.25]).double()
    alphas = 1 / torch.linspace(2.0, 4.0, 4, dtype=torch.float64)
    assert torch.allclose(spread.decays().flatten(), alphas)
    assert not any("decay" in name for name in spread.state_dict())  # from the constructor argument
    with torch.no_grad():  # both normalizers in float64
        spread.norm.copy_(spread.full_kernel().norm(dim=-1, keepdim=True))
    for h, alpha in enumerate(alphas.tolist()):
        alone = SGConvKernel(4, 256, channels=2, kernel_dim=8, decay=alpha).double()
        with torch.no_grad():
            for p, q in zip(alone.pieces, spread.pieces):
                p.copy_(q)
            alone.norm.copy_(alone.full_kernel().norm(dim=-1, keepdim=True))
        assert rel_err(spread(256)[:, h], alone(256)[:, h]) < 1e-14
    with pytest.raises(ValueError, match=r"decay: expected a factor in \(0, 1\), or \[first, last\]"):
        SGConvKernel(4, 256, decay=[0.5, 1.5])


def test_a_per_channel_decay_survives_a_build_on_the_meta_device():
    """Built on the meta device, materialized (to_empty) and loaded, the layer is the one it was saved from: the
    decays come from the constructor's numbers, not from an uninitialized buffer."""
    layer = ssmkit.SGConv(4, 64, kernel_dim=8, decay=[0.5, 0.25]).double()
    with torch.device("meta"):
        empty = ssmkit.SGConv(4, 64, kernel_dim=8, decay=[0.5, 0.25])
    empty = empty.to_empty(device="cpu").double()
    empty.load_state_dict(layer.state_dict())
    u = torch.randn(2, 64, 4, dtype=torch.float64)
    assert torch.equal(empty(u)[0], layer(u)[0])


def _constant_pieces(k: SGConvKernel) -> None:
    """Sub-kernel i all (i + 1): interpolation keeps each constant, so every scale's level and span can be read."""
    with torch.no_grad():
        for i, p in enumerate(k.pieces):
            p.fill_(i + 1.0)


def test_sum_mode_adds_every_scale_from_lag_0_each_upsampled_by_two_to_the_i():
    """combine='sum' (the official 'sum' modes): piece i, upsampled ×2^i (2^(i+s) with init_scale s), padded to the
    longest and added."""
    k = SGConvKernel(1, 64, kernel_dim=8, decay=0.5, combine="sum").double()
    _constant_pieces(k)
    K = k.full_kernel()[0, 0]
    assert K.shape == (64,) and k.n_scales == 4
    want = torch.zeros(64, dtype=torch.float64)
    for i in range(4):
        want[:8 * 2 ** i] += (i + 1.0) * 0.5 ** i
    assert torch.allclose(K, want)


def test_nearest_interpolation_repeats_each_tap():
    k = SGConvKernel(1, 64, kernel_dim=4, interpolation="nearest").double()
    K = k.full_kernel()[0, 0]
    last = k.pieces[-1][0, 0].detach()
    factor = 2 ** (k.n_scales - 2)
    assert torch.equal(K[-4 * factor:], 0.5 ** (k.n_scales - 1) * last.repeat_interleave(factor))


@pytest.mark.parametrize("combine", ["cat", "sum"])
def test_init_scale_drops_the_finest_scales_and_still_covers_l_max(combine):
    """init_scale s: S − s scales, each upsampled 2^s more, the kernel still d·2^(S−1) = 64 long."""
    k = SGConvKernel(1, 64, kernel_dim=8, combine=combine, init_scale=2).double()
    assert k.n_scales == 2 and k.full_kernel().shape[-1] == 64
    _constant_pieces(k)
    K = k.full_kernel()[0, 0]
    if combine == "cat":  # piece 0: 8·4 taps of 1, piece 1: 8·4 taps of 2·0.5
        assert torch.allclose(K, torch.cat([torch.ones(32), torch.ones(32)]).double())
    else:  # piece 0 ×4 (32 taps), piece 1 ×8 (64 taps)
        assert torch.allclose(K, torch.cat([torch.full((32,), 2.0), torch.ones(32)]).double())
    with pytest.raises(ValueError, match=r"init_scale: expected an integer in \[0, 4\)"):
        SGConvKernel(1, 64, kernel_dim=8, init_scale=4)


def test_cos_init_starts_each_channel_as_a_cosine_of_a_permuted_frequency():
    torch.manual_seed(0)
    k = SGConvKernel(5, 32, channels=2, kernel_dim=16, init="cos").double()
    t = torch.linspace(0, 2 * math.pi, 16, dtype=torch.float64)
    for piece in k.pieces:
        waves = piece.detach()[0]
        assert torch.equal(piece.detach()[0], piece.detach()[1])
        frequencies = sorted(min(range(5), key=lambda j: float((waves[h] - torch.cos(j * t)).abs().max()))
                             for h in range(5))
        assert frequencies == list(range(5))
        assert all(float((waves[h] - torch.cos(j * t)).abs().min()) < 1e-6 for h, j in enumerate(frequencies))


@pytest.mark.parametrize("train", [True, False])
def test_power_decay_weighs_every_scale_one_and_decays_as_a_power_of_the_lag(train):
    """power_decay (the official 'learnable' modes; train_power=False its 'fixed'): K_l (l + 1)^(−p_h), p_h uniform
    in [p_min, p_max], every piece weighing 1; p trains at kernel_lr unless fixed; decay must be None with it."""
    torch.manual_seed(0)
    k = SGConvKernel(3, 64, kernel_dim=8, decay=None, power_decay=[1.0, 3.0], train_power=train).double()
    assert ((1.0 <= k.power) & (k.power <= 3.0)).all() and isinstance(k.power, torch.nn.Parameter) == train
    _constant_pieces(k)
    K = k.full_kernel()
    plain = torch.cat([torch.full((8,), 1.0), torch.full((8,), 2.0), torch.full((16,), 3.0),
                       torch.full((32,), 4.0)]).double()
    lags = torch.arange(1, 65, dtype=torch.float64)
    assert torch.allclose(K[0], plain * lags ** -k.power.detach()[:, None])
    if train:
        K.sum().backward()
        assert k.power.grad is not None and k.power.grad.abs().sum() > 0
        layer = ssmkit.SGConv(3, 64, kernel_dim=8, decay=None, power_decay=2.0)
        groups = param_groups(layer, lr=0.01, weight_decay=0.1)
        assert [g["lr"] for g in groups if any(p is layer.kernel.power for p in g["params"])] == [1e-3]
    with pytest.raises(ValueError, match="decay: power_decay replaces the decay between scales"):
        SGConvKernel(3, 64, power_decay=2.0)
    with pytest.raises(ValueError, match=r"power_decay: expected an exponent > 0"):
        SGConvKernel(3, 64, decay=None, power_decay=[1.0, -1.0])
    with pytest.raises(ValueError, match="combine: expected one of"):
        SGConvKernel(3, 64, combine="mean")
