"""End to end: a tiny run trains, writes its files, evaluates, resumes exactly, and refuses bad configs."""
import csv
import math
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ssmkit
from ssmkit.train import TrainConfig, evaluate_run, make_config, train
from ssmkit.train.checkpoint import read_state, read_weights

TINY = ["d_model=64", "n_layers=1", "d_state=16", "epochs=3", "batch_size=32", "warmup_epochs=0"]


def _config(tmp_path, name, extra=()):
    return make_config(TINY + [f"out_dir={tmp_path}", f"run_name={name}", *extra])


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_tiny_run_learns_and_leaves_its_files(tmp_path):
    results = train(_config(tmp_path, "a"), log=lambda *_: None)
    run = tmp_path / "a"
    for f in ["config.yaml", "metrics.csv", "results.json", "checkpoints/last", "checkpoints/best",
              "checkpoints/epoch-0003/model.safetensors", "checkpoints/epoch-0003/state.pt"]:
        assert (run / f).is_file(), f
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    best = (run / "checkpoints" / "best").read_text().strip()
    assert kept == sorted({"best", "last", "epoch-0003", best})  # older epochs are pruned
    rows = _rows(run)
    assert len(rows) == 3 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert results["test_acc"] > 0.2  # 10 classes: chance is 0.1 (S4D-LegS with the official clipped B̃: 0.24)
    assert json.loads((run / "results.json").read_text())["test_acc"] == results["test_acc"]
    assert evaluate_run(run, "test")["acc"] == pytest.approx(results["test_acc"])
    model = ssmkit.load(run)
    assert isinstance(model, torch.nn.Module) and not model.training


@pytest.mark.parametrize("layer", ["s4", "dss", "dlr", "s5", "gss", "sgconv", "mega", "ema", "liquid_s4"])
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
    assert read_state(tmp_path / "cut" / "checkpoints")["epoch"] == 1
    resumed = train(resume=tmp_path / "cut", log=lambda *_: None)
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "full")
    assert resumed["test_acc"] == full["test_acc"] and resumed["test_loss"] == full["test_loss"]
    a = read_weights(tmp_path / "full" / "checkpoints")
    b = read_weights(tmp_path / "cut" / "checkpoints")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_corrupt_and_foreign_checkpoints_get_clear_errors(tmp_path):
    train(_config(tmp_path, "a", ["epochs=1"]), log=lambda *_: None)
    folder = tmp_path / "a" / "checkpoints"
    weights, state = folder / "epoch-0001" / "model.safetensors", folder / "epoch-0001" / "state.pt"
    state_bytes = state.read_bytes()
    state.write_bytes(state_bytes[:1000])  # a truncated file
    with pytest.raises(ValueError, match="corrupt or not an ssmkit checkpoint"):
        train(resume=tmp_path / "a", log=lambda *_: None)
    torch.save({"weights": torch.zeros(1)}, state)
    with pytest.raises(ValueError, match="not an ssmkit checkpoint"):
        read_state(folder)
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt or not an ssmkit checkpoint"):
        read_weights(folder)
    (folder / "last").write_text("epoch-0042\n")
    with pytest.raises(ValueError, match="holds no model.safetensors"):
        read_weights(folder)



def test_a_checkpoint_from_another_model_is_refused(tmp_path):
    train(_config(tmp_path, "a", ["epochs=1"]), log=lambda *_: None)
    config = tmp_path / "a" / "checkpoints" / "epoch-0001" / "config.json"
    config.write_text(config.read_text().replace('"d_model": 64', '"d_model": 32'))
    with pytest.raises(ValueError, match="does not fit the model"):
        ssmkit.load(tmp_path / "a")


