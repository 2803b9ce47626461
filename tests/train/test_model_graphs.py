"""train/model_graphs.py: a whole model's forward and backward replayed from CUDA graphs (model_graph). On a CPU a
stand-in for the capture (cuda_graphs.graphed) checks the bookkeeping: replays, eager calls while a backward is
pending, new shapes, giving up, the layers' own graphs off inside; the CUDA tests train against an eager copy."""
import copy
import csv

import pytest
import torch

from conftest import PythonNode
from ssmkit.layers import cuda_graphs
from ssmkit.models import Sashimi, SequenceModel
from ssmkit.train import ModelGraphs, load_experiment, make_config, train


def _stand_in(monkeypatch, fail: bool = False) -> dict:
    """cuda_graphs.graphed replaced by a function that records each capture (its input shapes, whether the layers'
    own graphs were allowed during it) and serves replays through a Python autograd node; ModelGraphs.usable says
    yes on a CPU in training (and the trainer keeps model_graph on there)."""
    seen = {"captures": [], "allowed": [], "replays": 0}

    def graphed(module, inputs):
        if fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        seen["captures"].append(tuple(tuple(t.shape) for t in inputs))
        seen["allowed"].append(cuda_graphs.layer_graphs_allowed())
        names = [n for n, _ in module.named_parameters()]
        k = len(inputs)

        def run(*args):
            seen["replays"] += 1
            return PythonNode.apply(torch.func.functional_call(module, dict(zip(names, args[k:])), args[:k]))
        return run
    monkeypatch.setattr(cuda_graphs, "graphed", graphed)
    monkeypatch.setattr(ModelGraphs, "usable",
                        staticmethod(lambda model, x: model.training and torch.is_grad_enabled()))
    monkeypatch.setattr(ModelGraphs, "runs_on", staticmethod(lambda device: True))
    return seen


def _model():
    torch.manual_seed(0)
    return SequenceModel(3, 5, layer="s4d", d_model=8, n_layers=2, layer_options={"d_state": 4})


def test_replays_equal_the_model_and_the_layers_graphs_stay_off_inside(monkeypatch):
    seen = _stand_in(monkeypatch)
    model = _model()
    eager = copy.deepcopy(model)
    forward = ModelGraphs(model)
    x = torch.randn(2, 16, 3)
    for _ in range(3):
        forward(x).square().sum().backward()
    assert seen["captures"] == [((2, 16, 3),)] and seen["allowed"] == [False] and seen["replays"] == 3
    assert cuda_graphs.layer_graphs_allowed()  # back on after the capture
    for _ in range(3):
        eager(x).square().sum().backward()
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_a_call_before_the_last_backward_runs_eagerly(monkeypatch):
    seen = _stand_in(monkeypatch)
    forward = ModelGraphs(_model())
    x = torch.randn(2, 16, 3)
    first = forward(x)
    second = forward(2 * x)  # the first call's backward is still to come
    assert seen["replays"] == 1
    (first.sum() + second.sum()).backward()
    forward(x).sum().backward()
    assert seen["replays"] == 2


def test_evaluation_and_no_grad_run_the_model_itself(monkeypatch):
    seen = _stand_in(monkeypatch)
    model = _model()
    forward = ModelGraphs(model)
    x = torch.randn(2, 16, 3)
    with torch.no_grad():
        forward(x)
    model.eval()
    forward(x)
    assert seen["captures"] == [] and seen["replays"] == 0
    monkeypatch.undo()  # the real test of usability
    model.train()
    assert not ModelGraphs.usable(model, x)  # a CPU tensor


def test_changing_shapes_give_up_with_one_warning(monkeypatch):
    seen = _stand_in(monkeypatch)
    forward = ModelGraphs(_model())
    for L in range(4, 4 + ModelGraphs.MAX_CAPTURES):
        forward(torch.randn(2, L, 3)).sum().backward()
    assert len(seen["captures"]) == ModelGraphs.MAX_CAPTURES
    assert len(forward.replays.graphs) == ModelGraphs.KEEP  # the most recent ones kept
    with pytest.warns(UserWarning, match="8 captures: the batches keep changing shape"):
        forward(torch.randn(2, 40, 3)).sum().backward()
    forward(torch.randn(2, 4 + ModelGraphs.MAX_CAPTURES - 1, 3)).sum().backward()  # a kept shape: eager too now
    assert seen["replays"] == ModelGraphs.MAX_CAPTURES


def test_a_failed_capture_runs_the_model_eagerly_from_then_on(monkeypatch):
    _stand_in(monkeypatch, fail=True)
    model = _model()
    forward = ModelGraphs(model)
    x = torch.randn(2, 16, 3)
    with pytest.warns(UserWarning, match="ModelGraphs: the capture failed .*operation not permitted"):
        y = forward(x)
    torch.testing.assert_close(y, model(x))
    assert forward.off


