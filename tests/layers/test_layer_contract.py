"""The layer contract: shapes, bidirectional semantics, gradients, errors, step cache, registry, param groups."""
import pytest
import torch

from conftest import rel_err
import ssmkit
from ssmkit.train import param_groups

NAMES = ["s4", "s4d", "dss", "dlr"]


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_layer_is_the_causal_plus_anticausal_convolution(name):
    layer = ssmkit.layer(name, d_model=2, d_state=8, bidirectional=True, activation="id", output="none").double()
    L = 12
    u = torch.randn(1, L, 2, dtype=torch.float64)
    K = layer.kernel(L)  # (2, H, L): causal half, then anti-causal half
    y, _ = layer(u)
    x = u[0].T  # (H, L)
    expected = torch.zeros(2, L, dtype=torch.float64)
    for t in range(L):
        for s in range(L):
            expected[:, t] += K[0, :, t - s] * x[:, s] if s <= t else K[1, :, s - t - 1] * x[:, s]
    expected += layer.D[0, :, None].detach() * x
    assert rel_err(y[0].T, expected) < 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_layers_refuse_recurrent_views(name):
    layer = ssmkit.layer(name, d_model=2, d_state=8, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        layer.default_state(1)
    with pytest.raises(ValueError, match="bidirectional"):
        layer.step(torch.randn(1, 2), torch.zeros(1, 2, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="bidirectional"):
        layer(torch.randn(1, 5, 2), torch.zeros(1, 2, 4, dtype=torch.complex64))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("with_state", [False, True])
def test_gradients_reach_every_parameter(name, with_state):
    layer = ssmkit.layer(name, d_model=3, d_state=8, l_max=32, channels=2)
    u = torch.randn(2, 32, 3)
    state = layer.default_state(2) if with_state else None
    if with_state:
        state = state + torch.randn_like(state)
    y, _ = layer(u, state)
    y.square().mean().backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


def test_gradients_flow_through_step_too():
    layer = ssmkit.S4D(3, 8)
    state = layer.default_state(2)
    total = 0
    for t in range(5):
        y, state = layer.step(torch.randn(2, 3), state)
        total = total + y.sum()
    total.backward()
    assert layer.kernel.log_dt.grad is not None and layer.kernel.log_dt.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_get_errors_that_name_the_argument(name):
    layer = ssmkit.layer(name, d_model=4, d_state=8, l_max=16)
    bad = [
        (torch.randn(16, 4), r"u: expected shape \(B, L, H=4\), got \(16, 4\)"),
        (torch.randn(2, 16, 5), r"u: expected shape \(B, L, H=4\), got \(2, 16, 5\)"),
        (torch.randint(0, 5, (2, 16, 4)), "u: expected a floating-point dtype, got torch.int64"),
        (torch.randn(2, 0, 4), "L >= 1"),
        ([[1.0]], "u: expected a tensor"),
    ]
    for u, match in bad:
        with pytest.raises(ValueError, match=match):
            layer(u)
    with pytest.raises(ValueError, match=rf"state: expected a complex tensor of shape \(2, 4, {layer.kernel.N2}\)"):
        layer(torch.randn(2, 8, 4), torch.zeros(3, 4, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="state: expected a complex tensor"):
        layer.step(torch.randn(2, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"u: expected a floating-point tensor of shape \(B, H=4\)"):
        layer.step(torch.randn(2, 1, 4), layer.default_state(2))
    with pytest.raises(ValueError, match="rate"):
        layer(torch.randn(1, 4, 4), rate=0.0)


@pytest.mark.parametrize("name", ["s4", "s4d", "dlr", "ema", "liquid_s4", "gss"])
def test_inputs_longer_than_l_max_take_the_kernel_of_their_length(name):
    """l_max sets up the kernel (S4's C̃), it does not bound the input: at L > l_max the convolution equals the
    recurrence stepped over the whole input (float64), and its first l_max outputs those of the first l_max inputs."""
    torch.manual_seed(0)
    layer = ssmkit.layer(name, d_model=4, l_max=16).double().eval()
    u = torch.randn(2, 40, 4, dtype=torch.float64)
    y = layer(u)[0]
    state, steps = layer.default_state(2), []
    for t in range(u.shape[1]):
        out, state = layer.step(u[:, t], state)
        steps.append(out)
    assert rel_err(torch.stack(steps, 1), y) < 1e-12
    assert rel_err(y[:, :16], layer(u[:, :16])[0]) < 1e-12


def test_kernels_defined_up_to_l_max_refuse_longer_inputs():
    with pytest.raises(ValueError, match="normalized over l_max=16, got length 17"):
        ssmkit.DSS(4, l_max=16)(torch.randn(2, 17, 4))
    with pytest.raises(ValueError, match="kernel has l_max=16 positions, got 17"):
        ssmkit.SGConv(4, 16)(torch.randn(2, 17, 4))


def test_bad_layer_options_are_named():
    with pytest.raises(ValueError, match="activation"):
        ssmkit.S4D(4, activation="swish")
    with pytest.raises(ValueError, match="output"):
        ssmkit.S4D(4, output="mlp")
    with pytest.raises(ValueError, match="channels=1"):
        ssmkit.S4D(4, channels=2, output="none")
    with pytest.raises(ValueError, match="dropout"):
        ssmkit.S4D(4, dropout=1.5)


def test_registry_builds_by_name_and_rejects_unknowns():
    assert isinstance(ssmkit.layer("s4", d_model=4), ssmkit.S4)
    assert {"s4", "s4d", "dss", "dlr"} <= set(ssmkit.LAYERS)
    with pytest.raises(ValueError, match="unknown name 'mamba'"):
        ssmkit.layer("mamba", d_model=4)
    with pytest.raises(ValueError, match="d_stat"):
        ssmkit.layer("s4d", d_model=4, d_stat=8)  # a typo is an error, not swallowed


def test_step_cache_follows_parameter_updates():
    layer = ssmkit.S4(3, 8, l_max=8).double().eval()
    u = torch.randn(1, 8, 3, dtype=torch.float64)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)

    def stepped():
        with torch.no_grad():
            state, ys = layer.default_state(1), []
            for t in range(8):
                y, state = layer.step(u[:, t], state)
                ys.append(y)
        return torch.stack(ys, 1)

    layer.setup_step()
    first = stepped()
    layer(u)[0].sum().backward()
    opt.step()
    assert rel_err(stepped(), layer(u)[0]) < 1e-9  # re-discretized after the optimizer changed the parameters
    assert not torch.allclose(stepped(), first)


def test_rate_resamples_the_layer():
    """Twice the resolution with rate=0.5: the kernel of the layer is the kernel of Δ/2."""
    layer = ssmkit.S4D(2, 8, activation="id", output="none").double()
    u = torch.randn(1, 20, 2, dtype=torch.float64)
    y, _ = layer(u, rate=0.5)
    with torch.no_grad():
        layer.kernel.log_dt -= torch.log(torch.tensor(2.0, dtype=torch.float64))
    assert rel_err(y, layer(u)[0]) < 1e-12


def test_ssm_parameters_get_their_own_optimizer_group():
    model = torch.nn.Sequential(ssmkit.S4(4, 8, ssm_lr=1e-3), torch.nn.LayerNorm(4))
    groups = param_groups(model, lr=1e-2, weight_decay=0.1)
    ssm = [g for g in groups if g["lr"] == 1e-3]
    assert len(ssm) == 1 and ssm[0]["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in ssm[0]["params"]} == {"0.kernel.log_dt", "0.kernel.A_real", "0.kernel.A_imag",
                                                          "0.kernel.P", "0.kernel.B"}
    decayed = [g for g in groups if g["weight_decay"] == 0.1]
    assert {names[id(p)] for g in decayed for p in g["params"]} == {"0.kernel.C", "0.D", "0.output.0.weight"}
    torch.optim.AdamW(groups)  # accepted as is


def test_ssm_lr_zero_freezes_the_ssm_parameters():
    layer = ssmkit.S4D(4, 8, ssm_lr=0)
    assert {n for n, _ in layer.named_parameters()} == {"kernel.C", "D", "output.0.weight", "output.0.bias"}
    assert "kernel.A_real" in dict(layer.named_buffers())


def test_bf16_autocast_keeps_the_ssm_in_float32_on_cpu():
    layer = ssmkit.S4D(4, 8)
    u = torch.randn(2, 32, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = layer(u)
    assert torch.isfinite(y).all()
    assert rel_err(y.float(), layer(u)[0]) < 2e-2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_bf16_autocast_keeps_complex_math_in_complex64(name):
    layer = ssmkit.layer(name, d_model=8, d_state=16, l_max=256).cuda()
    u = torch.randn(2, 256, 8, device="cuda")
    K = layer.kernel(256)
    assert K.dtype == torch.float32
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y, _ = layer(u)
        state = layer.default_state(2)
        y_t, state = layer.step(u[:, 0], state)
    assert state.dtype == torch.complex64 and torch.isfinite(y).all()
    assert rel_err(y.float(), layer(u)[0]) < 2e-2


def test_a_backbone_hands_its_dropout_to_the_layers_unless_their_options_set_one():
    from ssmkit.models import SequenceModel

    model = SequenceModel(3, 5, layer="s4d", d_model=8, n_layers=2, dropout=0.2, layer_options={"d_state": 4})
    assert all(layer.dropout.p == 0.2 for layer in model.layers)
    own = SequenceModel(3, 5, layer="s4d", d_model=8, n_layers=2, dropout=0.2,
                        layer_options={"d_state": 4, "dropout": 0.0})
    assert all(isinstance(layer.dropout, torch.nn.Identity) for layer in own.layers)


def test_block_options_reach_ssmconv_with_each_layers_defaults():
    """Every layer over SSMConv lists the block options in its signature (what the registry, with_defaults and the
    config checks read), with its own defaults, and hands the values given to SSMConv; other names are errors."""
    import inspect

    from ssmkit.layers.conv import BLOCK_OPTIONS, SSMConv, block_options
    from ssmkit.layers.dropout import TiedDropout
    from ssmkit.layers.registry import LAYERS

    over_conv = {name: cls for name, cls in LAYERS.items() if issubclass(cls, SSMConv)}
    assert {"s4", "s4d", "dss", "dlr", "ema", "sgconv", "liquid_s4"} <= over_conv.keys()
    for name, cls in over_conv.items():
        left_out = {"recompute", "cuda_graph"} if name == "liquid_s4" else set()
        assert set(inspect.signature(cls).parameters) >= set(BLOCK_OPTIONS) - left_out, name
    defaults = {name: {k: inspect.signature(cls).parameters[k].default for k in ("activation", "output")}
                for name, cls in over_conv.items()}
    assert defaults["ema"] == {"activation": "silu", "output": "none"}
    assert defaults["dss"] == defaults["dlr"] == defaults["sgconv"] == {"activation": "gelu", "output": "linear"}
    assert defaults["s4"] == defaults["s4d"] == {"activation": "gelu", "output": "glu"}
    layer = ssmkit.layer("dss", d_model=4, dropout=0.25, tie_dropout=True, conv_dropout=True, activation="tanh")
    assert isinstance(layer.dropout, TiedDropout) and layer.dropout.p == 0.25
    assert type(layer.conv_dropout) is torch.nn.Dropout and layer.conv_dropout.p == 0.25
    assert isinstance(layer.activation, torch.nn.Tanh) and isinstance(layer.output, torch.nn.Linear)
    assert ssmkit.S4D(4, recompute=2).recompute == 2
    with pytest.raises(TypeError, match=r"DSS\(\) got an unexpected keyword argument 'outptu' \(did you mean "
                                        r"'output'\?\)"):
        ssmkit.DSS(4, outptu="glu")
    with pytest.raises(TypeError, match=r"S5\(\) got an unexpected keyword argument 'blokcs' \(did you mean "
                                        r"'blocks'\?\)"):  # every layer class, through factory_kwargs
        ssmkit.S5(4, blokcs=2)
    with pytest.raises(TypeError, match="recompute"):
        ssmkit.LiquidS4(4, recompute=True)
    with pytest.raises(ValueError, match=r"block_options: \['outptu'\] are not block options"):
        block_options(outptu="glu")
    from ssmkit.train import make_config  # the config checks see each block option's type, before any data is read
    for option, value, expected in (("activation", 3, "str"), ("recompute", "abc", "bool or int")):
        with pytest.raises(ValueError, match=f"layer_options.{option}: expected {expected}, got"):
            make_config(["layer=s4d", f"layer_options.{option}={value}"])
