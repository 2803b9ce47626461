"""model=s4nd / model=cnn in the trainer: image datasets, the zero-shot resolution change through `eval`, the run as a
model in a folder, and the errors that keep image and sequence models apart."""
import csv

import pytest
import torch

import ssmkit
from ssmkit.models import ImageModel
from ssmkit.models.image import ConvND
from ssmkit.train import evaluate_run, make_config, train

TINY = ["d_model=16", "n_layers=1", "d_state=8", "epochs=3", "batch_size=32", "warmup_epochs=0", "train_subset=512",
        "eval_subset=64", "dataset_options.image=true"]
QUIET = {"log": lambda *_: None}


def _config(tmp_path, name, extra=()):
    return make_config(TINY + [f"out_dir={tmp_path}", f"run_name={name}", *extra])


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_s4nd_trains_on_digit_images_and_is_evaluated_zero_shot_at_32x32(tmp_path):
    results = train(_config(tmp_path, "nd", ["model=s4nd", "model_options.kernel=s4d", "model_options.init=lin",
                                             "model_options.bandlimit=1.0", "model_options.dt_min=0.1",
                                             "model_options.dt_max=1.0", "d_model=32", "n_layers=2"]), **QUIET)
    losses = [float(row["train_loss"]) for row in _rows(tmp_path / "nd")]
    assert losses[-1] < losses[0] - 0.05
    model = ssmkit.load(tmp_path / "nd")
    assert isinstance(model, ImageModel) and model.layers[0].kernels[0].bandlimit == 1.0
    assert model.layers[0].l_max == (8, 8)
    native = evaluate_run(tmp_path / "nd", "test")
    assert native["acc"] == pytest.approx(results["test_acc"])
    big = evaluate_run(tmp_path / "nd", "test", rate=0.25, dataset_options={"size": 32})
    assert big["samples"] == native["samples"] and 0 <= big["acc"] <= 1
    with pytest.warns(UserWarning, match=r"rate=0.25: the test inputs have the training length \(8, 8\)"):
        evaluate_run(tmp_path / "nd", "test", rate=0.25)  # the rate without the data's size: a warning, not silence


def test_plot_draws_the_2d_kernels_of_an_s4nd_run(tmp_path):
    pytest.importorskip("matplotlib")
    from ssmkit.train.plots import plot_run

    train(_config(tmp_path, "p", ["model=s4nd", "epochs=1", "train_subset=32"]), **QUIET)
    curves, kernels = plot_run(tmp_path / "p")
    assert kernels.name == "kernels.png" and kernels.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_cnn_baseline_runs_at_another_size_and_refuses_a_rate(tmp_path):
    train(_config(tmp_path, "cnn", ["model=cnn", "epochs=1"]), **QUIET)
    assert isinstance(ssmkit.load(tmp_path / "cnn").layers[0], ConvND)
    assert 0 <= evaluate_run(tmp_path / "cnn", "test", dataset_options={"size": 32})["acc"] <= 1
    with pytest.raises(ValueError, match="rate: a conv network has no continuous kernel"):
        evaluate_run(tmp_path / "cnn", "test", rate=0.25, dataset_options={"size": 32})


@pytest.mark.parametrize("extra,match", [
    (["model=s4nd", "dataset_options.image=false"], "model: s4nd reads images"),
    (["model=sequence"], "gives images .* need model=s4nd, cnn or ccnn"),
    (["model=s4nd", "model_options.bandlimt=0.5"], "model_options: unknown option 'bandlimt'.*bandlimit"),
    (["model=s4nd", "model_options.d_model=8"], "model_options.d_model: not an option here"),
    (["model=cnn", "model_options.kernel_size=2"], "kernel_size: expected an odd"),
    (["model=s4nd", "pool=last"], "pool: the image models take 'mean'"),
    (["model=s4nd", "layer_options.init=lin"], "layer_options: the image models take {}"),
])
def test_image_model_errors_name_the_key(tmp_path, extra, match):
    with pytest.raises(ValueError, match=match):
        train(_config(tmp_path, "e", extra), **QUIET)


def test_image_models_take_batch_norm(tmp_path):
    """norm=batch: BatchNorm over the channels (statistics over the batch and every pixel), pre- or postnorm, as the
    1-D LRA configs; it round-trips through the run's checkpoint."""
    for prenorm in ("true", "false"):
        out = tmp_path / prenorm
        config = make_config(TINY + [f"out_dir={out}", "model=s4nd", "epochs=1", "train_subset=32", "norm=batch",
                                     f"prenorm={prenorm}"])
        train(config, **QUIET)
        model = ssmkit.load(next(out.iterdir()))
        assert model.config["norm"] == "batch"
        assert isinstance(model.norms[0].norm, torch.nn.BatchNorm1d)


def test_s4nd_runs_are_named_after_the_model(tmp_path):
    config = make_config(TINY + [f"out_dir={tmp_path}", "model=s4nd", "epochs=1", "train_subset=32"])
    train(config, **QUIET)
    assert [p.name.startswith("digits-s4nd-") for p in tmp_path.iterdir()] == [True]
    assert torch.is_tensor(next(iter(ssmkit.load(next(tmp_path.iterdir())).state_dict().values())))


def test_plot_and_eval_name_a_missing_run_directory_alike(tmp_path):
    from ssmkit.train.plots import plot_run

    for call in (lambda: plot_run(tmp_path / "nope"), lambda: evaluate_run(tmp_path / "nope")):
        with pytest.raises(FileNotFoundError, match=r"run directory .*nope: not a folder"):
            call()