def test_lengths_are_an_input_of_the_graph(monkeypatch):
    seen = _stand_in(monkeypatch)
    torch.manual_seed(0)
    model = SequenceModel(11, 4, layer="s4d", d_model=8, n_layers=1, layer_options={"d_state": 4}, vocab_size=11,
                          padding_idx=0)
    forward = ModelGraphs(model)
    x = torch.randint(1, 11, (3, 12))
    lengths = torch.tensor([12, 7, 3])
    torch.testing.assert_close(forward(x, lengths), model(x, lengths))
    assert seen["captures"] == [((3, 12), (3,))]


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="ModelGraphs: expected the model .*got function"):
        ModelGraphs(lambda x: x)
    with pytest.raises(ValueError, match="model_graph: not together with compile"):
        make_config(["model_graph=true", "compile=true"])


def test_the_trainer_takes_the_forward_through_the_graphs(tmp_path, monkeypatch):
    """model_graph=true: every training step's forward goes through ModelGraphs (one capture for the 4 steps of
    batch 32, one for none: 128 samples), the same losses as without."""
    seen = _stand_in(monkeypatch)
    small = ["d_model=16", "n_layers=1", "d_state=8", "batch_size=32", "warmup_epochs=0", "train_subset=128",
             "eval_subset=64", "epochs=1", f"out_dir={tmp_path}"]
    train(make_config(small + ["run_name=graphs", "model_graph=true"]), log=lambda *_: None)
    train(make_config(small + ["run_name=eager"]), log=lambda *_: None)
    assert len(seen["captures"]) == 1 and seen["replays"] == 4

    def rows(name):
        with open(tmp_path / name / "steps.csv") as f:
            return [float(r["train_loss"]) for r in csv.DictReader(f)]
    assert rows("graphs") == pytest.approx(rows("eager"), rel=1e-6)


def test_listops_at_one_length_trains_through_one_graph(tmp_path, monkeypatch):
    """lra-listops with trim_padding=false: every batch at the dataset's length, its lengths an input of the graph
    and BatchNorm's statistics up to each batch's longest (longest_norms): one capture serves every step, and the
    losses are the eager run's, which are the trimmed run's (the official reading)."""
    from ssmkit.data.listops import write_listops
    seen = _stand_in(monkeypatch)
    write_listops(tmp_path / "data", 64, 8, 8, min_length=10, max_length=60)
    small = ["d_model=8", "n_layers=1", "d_state=4", "batch_size=16", "warmup_epochs=0", "epochs=1",
             "dataset_options.max_length=64", f"data_dir={tmp_path / 'data'}", f"out_dir={tmp_path}"]
    runs = {"graphs": ["model_graph=true", "trim_padding=false"], "eager": ["model_graph=false", "trim_padding=false"],
            "trimmed": ["model_graph=false", "trim_padding=true"]}
    for name, extra in runs.items():
        train(make_config(small + extra + [f"run_name={name}"], load_experiment("lra-listops"), source="lra-listops"),
              log=lambda *_: None)
    assert seen["captures"] == [((16, 64), (16,))] and seen["replays"] == 4

    def rows(name):
        with open(tmp_path / name / "steps.csv") as f:
            return [float(r["train_loss"]) for r in csv.DictReader(f)]
    assert rows("graphs") == pytest.approx(rows("eager"), rel=1e-6)
    assert rows("eager") == pytest.approx(rows("trimmed"), rel=1e-5)


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("which", ["s4", "s4d", "sashimi"])
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_graphs_train_like_the_eager_model(which, bf16, monkeypatch):
    """Three optimizer steps of two micro-batches each through ModelGraphs (the model's graphs, with its like layers'
    matrices built together inline and per-layer graphs off inside) against an eager copy: the same gradients at the
    first step and the same losses at every step, to float32 rounding, from one capture. Under bf16 the first step's
    gradients are weighed against float32's: the graph's no further from them than twice the eager model's (a small
    gradient summed from cancelling bf16 products, S4's log Δ, differed by 2.5 % between the two bf16 runs)."""
    from ssmkit.layers import stack_parts
    from ssmkit.train.optim import adamw
    inline = []  # group builds run inside the whole model's warm-up or capture
    build = stack_parts.StackBuilder.forward
    monkeypatch.setattr(stack_parts.StackBuilder, "forward",
                        lambda self, token: inline.append(not cuda_graphs.layer_graphs_allowed()) or build(self, token))
    torch.manual_seed(0)
    if which == "sashimi":
        model = Sashimi(1, 256, d_model=16, n_layers=2, pool=[4, 4], vocab_size=256, layer="s4",
                        layer_options={"n_ssm": 1, "d_state": 16})
        x, y = torch.randint(0, 256, (3, 2, 256)), torch.randint(0, 256, (3, 2, 256))
    else:
        model = SequenceModel(3, 5, layer=which, d_model=32, n_layers=2, layer_options={"d_state": 16, "l_max": 512})
        x, y = torch.randn(3, 2, 512, 3), torch.randint(0, 5, (3, 2))
    model = model.cuda()
    eager = copy.deepcopy(model)
    forward = ModelGraphs(model)
    optimizers = [adamw(m, 1e-3, 0.01) for m in (eager, model)]
    tol = 2e-2 if bf16 else 1e-4
    exact = {}  # bf16: the first step's gradients in float32, against which both bf16 runs' errors are weighed
    if bf16:
        reference = copy.deepcopy(eager)
        for xm, ym in zip(x[0], y[0]):
            out = reference(xm[None].cuda())
            torch.nn.functional.cross_entropy(out.flatten(0, -2), ym[None].cuda().flatten()).backward()
        exact = {n: p.grad for n, p in reference.named_parameters()}
    for step in range(3):
        losses = []
        for run, optimizer in ((eager, optimizers[0]), (forward, optimizers[1])):
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for xm, ym in zip(x[step], y[step]):
                xm, ym = xm[None].cuda(), ym[None].cuda()
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                    out = run(xm)
                loss = torch.nn.functional.cross_entropy(out.float().flatten(0, -2), ym.flatten())
                loss.backward()
                total += loss.item()
            losses.append(total)
        if step == 0:  # before any update: gradients of the same weights (rounding noise where they are ~0)
            largest = max(q.grad.norm() for q in eager.parameters() if q.grad is not None)
            for (name, p), q in zip(model.named_parameters(), eager.parameters()):
                if bf16:  # the graph's bf16 gradient no further from float32's than twice the eager bf16 one's
                    r = exact[name]
                    assert (p.grad - r).norm() <= 2 * (q.grad - r).norm() + 1e-3 * r.norm() + 1e-5 * largest, name
                else:
                    assert (p.grad - q.grad).norm() <= tol * q.grad.norm() + 1e-5 * largest, name
        for optimizer in optimizers:
            optimizer.step()
        assert abs(losses[1] - losses[0]) <= tol * abs(losses[0]), (step, losses)
    assert not forward.off and forward.captures == 1
    assert any(inline)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_graphs_draw_new_dropout_masks_at_every_replay():
    torch.manual_seed(0)
    model = SequenceModel(3, 5, layer="s4d", d_model=32, n_layers=2, dropout=0.5, pool="none").cuda()
    forward = ModelGraphs(model)
    x = torch.randn(2, 64, 3, device="cuda")
    outs = []
    for _ in range(3):
        out = forward(x)
        outs.append(out.detach().clone())
        out.sum().backward()
    assert forward.captures == 1 and not forward.off
    assert not torch.equal(outs[1], outs[2]) and torch.isfinite(outs[2]).all()


