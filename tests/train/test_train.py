"""End to end: a tiny run trains, writes its files, evaluates, resumes exactly, and refuses bad configs."""
import csv
import json
import subprocess
import sys

import pytest
import torch

import ssmkit
from ssmkit.train import TrainConfig, evaluate_run, make_config, train
from ssmkit.train.checkpoint import load_checkpoint

TINY = ["d_model=64", "n_layers=1", "d_state=16", "epochs=3", "batch_size=32", "warmup_epochs=0"]


def _config(tmp_path, name, extra=()):
    return make_config(TINY + [f"out_dir={tmp_path}", f"run_name={name}", *extra])


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_tiny_run_learns_and_leaves_its_files(tmp_path):
    results = train(_config(tmp_path, "a"), log=lambda *_: None)
    run = tmp_path / "a"
    for f in ["config.yaml", "metrics.csv", "results.json", "checkpoints/last.pt", "checkpoints/best.pt"]:
        assert (run / f).is_file(), f
    rows = _rows(run)
    assert len(rows) == 3 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert results["test_acc"] > 0.3  # 10 classes: chance is 0.1
    assert json.loads((run / "results.json").read_text())["test_acc"] == results["test_acc"]
    assert evaluate_run(run, "test")["acc"] == pytest.approx(results["test_acc"])
    model = ssmkit.load(run)
    assert isinstance(model, torch.nn.Module) and not model.training


@pytest.mark.parametrize("layer", ["s4", "dss", "dlr"])
def test_every_core_layer_trains_in_the_backbone(tmp_path, layer):
    train(_config(tmp_path, layer, [f"layer={layer}"]), log=lambda *_: None)
    rows = _rows(tmp_path / layer)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"]) - 0.05


def test_resume_after_an_interrupt_reproduces_the_uninterrupted_run(tmp_path):
    full = train(_config(tmp_path, "full"), log=lambda *_: None)

    def interrupt_after_epoch_2(message):
        if message.startswith("epoch   2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, "cut"), log=interrupt_after_epoch_2)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["epoch"] == 1
    resumed = train(resume=tmp_path / "cut", log=lambda *_: None)
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "full")
    assert resumed["test_acc"] == full["test_acc"] and resumed["test_loss"] == full["test_loss"]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_corrupt_and_foreign_checkpoints_get_clear_errors(tmp_path):
    train(_config(tmp_path, "a", ["epochs=1"]), log=lambda *_: None)
    last = tmp_path / "a" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # a truncated write
    with pytest.raises(ValueError, match="corrupt or not an ssmkit checkpoint"):
        train(resume=tmp_path / "a", log=lambda *_: None)
    torch.save({"weights": torch.zeros(1)}, last)
    with pytest.raises(ValueError, match="not an ssmkit checkpoint"):
        load_checkpoint(last)
    (tmp_path / "a" / "config.yaml").write_text((tmp_path / "a" / "config.yaml").read_text()
                                                .replace("d_model: 64", "d_model: 32"))
    with pytest.raises(ValueError, match="does not fit the model"):
        ssmkit.load(tmp_path / "a")


def test_an_existing_run_is_not_overwritten(tmp_path):
    train(_config(tmp_path, "a", ["epochs=1"]), log=lambda *_: None)
    with pytest.raises(ValueError, match="already holds a run"):
        train(_config(tmp_path, "a", ["epochs=1"]), log=lambda *_: None)


@pytest.mark.parametrize("override, match", [
    ("d_modle=8", "unknown config key 'd_modle'"),
    ("lr=fast", "lr: expected float, got 'fast'"),
    ("epochs=2.5", "epochs: expected int"),
    ("prenorm=3", "prenorm: expected bool"),
    ("schedule=linear", "schedule: expected one of"),
    ("layer_options=3", "layer_options: expected dict"),
    ("epochs.x=1", "not a dict field"),
    ("noequals", "expected key=value"),
])
def test_bad_overrides_fail_before_training(override, match):
    with pytest.raises(ValueError, match=match):
        make_config([override])


def test_unknown_layer_or_dataset_fails_with_the_allowed_names(tmp_path):
    with pytest.raises(ValueError, match="unknown name 'mamba'"):
        train(_config(tmp_path, "x", ["layer=mamba"]), log=lambda *_: None)
    with pytest.raises(ValueError, match="dataset: unknown name 'imagenet'"):
        train(_config(tmp_path, "y", ["dataset=imagenet"]), log=lambda *_: None)


def test_dict_overrides_reach_the_layer(tmp_path):
    config = make_config(["layer_options.init=lin", "dataset_options.permute=true"])
    assert config.layer_options == {"init": "lin"} and config.dataset_options == {"permute": True}
    assert TrainConfig().layer_options == {}  # the default is not shared between configs


def test_cli_reports_config_errors_without_a_traceback():
    out = subprocess.run([sys.executable, "-m", "ssmkit", "train", "d_modle=8"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown config key 'd_modle'" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "ssmkit", "layers"], capture_output=True, text=True, check=True)
    assert {"s4", "s4d", "dss", "dlr"} <= {line.split()[0] for line in out.stdout.splitlines()}
