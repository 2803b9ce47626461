"""Every layer and option: forward == step by step == uneven chunks with the state carried."""
import pytest
import torch

from conftest import CHUNKS, rel_err, three_views
import ssmkit

CASES = [
    ("s4", {}),
    ("s4", {"l_max": 64}),
    ("s4", {"init": "legt", "l_max": 40}),
    ("s4", {"init": "fout"}),
    ("s4", {"init": "legs+legt+fout", "channels": 2, "output": "linear"}),
    ("s4", {"real_transform": "relu", "activation": "id", "output": "none"}),
    ("s4d", {}),
    ("s4d", {"init": "lin", "disc": "bilinear"}),
    ("s4d", {"init": "inv", "real_transform": "relu", "channels": 3}),
    ("s4d", {"init": "real", "real_transform": "none", "activation": "silu"}),
    ("s4d", {"init": "random", "l_max": 40}),
    ("dss", {"variant": "exp"}),
    ("dss", {"variant": "softmax", "l_max": 40}),
    ("dss", {"variant": "exp", "learn_dt": False, "channels": 2, "n_ssm": None}),
    ("dlr", {}),
    ("dlr", {"channels": 2, "activation": "tanh"}),
]


def _three_views(layer, dtype, growing_dss=False):
    layer = layer.to(dtype).eval()
    if growing_dss:
        with torch.no_grad():
            layer.kernel.A_real[:, :1] = -0.05  # Re λ = 0.05 > 0: a growing mode in every channel
    u = torch.randn(2, CHUNKS[-1][1], layer.H, dtype=dtype)
    y, none = layer(u)
    assert none is None and y.shape == u.shape
    return three_views(layer, u)


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_forward_step_and_chunks_agree_float64(name, options):
    y, y_step, y_chunk = _three_views(ssmkit.layer(name, d_model=3, d_state=8, **options), torch.float64)
    assert rel_err(y_step, y) < 1e-9
    assert rel_err(y_chunk, y) < 1e-9


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_forward_step_and_chunks_agree_float32(name, options):
    y, y_step, y_chunk = _three_views(ssmkit.layer(name, d_model=3, d_state=8, **options), torch.float32)
    assert rel_err(y_step, y) < 1e-4
    assert rel_err(y_chunk, y) < 1e-4


@pytest.mark.parametrize("options", [{}, {"l_max": 40}], ids=str)
def test_s4_with_an_odd_state_size_keeps_its_pairs_and_its_three_views(options):
    """d_state 7 (the official Liquid-S4 LRA configs'): 3 pairs of the size-7 HiPPO-LegS, its real mode dropped."""
    layer = ssmkit.S4(3, 7, **options)
    assert layer.kernel.N2 == 3
    y, y_step, y_chunk = _three_views(layer, torch.float64)
    assert rel_err(y_step, y) < 1e-9 and rel_err(y_chunk, y) < 1e-9


def test_dss_softmax_views_agree_with_growing_modes():
    layer = ssmkit.DSS(3, 8, variant="softmax", l_max=40)
    y, y_step, y_chunk = _three_views(layer, torch.float64, growing_dss=True)
    assert rel_err(y_step, y) < 1e-9 and rel_err(y_chunk, y) < 1e-9


def test_float32_layer_matches_float64_layer():
    layer = ssmkit.S4(4, 16, l_max=128)
    u = torch.randn(2, 128, 4)
    y32, _ = layer(u)
    y64, _ = layer.double()(u.double())
    assert rel_err(y32.double(), y64) < 1e-4


def test_chunked_view_streams_the_s4_kernel_beyond_its_trained_length():
    """Chunks longer than l_max's C̃ (and a state carried across them) still give the full-sequence output."""
    layer = ssmkit.S4(2, 8, l_max=16).double().eval()
    long = ssmkit.S4(2, 8).double().eval()
    long.load_state_dict({**layer.state_dict(), "kernel.C": torch.view_as_real(layer.kernel.plain_C()).clone()})
    u = torch.randn(1, 48, 2, dtype=torch.float64)
    y_full, _ = long(u)
    state, outs = layer.default_state(1), []
    for a in range(0, 48, 16):
        y, state = layer(u[:, a:a + 16], state)
        outs.append(y)
    assert rel_err(torch.cat(outs, 1), y_full) < 1e-9
