"""ImageModel: the isotropic S4ND network, against SequenceModel in 1-D and against its own low-resolution output under
a resolution change; the conv baseline."""
import pytest
import torch
import torch.nn.functional as F

import ssmkit
from ssmkit.models import ImageModel, SequenceModel


def test_1d_image_model_equals_the_sequence_model_with_bidirectional_s4():
    """Same backbone (prenorm LayerNorm residuals, final norm, mean pool): with S4ND along one axis it is
    SequenceModel over bidirectional S4 layers with the same weights (float64, < 1e-12)."""
    options = dict(d_state=8, l_max=16, n_ssm=1, dt_min=0.05, dt_max=0.5)
    image = ImageModel(3, 5, d_model=8, n_layers=2, dim=1, layer_options=options).double().eval()
    sequence = SequenceModel(3, 5, layer="s4", d_model=8, n_layers=2,
                             layer_options={**options, "bidirectional": True}).double().eval()
    sequence.load_state_dict({k.replace("kernels.0.", "kernel."): v for k, v in image.state_dict().items()})
    x = torch.randn(4, 16, 3, dtype=torch.float64)
    assert (image(x) - sequence(x)).abs().max() < 1e-12


def test_a_zoh_s4nd_layer_at_rate_half_on_a_2x_nearest_upsampled_image_repeats_its_output():
    """Each pixel repeated 2 × 2 and the kernel sampled at Δ/2 (the ZOH pooling identity): the output at the odd
    positions is the output on the original image, exactly (float64, < 1e-12)."""
    layer = ssmkit.S4ND(4, 8, l_max=(6, 5), kernel="s4d", init="lin", disc="zoh", dt_min=0.1, dt_max=1.0).double()
    u = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    fine = u.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    coarse, _ = layer(u)
    upsampled, _ = layer(fine, rate=0.5)
    assert (upsampled[:, 1::2, 1::2] - coarse).abs().max() < 1e-12


def test_image_model_runs_at_another_resolution_with_rate():
    model = ImageModel(1, 10, d_model=8, n_layers=2, layer_options=dict(d_state=8, l_max=(8, 8), kernel="s4d"))
    assert model(torch.randn(3, 8, 8, 1)).shape == (3, 10)
    assert model(torch.randn(3, 32, 32, 1), rate=0.25).shape == (3, 10)
    assert model(torch.randn(3, 4, 8, 1), rate=(2.0, 1.0)).shape == (3, 10)


def test_the_conv_baseline_is_gelu_of_a_same_padded_3x3_convolution():
    model = ImageModel(2, 3, layer="conv", d_model=4, n_layers=1).double()
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    conv = model.layers[0].conv
    expected = F.gelu(F.conv2d(x.movedim(-1, 1), conv.weight, conv.bias, padding=1)).movedim(1, -1)
    assert conv.weight.shape == (4, 4, 3, 3)
    assert torch.allclose(model.layers[0](x)[0], expected, atol=1e-12)
    with pytest.raises(ValueError, match="rate: a conv network has no continuous kernel"):
        model(torch.randn(1, 6, 5, 2, dtype=torch.float64), rate=0.5)


@pytest.mark.parametrize("build,match", [
    (lambda: ImageModel(1, 2, layer="attention"), "layer: expected one of"),
    (lambda: ImageModel(1, 2, layer="conv", layer_options={"kernel_size": 4}), "kernel_size: expected an odd"),
    (lambda: ImageModel(1, 2, layer="conv", dim=4), "dim: a conv layer takes 1, 2 or 3"),
    (lambda: ImageModel(1, 2, dropout=1.0), "dropout: expected a probability"),
])
def test_image_model_names_a_bad_option(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_image_model_names_a_bad_input():
    model = ImageModel(1, 2, d_model=4, n_layers=1, layer_options=dict(d_state=4, l_max=4))
    with pytest.raises(ValueError, match=r"x: expected \(B, L_1, .., L_2, d_input\) channels last"):
        model(torch.randn(2, 16, 1))
    with pytest.raises(ValueError, match="lengths: an image model reads whole grids"):
        model(torch.randn(2, 4, 4, 1), torch.tensor([4, 4]))