def test_an_interrupted_checkpoint_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    """A crash while epoch 2 is being written: the pointers still name epoch 1, which loads and resumes."""
    from ssmkit.train import checkpoint

    calls = {"n": 0}
    real_save = checkpoint.torch.save

    def dying_save(obj, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            Path(path).write_bytes(b"half a file")
            raise KeyboardInterrupt
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(checkpoint.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, "a", ["epochs=2"]), log=lambda *_: None)
    monkeypatch.undo()
    folder = tmp_path / "a" / "checkpoints"
    assert (folder / "last").read_text().strip() == "epoch-0001" and read_state(folder)["epoch"] == 0
    train(resume=tmp_path / "a", log=lambda *_: None)
    assert read_state(folder)["epoch"] == 1


def test_an_existing_run_is_not_overwritten(tmp_path):
    train(_config(tmp_path, "a", ["epochs=1"]), log=lambda *_: None)
    with pytest.raises(ValueError, match="already holds a run"):
        train(_config(tmp_path, "a", ["epochs=1"]), log=lambda *_: None)


@pytest.mark.parametrize("override, match", [
    ("d_modle=8", "unknown config key 'd_modle'"),
    ("lr=fast", "lr: expected float, got 'fast'"),
    ("epochs=2.5", "epochs: expected int"),
    ("prenorm=3", "prenorm: expected bool"),
    ("schedule=step", "schedule: expected one of"),
    ("adam_betas=[0.9]", r"adam_betas: expected two numbers in \[0, 1\)"),
    ("adam_betas=[0.9,1.5]", "adam_betas: expected two numbers"),
    ("head=deep", "head: expected one of"),
    ("encoder_init=xavier", "encoder_init: expected one of"),
    ("embedding_dropout=1", r"embedding_dropout: expected a probability in \[0, 1\)"),
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
    lines = out.stdout.splitlines()
    assert {"s4", "s4d", "dss", "dlr", "(N-D)"} <= {line.split()[0] for line in lines}
    assert all(line.rstrip().endswith((".", "…", "trainer)")) for line in lines)  # whole sentences or a marked cut


def test_shipped_experiments_are_valid_configs():
    from ssmkit.train import experiment_names, load_experiment
    assert {"digits", "digits-permuted-s4"} <= set(experiment_names())
    for name in experiment_names():
        make_config([], load_experiment(name), source=name)
    config = make_config(["epochs=2"], load_experiment("digits-permuted-s4"))
    assert config.layer == "s4" and config.dataset_options == {"permute": True, "seed": 0} and config.epochs == 2


def test_experiment_files_are_checked_like_overrides(tmp_path):
    from ssmkit.train import load_experiment
    bad = tmp_path / "bad.yaml"
    bad.write_text("layer: s4\nd_modle: 8\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown config key 'd_modle'"):
        make_config([], load_experiment(str(bad)), source=str(bad))
    with pytest.raises(ValueError, match="neither a file nor a shipped experiment"):
        load_experiment("lra-nope")
    with pytest.raises(ValueError, match=r"\(did you mean 'sashimi-sc09'\?\)"):
        load_experiment("sashimi-sc9")
    with pytest.raises(ValueError, match="'lr' is a config key, not an experiment; set it as lr=VALUE"):
        load_experiment("lr")


def test_cli_trains_an_experiment_file_with_overrides(tmp_path):
    exp = tmp_path / "tiny.yaml"
    exp.write_text("d_model: 64\nn_layers: 1\nd_state: 16\nbatch_size: 32\nwarmup_epochs: 0\n")
    out = subprocess.run([sys.executable, "-m", "ssmkit", "train", str(exp), "epochs=1", f"out_dir={tmp_path}",
                          "run_name=cli"], capture_output=True, text=True, check=True)
    assert "test accuracy" in out.stdout
    assert "d_model: 64" in (tmp_path / "cli" / "config.yaml").read_text()
    out = subprocess.run([sys.executable, "-m", "ssmkit", "eval", str(tmp_path / "cli")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("test: accuracy")
    # eval at another resolution with changed dataset options: the permuted pixels and a doubled step both tell
    changed = subprocess.run([sys.executable, "-m", "ssmkit", "eval", str(tmp_path / "cli"), "--rate", "2",
                              "--set", "permute=true"], capture_output=True, text=True, check=True)
    assert changed.stdout.startswith("test: accuracy") and changed.stdout != out.stdout
    bad = subprocess.run([sys.executable, "-m", "ssmkit", "eval", str(tmp_path / "cli"), "--set", "permuted=true"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "permuted" in bad.stderr


def test_plot_writes_curves_and_kernels(tmp_path):
    pytest.importorskip("matplotlib")
    train(_config(tmp_path, "p", ["epochs=2", "n_layers=2"]), log=lambda *_: None)
    out = subprocess.run([sys.executable, "-m", "ssmkit", "plot", str(tmp_path / "p")], capture_output=True,
                         text=True, check=True)
    for name in ("curves.png", "kernels.png"):
        png = tmp_path / "p" / "plots" / name
        assert str(png) in out.stdout and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_gradient_accumulation_equals_the_whole_batch(tmp_path):
    base = ["epochs=2", "dropout=0"]
    train(_config(tmp_path, "whole", base), log=lambda *_: None)
    train(_config(tmp_path, "micro", base + ["accumulate=4"]), log=lambda *_: None)
    for a, b in zip(_rows(tmp_path / "whole"), _rows(tmp_path / "micro")):
        for key in ("train_loss", "val_loss", "val_acc"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4), key


def test_plateau_schedule_reduces_as_torchs_reduce_on_plateau_and_resumes_its_state():
    """patience 2: the third epoch in a row without a better score cuts the lr (torch: num_bad_epochs > patience);
    better means above best·(1 + 1e-4) (or below best·(1 − 1e-4) for a loss), so a gain of 1e-5 is no gain."""
    from ssmkit.train.trainer import Schedule
    s = Schedule("plateau", warmup=2, total=100, patience=2, factor=0.5)
    assert [s(0), s(1), s(2)] == [0.5, 1.0, 1.0]
    for score in (0.5, 0.6, 0.6, 0.6 + 1e-5):  # two epochs without improvement: not yet
        s.end_epoch(score)
    assert s(10) == 1.0 and s.bad_epochs == 2
    s.end_epoch(0.59)
    assert s(10) == 0.5 and s.bad_epochs == 0
    s.end_epoch(0.55)  # one more epoch without improvement, pending
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, s)
    fresh = Schedule("plateau", 2, 100, 2, 0.5)
    torch.optim.lr_scheduler.LambdaLR(opt, fresh).load_state_dict(sched.state_dict())
    assert fresh.scale == 0.5 and fresh.bad_epochs == 1 and fresh.best == 0.6
    torch_rule = torch.optim.lr_scheduler.ReduceLROnPlateau(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))],
                                                                            lr=1.0), "min", factor=0.5, patience=1)
    ours = Schedule("plateau", 0, 100, 1, 0.5, maximize=False)
    for loss in (3.0, 2.0, 2.0, 1.99999, 1.5, 1.6, 1.7, 1.5, 1.4, 1.45, 1.45):
        torch_rule.step(loss)
        ours.end_epoch(loss)
        assert torch_rule.optimizer.param_groups[0]["lr"] == ours(50)


def test_plateau_read_every_k_epochs_in_min_mode_on_accuracy_as_vis4mers_loop():
    """run_lvu.py steps ReduceLROnPlateau (mode min, patience 1) with the validation accuracy every 10 epochs: while
    accuracy rises, the rate drops at epochs 30, 50, 70."""
    from ssmkit.train.trainer import Schedule
    s = Schedule("plateau", 0, 100, 1, 0.2, maximize=False, every=10)
    drops = []
    for epoch in range(80):
        before = s(0)
        s.end_epoch(0.5 + epoch / 200, epoch)
        if s(0) < before:
            drops.append(epoch + 1)
    assert drops == [30, 50, 70]
    with pytest.raises(ValueError, match="plateau_mode: expected one of"):
        make_config(["plateau_mode=up"])


def test_multistep_schedule_is_torchs_multisteplr_per_epoch():
    """schedule=multistep (the official BIDMC config: milestones 100, 200, ... and gamma 0.5), here with 3 steps per
    epoch: epoch e runs at gamma ** (milestones <= e), as MultiStepLR stepped at each epoch's end."""
    from ssmkit.train.trainer import Schedule
    s = Schedule("multistep", 0, 30, 1, 0.5, milestones=(2, 4), gamma=0.5, steps_per_epoch=3)
    assert [s(t) for t in range(0, 18, 3)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    torch_rule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    for epoch in range(6):
        assert opt.param_groups[0]["lr"] == s(3 * epoch + 2)
        opt.step()
        torch_rule.step()
    for bad, match in (("milestones=[200, 100]", "milestones: expected increasing positive epochs"),
                       ("schedule=multistep", "schedule=multistep needs the epochs"), ("gamma=0", "gamma: expected")):
        with pytest.raises(ValueError, match=match):
            make_config([bad])


def test_linear_schedule_warms_up_then_decays_linearly_to_zero():
    """schedule=linear: the official Mega LRA recipe's linear warmup then linear decay to 0 at the last step."""
    from ssmkit.train.trainer import Schedule
    s = Schedule("linear", warmup=4, total=24, patience=1, factor=0.5)
    # fairseq's linear_decay: update k runs at the lr set after k updates, k/W of the peak (the first at ~0)
    assert [s(t) for t in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [s(t) for t in (4, 9, 14, 19, 24, 30)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])
    quadratic = Schedule("linear", warmup=4, total=24, patience=1, factor=0.5, power=2)  # Mega's --warmup-power 2
    assert [quadratic(t) for t in range(5)] == [0.0, 1 / 16, 1 / 4, 9 / 16, 1.0]
    assert [Schedule("cosine", 4, 24, 1, 0.5)(t) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]  # the others: (k+1)/W
    assert make_config(["warmup_power=2"]).warmup_power == 2
    with pytest.raises(ValueError, match="warmup_power: expected an integer >= 1"):
        make_config(["warmup_power=0"])
    assert make_config(["warmup_steps=10000"]).warmup_steps == 10000
    with pytest.raises(ValueError, match="warmup_steps: expected None"):
        make_config(["warmup_steps=-1"])


def test_cosine_warmup_is_the_official_s4_repositorys():
    """schedule=cosine_warmup: transformers' get_cosine_schedule_with_warmup, as state-spaces/s4's cosine_warmup
    (k/W from 0, then max(0, ½(1 + cos(π·(k − W)/(T − W)))), which rises again past T as there), its T from
    schedule_steps, not from the epochs."""
    import math

    from ssmkit.train.trainer import Schedule
    s = Schedule("cosine_warmup", warmup=4, total=24, patience=1, factor=0.5)
    assert [s(t) for t in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [s(t) for t in (9, 14, 24, 30)] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * k / 20)) for k in (5, 10, 20, 26)], abs=1e-15)
    assert s(24) == pytest.approx(0.0, abs=1e-15) and s(30) > 0.2
    assert make_config(["schedule=cosine_warmup", "schedule_steps=200000"]).schedule_steps == 200000
    with pytest.raises(ValueError, match="schedule_steps: expected None"):
        make_config(["schedule_steps=0"])