class _SyncsInForward(torch.nn.Module):
    """Dropout, then a host read of a value (.item()): a sync, which CUDA refuses inside a capture."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 5)

    def forward(self, x):
        y = torch.nn.functional.dropout(self.linear(x), 0.5, self.training)
        return y * (1.0 if y.abs().sum().item() >= 0 else 0.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_random_numbers_still_draw_after_a_failed_capture():
    """A capture that CUDA invalidates leaves the random generator usable: the eager fallback's dropout and any later
    random op run (before, every one failed with "Offset increment outside graph capture")."""
    torch.manual_seed(0)
    model = _SyncsInForward().cuda()
    forward = ModelGraphs(model)
    x = torch.randn(2, 7, 3, device="cuda")
    with pytest.warns(UserWarning, match="ModelGraphs: the capture failed"):
        y = forward(x)
    y.sum().backward()
    assert forward.off and torch.isfinite(model.linear.weight.grad).all()
    a, b = forward(x), torch.randn(4, device="cuda")
    assert torch.isfinite(a).all() and torch.isfinite(b).all()


def test_one_length_models_evaluate_on_trimmed_batches_with_the_same_scores(tmp_path):
    """lra-listops (mask_padding 'layers', one length in training for the graphs) evaluates op by op on batches cut
    to their longest (TrainConfig.trims_op_by_op): the loss and accuracy of the full padded length, with BatchNorm's
    running statistics moved off their init so that the norms do something."""
    from ssmkit import data
    from ssmkit.data.listops import write_listops
    from ssmkit.train.build import build_model
    from ssmkit.train.trainer import evaluate
    write_listops(tmp_path, 64, 40, 8, min_length=10, max_length=60)
    config = make_config(["d_model=8", "n_layers=2", "d_state=4", "dataset_options.max_length=64",
                          f"data_dir={tmp_path}"], load_experiment("lra-listops"), source="lra-listops")
    assert config.trims_op_by_op and not config.trim_padding
    val = data.build(config.dataset, config.data_dir, "val", **config.dataset_options)
    torch.manual_seed(0)
    model = build_model(config, val)
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, "running_mean", None) is not None:
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    full = evaluate(model, val, 8, torch.device("cpu"), trim=False)
    cut = evaluate(model, val, 8, torch.device("cpu"), trim=True)
    assert cut == pytest.approx(full, rel=1e-6) and full["loss"] > 0
