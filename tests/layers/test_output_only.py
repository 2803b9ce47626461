"""A layer where one tensor out is expected: OutputOnly(layer) inside nn.Sequential."""
import torch
from torch import nn

import ssmkit
from ssmkit.train import param_groups


def test_output_only_puts_a_layer_in_nn_sequential():
    layer = ssmkit.S4D(16)
    net = nn.Sequential(nn.Linear(3, 16), ssmkit.OutputOnly(layer), nn.GELU(), nn.Linear(16, 2))
    x = torch.randn(2, 10, 3)
    assert torch.equal(net(x), net[3](net[2](layer(net[0](x))[0])))
    ssm_groups = [g for g in param_groups(net, 1e-2, 0.1) if g["lr"] == 1e-3]
    assert len(ssm_groups) == 1 and len(ssm_groups[0]["params"]) == 4  # log_dt, A_real, A_imag, B keep their lr


def test_output_only_passes_keyword_options_through():
    layer = ssmkit.S4D(4).double()
    u = torch.randn(1, 8, 4, dtype=torch.float64)
    assert torch.equal(ssmkit.OutputOnly(layer)(u, rate=2.0), layer(u, rate=2.0)[0])


def test_output_only_passes_a_plain_tensor_through_whole():
    linear = nn.Linear(3, 3)
    x = torch.randn(2, 3)
    assert torch.equal(ssmkit.OutputOnly(linear)(x), linear(x))  # (2, 3), not the first row (3,)