def test_schedule_steps_sets_the_schedules_length(tmp_path):
    from ssmkit.train.trainer import _prepare
    config = make_config(["dataset=digits", "epochs=1", "d_model=8", "n_layers=1", "train_subset=64", "eval_subset=32",
                          "batch_size=32", "schedule=cosine_warmup", "warmup_steps=0", "schedule_steps=4",
                          f"out_dir={tmp_path}"])
    schedule = _prepare(config, None)[7].lr_lambdas[0]
    assert (schedule.total, schedule.warmup) == (4, 0)  # not the epoch's 2 steps


@pytest.mark.parametrize("warmup_epochs", [0, 1, 2])
def test_s5_cosine_is_the_official_s5_loop(warmup_epochs):
    """schedule=s5_cosine against the official S5 training loop replayed: each epoch picks linear warmup (epochs before
    warmup_end) or the cosine; after every step the lr of the next is set from the global step counter; the optimizer
    starts at the full rate; lr_min 0."""
    import math

    from ssmkit.train.trainer import Schedule
    steps_per_epoch, epochs = 5, 6
    W, E = steps_per_epoch * warmup_epochs, steps_per_epoch * (epochs - warmup_epochs)
    official, lr, step = [], 1.0, 0
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            official.append(lr)
            lr = (step + 1) / W if epoch < warmup_epochs else 0.5 * (1 + math.cos(math.pi * min(step, E) / E))
            step += 1
    ours = Schedule("s5_cosine", warmup=W, total=steps_per_epoch * epochs, patience=1, factor=0.5)
    assert [ours(t) for t in range(len(official))] == pytest.approx(official, abs=1e-15)
    if W:  # the cosine ends W steps early: the last W - 1 steps at lr_min
        assert official[E] > 0 and official[E + 1:] == pytest.approx([0.0] * (W - 1), abs=1e-15)
    assert make_config(["schedule=s5_cosine"]).schedule == "s5_cosine"


