"""Trainer options: fp16 with loss scaling, the training loss of every step, DataLoader workers, torch.compile,
progress bars only on a terminal, the TensorBoard notice, and whole-number epochs on the curves."""
import csv
import io
import sys

import pytest
import torch

import ssmkit
from ssmkit.train import make_config, train
from ssmkit.train.checkpoint import read_state

SMALL = ["d_model=16", "n_layers=1", "d_state=8", "batch_size=32", "warmup_epochs=0", "train_subset=256",
         "eval_subset=64"]


def _run(tmp_path, name, extra=(), log=lambda *_: None):
    return train(make_config(SMALL + [f"out_dir={tmp_path}", f"run_name={name}", *extra]), log=log)


def _csv(path, drop=("seconds",)):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def test_fp16_scales_the_loss_and_a_resumed_run_repeats_every_step(tmp_path):
    """steps.csv has one row per optimizer step; an interrupted fp16 run resumes with its GradScaler state and writes
    the same steps and epochs as the uninterrupted one."""
    options = ["epochs=2", "precision=fp16", "grad_clip=1.0", "train_subset=128"]
    _run(tmp_path, "full", options)
    state = read_state(tmp_path / "full" / "checkpoints")
    assert state["scaler"]["scale"] > 1  # a loss scale is in use and checkpointed
    steps = _csv(tmp_path / "full" / "steps.csv")
    assert [int(r["step"]) for r in steps] == list(range(1, 9)) and {r["epoch"] for r in steps} == {"1", "2"}

    def interrupt_after_epoch_1(message):
        if message.startswith("epoch   1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "cut", options, log=interrupt_after_epoch_1)
    train(resume=tmp_path / "cut", log=lambda *_: None)
    assert _csv(tmp_path / "cut" / "metrics.csv") == _csv(tmp_path / "full" / "metrics.csv")
    assert _csv(tmp_path / "cut" / "steps.csv") == steps


def test_dataloader_workers_change_nothing_but_the_speed(tmp_path):
    _run(tmp_path, "w0", ["epochs=1"])
    _run(tmp_path, "w2", ["epochs=1", "num_workers=2"])
    assert _csv(tmp_path / "w0" / "metrics.csv") == _csv(tmp_path / "w2" / "metrics.csv")
    with pytest.raises(ValueError, match="num_workers: expected a count >= 0, got -1"):
        make_config(["num_workers=-1"])


def test_compile_true_trains_a_compiled_model_and_saves_plain_weights(tmp_path, monkeypatch):
    compiled = []
    real_compile = torch.compile

    def eager_compile(model):  # the same graph capture as the default, without generating code (fast on a CPU)
        compiled.append(model)
        return real_compile(model, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    _run(tmp_path, "c", ["epochs=1", "compile=true"])
    assert len(compiled) == 1
    model = ssmkit.load(tmp_path / "c")  # no '_orig_mod.' prefixes in the checkpoint
    assert not any("_orig_mod" in k for k in model.state_dict())


def test_no_graph_breaks_in_the_forward_pass_of_s4_s4d_s5():
    from ssmkit.models import SequenceModel
    for layer in ("s4", "s4d", "s5"):
        model = SequenceModel(3, 5, layer=layer, d_model=8, n_layers=1, layer_options={"d_state": 8})
        explained = torch._dynamo.explain(model)(torch.randn(2, 16, 3))
        assert explained.graph_break_count == 0, (layer, [str(b.reason)[:120] for b in explained.break_reasons])


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_evaluation_shows_a_bar_on_a_terminal_and_nothing_when_piped(monkeypatch):
    from ssmkit.data import build
    from ssmkit.models import SequenceModel
    from ssmkit.train.trainer import evaluate
    model, dataset = SequenceModel(1, 10, d_model=8, n_layers=1), build("digits", None, "val")
    for stream, shown in ((_Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        evaluate(model, dataset, 64, torch.device("cpu"), desc="validation")
        assert ("validation" in stream.getvalue()) == shown


def test_a_run_without_tensorboard_says_so(tmp_path, monkeypatch):
    from ssmkit.train.logs import tensorboard
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    lines = []
    assert tensorboard(tmp_path, 0, lines.append) is None and tensorboard(tmp_path, 1, lines.append) is None
    assert lines == ["TensorBoard is not installed, so the run writes no event files (pip install 'ssmkit[tb]')"]


def test_curves_have_whole_number_epoch_ticks(tmp_path):
    pytest.importorskip("matplotlib")
    from ssmkit.train.plots import _pyplot, curves_figure
    _run(tmp_path, "p", ["epochs=3", "train_subset=64"])
    fig = curves_figure(tmp_path / "p", _pyplot())
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = ax.get_xticks()
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    assert len(fig.axes[0].lines) == 3  # per-step training loss, train and val per epoch


def test_drop_last_trains_and_scores_whole_batches_only(tmp_path, monkeypatch):
    """drop_last (the official S4 loaders' default): each epoch takes the permutation's whole batches (230 samples at
    batch 32: 7 steps, where 8 without it), and evaluation scores the first whole batches of a split (64 of 70), or
    all of a split smaller than one batch; drop_last=train whole training batches only."""
    from ssmkit.train import trainer
    assert [len(b) for b in trainer.epoch_batches(230, 32, 0, 1, drop_last=True)] == [32] * 7
    assert torch.equal(torch.cat(trainer.epoch_batches(230, 32, 0, 1, drop_last=True)),
                       torch.cat(trainer.epoch_batches(230, 32, 0, 1))[:224])
    scored = []
    evaluate = trainer.evaluate

    def counting(model, dataset, *args, **kw):
        scored.append(len(trainer._scored(dataset, args[0], kw.get("drop_last", False))))
        return evaluate(model, dataset, *args, **kw)
    monkeypatch.setattr(trainer, "evaluate", counting)
    result = _run(tmp_path, "dropped", ["epochs=1", "drop_last=true", "train_subset=230", "eval_subset=70"])
    assert len(_csv(tmp_path / "dropped" / "steps.csv")) == 7 and scored == [64, 64]
    assert trainer._scored(list(range(20)), 32, True) == list(range(20))
    assert result["test_acc"] >= 0
    scored.clear()  # 'train' (the official S5 loaders): the training batches whole, every sample scored
    _run(tmp_path, "train-only", ["epochs=1", "drop_last=train", "train_subset=230", "eval_subset=70"])
    assert len(_csv(tmp_path / "train-only" / "steps.csv")) == 7 and scored == [70, 70]
    with pytest.raises(ValueError, match="drop_last: expected true, false or 'train', got 'eval'"):
        make_config(["drop_last=eval"])
    with pytest.raises(ValueError, match="drop_last: the 20 training samples make no whole batch of batch_size=32"):
        _run(tmp_path, "tiny", ["epochs=1", "drop_last=true", "train_subset=20"])
