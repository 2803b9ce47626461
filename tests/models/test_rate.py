import math

import pytest
import torch

from ssmkit.models import SequenceModel


@pytest.mark.parametrize("layer", ["s4", "s4d", "dss", "s5", "liquid_s4"])
def test_rate_two_on_half_rate_input_reproduces_the_full_rate_model(layer):
    """The zero-shot resolution change: the same continuous-time model reads a signal sampled half as often when its
    kernels are sampled at 2Δ; without the rate change the outputs are off by several percent."""
    torch.manual_seed(0)
    model = SequenceModel(1, 3, layer=layer, d_model=16, n_layers=2).double().eval()
    t = torch.linspace(0, 1, 2048, dtype=torch.float64)
    x = torch.stack([torch.sin(2 * math.pi * 3 * t + phase) for phase in (0.0, 1.0, 2.0)])[..., None]
    full, half, naive = model(x), model(x[:, ::2], rate=2.0), model(x[:, ::2])
    # Liquid-S4's input products u_k u_{k−1} span one sample, twice the time at half rate: only its S4 part resamples
    tol, gain = (1e-2, 3) if layer == "liquid_s4" else (5e-3, 5)
    assert (half - full).norm() / full.norm() < tol
    assert (naive - full).norm() / full.norm() > gain * (half - full).norm() / full.norm()
    assert torch.equal(model(x, rate=1.0), full)


def test_rate_needs_a_resamplable_layer_in_every_block():
    model = SequenceModel(1, 3, layer="s4d", d_model=16, n_layers=2, attention_every=2)
    with pytest.raises(ValueError, match="rate: block 1 .*MultiHeadAttention"):
        model(torch.randn(2, 32, 1), rate=2.0)