def test_adam_betas_reach_the_optimizer(tmp_path):
    from ssmkit.train.trainer import _prepare
    config = make_config(["dataset=digits", "epochs=1", "d_model=8", "n_layers=1", "adam_betas=[0.9, 0.98]",
                          "train_subset=64", "eval_subset=32", f"out_dir={tmp_path}"])
    optimizer = _prepare(config, None)[6]
    assert all(g["betas"] == (0.9, 0.98) for g in optimizer.param_groups)


@pytest.mark.parametrize("extra, warmup", [([], 2), (["warmup_steps=5"], 5)])
def test_warmup_steps_replace_warmup_epochs(tmp_path, extra, warmup):
    """warmup_steps (fairseq's --warmup-updates) sets the warmup in optimizer steps; by default it is warmup_epochs
    times the steps per epoch."""
    from ssmkit.train.trainer import _prepare
    config = make_config(["dataset=digits", "epochs=3", "d_model=8", "n_layers=1", "warmup_epochs=1", "batch_size=32",
                          "train_subset=64", "eval_subset=32", f"out_dir={tmp_path}"] + extra)
    scheduler = _prepare(config, None)[7]
    assert scheduler.lr_lambdas[0].warmup == warmup and scheduler.lr_lambdas[0].total == 6


def test_heads_other_than_linear_are_for_the_sequence_model():
    """Checked with the config, before any data is read."""
    with pytest.raises(ValueError, match="head: only model=sequence takes it"):
        make_config(["model=sashimi", "layer=s4", "head=mlp"])
    with pytest.raises(ValueError, match="tie_dropout: only model=sequence or s4nd or cnn takes it"):
        make_config(["model=sashimi", "layer=s4", "tie_dropout=true"])
    assert make_config(["model=s4nd", "tie_dropout=true"]).tie_dropout
    with pytest.raises(ValueError, match="norm: only model=sequence or s4nd or cnn takes it"):  # sashimi: model_options
        make_config(["model=sashimi", "layer=s4", "norm=scalar"])


