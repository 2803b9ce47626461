"""Frozen forms for export: the kernel computed once and applied by real conv1d, the recurrence in real arithmetic;
both equal the layers (float64), hold no complex tensor or FFT, and run in onnxruntime when it is installed."""
import importlib.util

import numpy as np
import pytest
import torch

import ssmkit
from ssmkit.export import Stepper, freeze
from ssmkit.models import SequenceModel

LAYERS = [("s4", {}), ("s4", {"bidirectional": True}), ("s4d", {"channels": 2, "output": "linear"}),
          ("s4d", {"disc": "bilinear"}), ("dss", {"variant": "exp"}), ("dss", {"l_max": 40}), ("dlr", {}),
          ("ema", {}), ("sgconv", {"l_max": 40}), ("s5", {}), ("s5", {"bidirectional": True}),
          ("s5", {"activation": "half_glu", "blocks": 2})]
HAS_STEP = {"s4", "s4d", "dss", "dlr", "ema", "s5"}


@pytest.mark.parametrize("name, options", LAYERS, ids=lambda v: str(v))
def test_a_frozen_layer_equals_the_layer_in_both_views(name, options):
    layer = ssmkit.layer(name, d_model=4, **options).double().eval()
    u = torch.randn(2, 40, 4, dtype=torch.float64)
    frozen = freeze(layer, 40)
    y, _ = layer(u)
    assert torch.allclose(frozen(u)[0], y, atol=1e-12, rtol=0)
    assert torch.allclose(frozen(u[:, :23])[0], layer(u[:, :23])[0], atol=1e-12, rtol=0)  # shorter inputs
    if name in HAS_STEP and not options.get("bidirectional"):
        state, steps = frozen.default_state(2), []
        assert not state.is_complex()
        for t in range(40):
            y_t, state = frozen.step(u[:, t], state)
            steps.append(y_t)
        assert torch.allclose(torch.stack(steps, 1), y, atol=1e-11, rtol=0)


def test_a_frozen_model_takes_a_padded_batch():
    model = SequenceModel(3, 4, layer="s4d", d_model=8, n_layers=2, layer_options={"bidirectional": True}).double()
    x, lengths = torch.randn(3, 24, 3, dtype=torch.float64), torch.tensor([24, 10, 17])
    assert torch.allclose(freeze(model, 24)(x, lengths), model.eval()(x, lengths), atol=1e-12, rtol=0)


def test_freeze_copies_models_and_reaches_layers_inside_blocks():
    model = SequenceModel(3, 4, layer="gss", d_model=8, n_layers=2, pool="none", layer_options={"d_state": 8}).double()
    frozen = freeze(model, 32)
    assert type(model.layers[0].ssm).__name__ == "DSS" and type(frozen.layers[0].ssm).__name__ == "FrozenConv"
    x = torch.randn(2, 32, 3, dtype=torch.float64)
    assert torch.allclose(frozen(x), model.eval()(x), atol=1e-12, rtol=0)


def _export_graph_ops(module, args):
    program = torch.export.export(module, args)
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    dtypes = {n.meta["val"].dtype for n in program.graph.nodes if isinstance(n.meta.get("val"), torch.Tensor)}
    return ops, dtypes


@pytest.mark.parametrize("layer", ["s4", "s5", "sgconv"])
def test_frozen_models_export_without_complex_numbers_or_ffts(layer):
    model = SequenceModel(256, 256, layer=layer, d_model=8, n_layers=2, vocab_size=256, pool="none",
                          layer_options={"l_max": 32} if layer == "sgconv" else {"d_state": 8})
    frozen = freeze(model, 32)
    forms = [(frozen, (torch.randint(0, 256, (2, 32)),))]
    if layer != "sgconv":
        stepper = Stepper(frozen)
        forms.append((stepper, (torch.randint(0, 256, (2,)), *stepper.initial_states(2))))
    for module, args in forms:
        ops, dtypes = _export_graph_ops(module, args)
        assert not any("fft" in op for op in ops) and not any(d.is_complex for d in dtypes), ops


def test_torch_export_traces_the_layers_themselves():
    for layer in (ssmkit.S4(4, l_max=16), ssmkit.S4D(4), ssmkit.S5(4), ssmkit.DSS(4, variant="softmax")):
        u = torch.randn(2, 16, 4)
        program = torch.export.export(layer.eval(), (u,))
        assert torch.allclose(program.module()(u)[0], layer(u)[0])


def test_freeze_refuses_what_it_cannot_freeze():
    with pytest.raises(ValueError, match="Liquid-S4"):
        freeze(ssmkit.LiquidS4(4), 16)
    with pytest.raises(ValueError, match="DSS-softmax kernel without l_max"):
        freeze(ssmkit.DSS(4), 16)
    with pytest.raises(ValueError, match="l_max=8"):
        freeze(ssmkit.S4D(4, l_max=8), 16)
    frozen = freeze(ssmkit.S4D(4, bidirectional=True), 16)
    with pytest.raises(ValueError, match="no recurrent view"):
        frozen.default_state(1)
    with pytest.raises(ValueError, match="stream with step"):
        freeze(ssmkit.S4D(4), 16)(torch.randn(1, 4, 4), torch.zeros(1, 4, 32, 2))
    with pytest.raises(ValueError, match="exceeds l_max=16"):
        frozen(torch.randn(1, 17, 4))


ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "onnxscript"))
needs_onnx = pytest.mark.skipif(not ONNX, reason="needs onnx, onnxscript and onnxruntime")


def _onnx_session(module, args, dynamic_shapes, path):
    import onnxruntime
    torch.onnx.export(module, args, dynamo=True, dynamic_shapes=dynamic_shapes).save(str(path))
    session = onnxruntime.InferenceSession(str(path))
    return session, [i.name for i in session.get_inputs()]


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("layer", ["s4", "s5", "sgconv"])
def test_the_frozen_convolutional_form_runs_in_onnxruntime(layer, tmp_path):
    model = SequenceModel(3, 5, layer=layer, d_model=8, n_layers=2,
                          layer_options={"l_max": 64} if layer == "sgconv" else {"d_state": 8}).eval()
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=64)
    session, names = _onnx_session(freeze(model, 64), (torch.randn(2, 64, 3),), ({0: batch, 1: length},),
                                   tmp_path / "model.onnx")
    for x in (torch.randn(2, 64, 3), torch.randn(3, 41, 3)):  # other batch sizes and lengths than traced
        out = session.run(None, {names[0]: x.numpy()})[0]
        assert np.abs(out - model(x).detach().numpy()).max() < 1e-5


@needs_onnx
@pytest.mark.slow
@pytest.mark.parametrize("layer", ["s4", "s5"])
def test_the_exported_step_streams_what_the_model_computes(layer, tmp_path):
    model = SequenceModel(256, 256, layer=layer, d_model=8, n_layers=2, vocab_size=256, pool="none",
                          layer_options={"d_state": 8}).eval()
    stepper = Stepper(freeze(model, 64))
    batch = torch.export.Dim("batch")
    states = stepper.initial_states(2)
    session, names = _onnx_session(stepper, (torch.randint(0, 256, (2,)), *states),
                                   ({0: batch}, tuple({0: batch} for _ in states)), tmp_path / "step.onnx")
    tokens = torch.randint(0, 256, (3, 20))
    state, outputs = [s.numpy() for s in stepper.initial_states(3)], []
    for t in range(20):
        y, *state = session.run(None, dict(zip(names, [tokens[:, t].numpy(), *state])))
        outputs.append(y)
    assert np.abs(np.stack(outputs, 1) - model(tokens).detach().numpy()).max() < 1e-5
