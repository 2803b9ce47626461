"""Tied dropout (one mask per sample and channel for all positions, the official S4 DropoutNd with tie=True) through
the layers and models that take tie_dropout."""
import pytest
import torch

import ssmkit
from ssmkit.layers.dropout import TiedDropout, dropout
from ssmkit.models import ImageModel, SequenceModel


def test_tied_dropout_zeroes_whole_channels_and_keeps_the_mean():
    torch.manual_seed(0)
    drop = TiedDropout(0.5).train()
    y = drop(torch.ones(64, 30, 16))
    dropped = y == 0
    assert torch.equal(dropped.all(1), dropped.any(1))  # a (sample, channel) is zeroed at every position or none
    assert set(y.unique().tolist()) == {0.0, 2.0} and abs(y.mean().item() - 1.0) < 0.1
    image = drop(torch.ones(8, 5, 6, 16))  # (B, X, Y, H): one draw for the whole image
    assert torch.equal((image == 0).flatten(1, 2).all(1), (image == 0).flatten(1, 2).any(1))
    step = drop(torch.ones(4000, 3))  # one position: per entry
    assert 0.4 < (step == 0).float().mean() < 0.6
    x = torch.randn(2, 5, 3)
    assert torch.equal(drop.eval()(x), x)
    assert isinstance(dropout(0.0, tied=True), torch.nn.Identity) and isinstance(dropout(0.1), torch.nn.Dropout)
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\), got 1.0"):
        dropout(1.0)


@pytest.mark.parametrize("name", ["s4", "s4d", "dss", "dlr", "ema", "sgconv", "liquid_s4", "s5"])
def test_every_ssm_layer_ties_its_dropout_across_positions(name):
    torch.manual_seed(0)
    layer = ssmkit.layer(name, d_model=8, dropout=0.5, tie_dropout=True, **({"l_max": 40} if name == "sgconv" else {}))
    layer.train()
    probe = [m for m in layer.modules() if isinstance(m, TiedDropout)]
    assert len(probe) == 1
    seen = []
    probe[0].register_forward_hook(lambda m, inputs, out: seen.append((inputs[0], out)))
    layer(torch.randn(3, 40, 8))
    x, y = seen[0]
    kept, dropped = y != 0, (y == 0) & (x != 0)  # (GELU may give an exact 0: neither)
    assert not (kept.any(1) & dropped.any(1)).any() and dropped.any()  # per (sample, channel): all positions or none
    assert torch.allclose(y[kept], 2 * x[kept])


def test_models_tie_the_residual_dropout_and_hand_the_option_down():
    model = SequenceModel(3, 5, layer="s4d", d_model=8, n_layers=2, dropout=0.2, tie_dropout=True)
    assert isinstance(model.dropout, TiedDropout)
    assert all(isinstance(layer.dropout, TiedDropout) for layer in model.layers)
    own = SequenceModel(3, 5, layer="s4d", d_model=8, n_layers=1, dropout=0.2, tie_dropout=True,
                        layer_options={"tie_dropout": False})
    assert isinstance(own.layers[0].dropout, torch.nn.Dropout) and isinstance(own.dropout, TiedDropout)
    image = ImageModel(3, 5, d_model=8, n_layers=1, dropout=0.2, tie_dropout=True,
                       layer_options={"d_state": 8, "l_max": [6, 6], "dropout": 0.2})
    assert isinstance(image.dropout, TiedDropout) and isinstance(image.layers[0].dropout, TiedDropout)
    image.train()(torch.randn(2, 6, 6, 3)).sum().backward()


@pytest.mark.parametrize("name", ["s4", "s4d", "dss", "dlr", "ema", "sgconv", "liquid_s4"])
def test_conv_dropout_drops_the_convolution_before_the_activation(name):
    """conv_dropout (the current official S4Block's FFTConv dropout): with output 'none', y = m₂ ⊙ 2·act(2·m₁ ⊙ z)
    with z = K ∗ u + D u (act(z) is the layer in eval mode), m₁ element-wise (the official FFTConv gets the block's
    rate but not its tie_dropout) and m₂ tied across positions: a channel is zero everywhere or nowhere by m₂, and
    within a kept channel about half the entries survive m₁."""
    torch.manual_seed(0)
    options = dict(d_model=16, dropout=0.5, tie_dropout=True, conv_dropout=True, output="none",
                   **({"l_max": 40} if name == "sgconv" else {}))
    layer = ssmkit.layer(name, **options).double().eval()
    u = torch.randn(32, 40, 16, dtype=torch.float64)
    probe = []
    layer.activation.register_forward_hook(lambda m, inputs, out: probe.append(inputs[0]))
    z_act = layer(u)[0]
    z, act = probe[-1], layer.activation
    assert torch.allclose(act(z), z_act)
    y = layer.train()(u)[0]
    channel = (y != 0).any(1, keepdim=True).expand_as(y)  # kept by the tied m₂
    entry = y != 0
    assert torch.allclose(y, entry * 2 * act(2 * z))
    assert 0.35 < channel.double().mean() < 0.65 and 0.4 < entry[channel].double().mean() < 0.6
    with pytest.raises(ValueError, match="conv_dropout: expected a bool"):
        ssmkit.layer(name, **{**options, "conv_dropout": 1})