def test_an_ffn_after_each_layer_trains(tmp_path):
    train(_config(tmp_path, "ffn", ["ffn_mult=2", "epochs=1"]), log=lambda *_: None)
    model = ssmkit.load(tmp_path / "ffn")
    assert model.ffns is not None and model.ffns[0][0].out_features == 128


def test_regression_task_trains_with_mse_and_reports_rmse(tmp_path):
    results = train(make_config(["dataset=adding", "dataset_options.length=32", "dataset_options.n_train=256",
                                 "dataset_options.n_eval=64", "d_model=32", "n_layers=1", "d_state=16", "epochs=3",
                                 "batch_size=32", "warmup_epochs=0", f"out_dir={tmp_path}", "run_name=r"]),
                    log=lambda *_: None)
    rows = _rows(tmp_path / "r")
    assert "val_rmse" in rows[0] and "val_acc" not in rows[0]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert results["test_rmse"] == pytest.approx(math.sqrt(results["test_loss"]))  # loss is the MSE per value
    assert evaluate_run(tmp_path / "r")["rmse"] == pytest.approx(results["test_rmse"])


def test_pair_task_trains_a_two_tower_model(tmp_path):
    train(make_config(["dataset=digits-pairs", "dataset_options.n_pairs=256", "d_model=32", "n_layers=1",
                       "d_state=16", "epochs=2", "batch_size=32", "warmup_epochs=0", f"out_dir={tmp_path}",
                       "run_name=p"]), log=lambda *_: None)
    model = ssmkit.load(tmp_path / "p")
    assert model.pair and model.decoder[0].in_features == 4 * 32


