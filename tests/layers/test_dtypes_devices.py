"""One dtype rule for every layer (SSM math in float32/complex64, float64 kept, y in u's dtype; a mismatched input is
a clear error outside autocast), and device=/dtype= as torch.nn layers take them, the meta device included."""
import copy

import pytest
import torch

from conftest import rel_err
import ssmkit
from ssmkit.models import SequenceModel
from ssmkit.train import param_groups

OPTIONS = {"s4": {}, "s4d": {}, "dss": {"l_max": 32}, "dlr": {}, "s5": {}, "liquid_s4": {}, "ema": {}, "attention": {},
           "mega": {"chunk_size": 8}, "gss": {"d_state": 16}, "sgconv": {"l_max": 32}}
NAMES = sorted(OPTIONS)


def _layer(name, **kw):
    return ssmkit.layer(name, d_model=8, **OPTIONS[name], **kw).eval()


def _float32_copy(layer):
    return copy.deepcopy(layer).float()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype, tol", [(torch.bfloat16, 1.5e-2), (torch.float16, 2e-3), (torch.float64, 1e-5)])
def test_a_layer_cast_to_a_dtype_takes_and_returns_that_dtype(name, dtype, tol):
    cast = _layer(name).to(dtype)
    u = torch.randn(2, 32, 8).to(dtype)
    expected, _ = _float32_copy(cast)(u.float())  # the same (rounded) weights and input, computed in float32
    y, _ = cast(u)
    assert y.dtype == dtype and rel_err(y.float(), expected) < tol
    if name != "sgconv":  # no recurrent view
        y_t, state = cast.step(u[:, 0], cast.default_state(2))
        assert y_t.dtype == dtype and rel_err(y_t.float(), expected[:, 0]) < tol


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_whole_model_runs_after_to_half_precision(dtype):
    model = SequenceModel(3, 5, layer="s4", d_model=16, n_layers=2, ffn_mult=2).eval().to(dtype)
    x = torch.randn(4, 32, 3).to(dtype)
    out = model(x)
    assert out.dtype == dtype and rel_err(out.float(), _float32_copy(model)(x.float())) < 1.5e-2


@pytest.mark.parametrize("name", NAMES)
def test_an_input_of_another_dtype_is_named_outside_autocast_and_accepted_inside(name):
    layer = _layer(name)
    for dtype in (torch.float64, torch.bfloat16):
        expected = rf"u: expected dtype torch.float32 \(the layer's parameters\), got {dtype}"
        with pytest.raises(ValueError, match=expected):
            layer(torch.randn(2, 16, 8, dtype=dtype))
        if name != "sgconv":
            with pytest.raises(ValueError, match="u: expected dtype torch.float32"):
                layer.step(torch.randn(2, 8, dtype=dtype), layer.default_state(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = layer(torch.randn(2, 16, 8, dtype=torch.bfloat16))
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_layers_take_device_and_dtype_and_build_on_the_meta_device(name):
    double = _layer(name, dtype=torch.float64)
    assert {t.dtype for t in double.state_dict().values() if t.is_floating_point()} == {torch.float64}
    with torch.device("meta"):
        ambient = _layer(name)
    explicit = _layer(name, device="meta", dtype=torch.bfloat16)
    assert {t.device.type for t in ambient.state_dict().values()} == {"meta"}
    assert {(t.device.type, t.dtype) for t in explicit.state_dict().values() if t.is_floating_point()} == {
        ("meta", torch.bfloat16)}


def test_a_model_built_on_meta_loads_real_weights_and_keeps_its_ssm_optimizer_group():
    torch.manual_seed(1)
    real = SequenceModel(3, 5, layer="s4", d_model=8, n_layers=2).eval()
    with torch.device("meta"):
        empty = SequenceModel(3, 5, layer="s4", d_model=8, n_layers=2)
    empty.load_state_dict(real.state_dict(), assign=True)
    x = torch.randn(2, 16, 3)
    assert torch.equal(empty.eval()(x), real(x))
    ssm_lrs = [g["lr"] for g in param_groups(empty, 0.01, 0.1) if g["weight_decay"] == 0.0]
    assert 1e-3 in ssm_lrs  # the SSM parameters' own lr survives tensors replaced by assign=True


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error is for a torch without a CUDA GPU")
def test_asking_for_cuda_without_a_gpu_is_one_line_naming_device():
    for build in (lambda: ssmkit.S4D(8, device="cuda"), lambda: SequenceModel(1, 2, device="cuda:0")):
        with pytest.raises(ValueError, match=r"^device: cuda(:0)? asked, but this torch sees no CUDA GPU"):
            build()
