"""Config values as users type them: floats in exponent notation, typos answered with the nearest name, and layer and
dataset options checked against their signatures before any data is read."""
import subprocess
import sys

import pytest

from ssmkit.options import load_yaml
from ssmkit.train import load_experiment, make_config, train
from ssmkit.train.config import parse_assignments


@pytest.mark.parametrize("text, value", [("3e-3", 3e-3), ("1e4", 1e4), ("1.5e3", 1.5e3), (".5e-3", 5e-4),
                                         ("-2E-2", -2e-2), ("1.0", 1.0), ("7", 7), ("e5", "e5"), ("1e", "1e")])
def test_yaml_reads_exponent_notation_as_floats(text, value):
    assert load_yaml(text) == value and type(load_yaml(text)) is type(value)


def test_float_overrides_and_layer_options_in_exponent_notation(tmp_path):
    config = make_config(["lr=3e-3", "ssm_lr=1e-3", "layer_options.dt_min=1e-4", "layer_options.dt_max=1"])
    assert config.lr == 3e-3 and config.ssm_lr == 1e-3
    assert config.layer_options == {"dt_min": 1e-4, "dt_max": 1.0}
    assert type(config.layer_options["dt_max"]) is float  # widened as the layer's annotation says
    exp = tmp_path / "e.yaml"
    exp.write_text("lr: 3e-3\nweight_decay: 5e-2\nlayer_options: {dt_min: 1e-4}\n")
    config = make_config([], load_experiment(str(exp)))
    assert (config.lr, config.weight_decay, config.layer_options) == (3e-3, 5e-2, {"dt_min": 1e-4})
    assert parse_assignments(["sample_rate=8e3"], "dataset option") == [("sample_rate", 8000.0)]


@pytest.mark.parametrize("override, match", [
    ("epoch=3", r"unknown config key 'epoch' \(did you mean 'epochs'\?\)"),
    ("layer=s4dd", r"layer: unknown name 's4dd' \(did you mean 's4d'\?\)"),
    ("dataset=digit", r"dataset: unknown name 'digit' \(did you mean 'digits'\?\)"),
    ("schedule=cosin", r"did you mean 'cosine'\?"),
    ("layer_options.dt_mn=1e-4", r"layer_options: unknown option 'dt_mn' \(did you mean 'dt_min'\?\)"),
    ("dataset_options.permuted=true", r"dataset_options: unknown option 'permuted' \(did you mean 'permute'\?\)"),
    ("layer_options.dt_min=fast", r"layer_options.dt_min: expected float, got 'fast'"),
    ("layer_options.init=3", r"layer_options.init: expected str, got 3"),
    ("dataset_options.permute=maybe", r"dataset_options.permute: expected bool, got 'maybe'"),
    ("layer_options.d_model=8", r"layer_options.d_model: not an option here; set it with the config key d_model"),
])
def test_bad_names_and_values_are_named_with_the_nearest_real_one(override, match):
    with pytest.raises(ValueError, match=match):
        make_config([override])


def test_layer_options_fail_before_any_data_is_read(tmp_path):
    """smnist needs its IDX files; the option error must come first, as one line."""
    out = subprocess.run([sys.executable, "-m", "ssmkit", "train", "dataset=smnist", f"data_dir={tmp_path}/none",
                          "layer_options.dt_min=abc", f"out_dir={tmp_path}"], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == ["ssmkit train: error: layer_options.dt_min: expected float, got 'abc'"]
    assert not (tmp_path / "none").exists() and not any(tmp_path.iterdir())


def test_eval_set_options_are_checked_and_typos_get_the_nearest_name(tmp_path):
    from ssmkit.train import evaluate_run
    train(make_config(["d_model=8", "n_layers=1", "d_state=4", "epochs=1", "train_subset=64", "eval_subset=32",
                       "warmup_epochs=0", f"out_dir={tmp_path}", "run_name=r"]), log=lambda *_: None)
    with pytest.raises(ValueError, match="option permute: expected bool, got 'maybe'"):
        evaluate_run(tmp_path / "r", dataset_options={"permute": "maybe"})
    with pytest.raises(ValueError, match=r"unknown option 'permuted' \(did you mean 'permute'\?\)"):
        evaluate_run(tmp_path / "r", dataset_options={"permuted": True})