def test_listops_trains_from_generated_lra_files(tmp_path):
    from ssmkit.data.listops import write_listops
    write_listops(tmp_path / "lo", 128, 32, 32, min_length=10, max_length=100, max_depth=5)
    results = train(make_config([f"data_dir={tmp_path / 'lo'}", "dataset=listops", "dataset_options.max_length=100",
                                 "d_model=32", "n_layers=1", "d_state=16", "epochs=1", "batch_size=32",
                                 "warmup_epochs=0", f"out_dir={tmp_path}", "run_name=run"]), log=lambda *_: None)
    assert 0.0 <= results["test_acc"] <= 1.0 and ssmkit.load(tmp_path / "run").encoder.num_embeddings == 16


def test_max_minutes_stops_after_the_first_epoch_past_the_limit(tmp_path):
    first = train(_config(tmp_path, "t", ["epochs=5", "max_minutes=1e-6"]), log=lambda *_: None)
    assert len(_rows(tmp_path / "t")) == 1
    # resumed after it stopped there (a device call that ended as the run did): no more epochs, the same results
    again = train(resume=tmp_path / "t", log=lambda *_: None)
    assert len(_rows(tmp_path / "t")) == 1 and again["test_acc"] == first["test_acc"]
    with pytest.raises(ValueError, match="max_minutes"):
        make_config(["max_minutes=-1"])


def test_model_options_are_checked_against_the_model(tmp_path):
    with pytest.raises(ValueError, match="model: expected one of"):
        make_config(["model=wavenet"])
    with pytest.raises(ValueError, match="sashimi takes pool, expand, unet"):
        train(_config(tmp_path, "s", ["model=sashimi", "model_options.pools=[4]", "dataset=copying"]),
              log=lambda *_: None)
    with pytest.raises(ValueError, match="per-position"):
        train(_config(tmp_path, "c", ["model=sashimi"]), log=lambda *_: None)
    with pytest.raises(ValueError, match="the sequence model takes none"):
        train(_config(tmp_path, "q", ["model_options.pool=[4]"]), log=lambda *_: None)


def test_an_audio_dataset_is_scored_in_bits_per_token_lower_is_better():
    from ssmkit.train.task import Task

    class Audio:
        task, metric = "lm", "bits"

    task = Task(Audio())
    logits = torch.zeros(2, 3, 256)  # uniform over 256 codes: 8 bits each
    loss, bits, n = task.sums(logits, torch.tensor([[1, 2, -100], [3, 4, 5]]))
    assert n == 5 and task.value(bits.item(), n.item()) == pytest.approx(8.0)
    assert task.better(7.0, 8.0) and not task.better(9.0, 8.0)

