"""Runs never share or leave their folder, nothing is lost on a crash, and every bad setting is one clear line."""
import csv
import errno
import json
import re
import subprocess
import sys

import pytest
import torch

from ssmkit.train import evaluate_run, make_config, train
from ssmkit.train import checkpoint
from ssmkit.train.checkpoint import read_state, read_weights

SMALL = ["d_model=16", "n_layers=1", "d_state=4", "batch_size=32", "warmup_epochs=0", "train_subset=64",
         "eval_subset=40"]


def _quiet(*_):
    pass


def _config(tmp_path, name, *extra):
    return make_config(SMALL + ["epochs=2", f"out_dir={tmp_path}", *([f"run_name={name}"] if name else []), *extra])


def _csv_rows(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _cli(capsys, *args):
    """(exit status, stdout, stderr) of the command line, run in this process."""
    from ssmkit.cli import main
    capsys.readouterr()
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


# -- 1. concurrent runs ----------------------------------------------------------------------------------------------
def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    from ssmkit.train import run_dir

    class Frozen:
        @staticmethod
        def now():
            import datetime
            return datetime.datetime(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(run_dir, "datetime", Frozen)
    config = _config(tmp_path, None)
    first, second = run_dir.new_run_dir(config), run_dir.new_run_dir(config)
    assert first.name == "digits-s4d-20260102-030405" and second.name == "digits-s4d-20260102-030405-2"
    assert (first / "config.yaml").is_file() and (second / "config.yaml").is_file()


def test_a_run_name_in_use_by_a_run_that_just_started_is_refused(tmp_path):
    from ssmkit.train.trainer import new_run_dir

    new_run_dir(_config(tmp_path, "a"))  # another process has claimed it, no checkpoint yet
    with pytest.raises(ValueError, match="run_name: .*a already holds a run; resume it with --resume"):
        train(_config(tmp_path, "a"), log=_quiet)
    assert not (tmp_path / "a" / "checkpoints").exists()


def test_a_folder_that_is_not_a_run_is_never_written_into(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="data already exists and is not an ssmkit run"):
        train(_config(tmp_path, "data"), log=_quiet)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["notes.txt"]


# -- 3. metrics.csv and leftovers --------------------------------------------------------------------------------------
def test_a_crash_between_the_last_checkpoint_and_the_csv_is_repaired_on_resume(tmp_path, monkeypatch):
    from ssmkit.train import trainer
    real = trainer.write_metrics  # (the name it has in trainer.py, which writes metrics.csv after each checkpoint)

    def dies_at_the_last_epoch(history, path):
        if len(history) == 2:
            raise KeyboardInterrupt  # a kill -9 between the checkpoint and the CSV
        real(history, path)

    monkeypatch.setattr(trainer, "write_metrics", dies_at_the_last_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, "a"), log=_quiet)
    monkeypatch.undo()
    run = tmp_path / "a"
    assert len(_csv_rows(run)) == 1 and read_state(run / "checkpoints")["epoch"] == 1
    (run / "checkpoints" / ".epoch-0003.tmp").mkdir()  # leftovers of other crashes
    (run / "checkpoints" / "epoch-0009").mkdir()
    (run / "checkpoints" / ".last.tmp").write_text("epoch-0009\n")
    (run / ".metrics.csv.tmp").write_text("epoch\n")
    train(resume=run, log=_quiet)
    assert [row["epoch"] for row in _csv_rows(run)] == ["1", "2"]
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert left == sorted({"best", "last", "epoch-0002", (run / "checkpoints" / "best").read_text().strip()})
    assert not list(run.glob(".*.tmp")) and (run / "results.json").is_file()


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    from ssmkit.train.trainer import new_run_dir
    full = train(_config(tmp_path, "full"), log=_quiet)
    new_run_dir(_config(tmp_path, "cut"))  # killed after claiming its folder, before epoch 1 was saved
    resumed = train(resume=tmp_path / "cut", log=_quiet)
    assert resumed["test_acc"] == full["test_acc"] and len(_csv_rows(tmp_path / "cut")) == 2


def test_a_run_whose_model_has_other_parameters_now_is_refused_on_resume_in_one_line(tmp_path):
    """A checkpoint written by an ssmkit whose model had other parameters (here: one tensor fewer in a group, as
    S5's encoder before its bias) names the mismatch instead of torch's optimizer error."""
    train(_config(tmp_path, "r", "epochs=1"), log=_quiet)
    path = checkpoint.checkpoint_folder(tmp_path / "r" / "checkpoints", "last") / "state.pt"
    state = torch.load(path, weights_only=True)
    state["optimizer"]["param_groups"][0]["params"].pop()
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"resume: .* was saved by an ssmkit whose model had other parameters "
                                         r"\(optimizer groups of \[\d+"):
        train(resume=tmp_path / "r", log=_quiet)


def test_a_full_disk_while_saving_says_so_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = checkpoint.torch.save
    calls = {"n": 0}

    def full_disk(obj, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            path.write_bytes(b"PK\x03\x04 part of a zip")
            raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 4480 vs 4416")
        return real(obj, path, *a, **k)

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda _: type("Usage", (), {"free": 100})())
    with pytest.raises(OSError, match="writing .epoch-0002.tmp failed: the disk is full .*epoch-0001, is kept") as e:
        train(_config(tmp_path, "a"), log=_quiet)
    assert e.value.errno == errno.ENOSPC
    folder = tmp_path / "a" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best", "epoch-0001", "last"]
    assert read_state(folder)["epoch"] == 0


# -- 9. paths ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../x", "a/../../x", "/tmp/elsewhere", ".", ""])
def test_a_run_name_outside_out_dir_is_refused(name):
    with pytest.raises(ValueError, match="run_name: expected a folder name inside out_dir"):
        make_config([f"run_name={name}"])


def test_a_checkpoint_pointer_naming_a_folder_outside_its_run_is_refused(tmp_path):
    train(_config(tmp_path, "a", "epochs=1"), log=_quiet)
    outside = tmp_path / "elsewhere"
    (outside / "checkpoints").mkdir(parents=True)
    for name in ("model.safetensors", "state.pt"):
        source = tmp_path / "a" / "checkpoints" / "epoch-0001" / name
        (outside / "checkpoints" / name).write_bytes(source.read_bytes())
    for target in ("../../elsewhere/checkpoints", str(outside / "checkpoints")):
        (tmp_path / "a" / "checkpoints" / "last").write_text(target + "\n")
        with pytest.raises(ValueError, match="expected an epoch folder of this run"):
            read_weights(tmp_path / "a" / "checkpoints")


# -- 7, 8. bad settings are one line, before anything runs ------------------------------------------------------------
@pytest.mark.parametrize("override, match", [
    ("lr=.nan", "lr: expected a finite number"),
    ("lr=.inf", "lr: expected a finite number"),
    ("dropout=-0.5", r"dropout: expected a probability in \[0, 1\)"),
    ("dropout=1.0", r"dropout: expected a probability in \[0, 1\)"),
    ("weight_decay=-1", "weight_decay: expected a number >= 0"),
    ("warmup_epochs=-5", "warmup_epochs: expected a number >= 0"),
    ("grad_clip=-1", "grad_clip: expected a number >= 0"),
    ("attention_heads=0", "attention_heads: expected a positive integer"),
    ("lr=[", "not a YAML scalar"),
    ("dataset_options.pattern=**/*.py", "not a YAML scalar .*; quote it for the shell and for YAML: "
                                        "'dataset_options.pattern=\"\\*\\*/\\*.py\"'"),
])
def test_invalid_values_are_refused_by_the_config(override, match):
    with pytest.raises(ValueError, match=match):
        make_config([override])


def test_numbers_written_with_an_exponent_and_no_dot_are_floats(tmp_path):
    """YAML 1.1 reads 3e-3 as text; the README's own example lr=3e-3 must work, in overrides and in files."""
    assert make_config(["lr=3e-3", "weight_decay=1e-2"]).lr == 0.003
    from ssmkit.train import load_experiment
    (tmp_path / "e.yaml").write_text("lr: 3e-3\nssm_lr: 1E-4\n")
    assert make_config([], load_experiment(str(tmp_path / "e.yaml"))).ssm_lr == 1e-4


@pytest.mark.parametrize("device, match", [
    ("foo", "device: expected auto, cpu, cuda, cuda:N or mps, got 'foo'"),
    ("cuda", "device: 'cuda' asked for, but torch sees no CUDA GPU"),
])
def test_a_device_torch_does_not_have_is_one_line(tmp_path, device, match):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=match):
        train(_config(tmp_path, "a", f"device={device}"), log=_quiet)


def test_command_line_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("layer: s4\n  d_model: [8\n")
    cases = [(["train", "device=foo"], "device: expected auto"),
             (["train", f"out_dir={afile}"], "out_dir: .*afile is a file"),
             (["train", bad_yaml], "bad.yaml: line 2 not valid YAML"),
             (["train", "dataset_options.permute=maybe"], "dataset_options.permute: expected bool"),
             (["data", "listops", afile], "out_dir: .*afile is a file"),
             (["data", "pathfinder", tmp_path / "pf", "--images", "0"], "--images: expected a positive integer"),
             (["data", "listops", tmp_path / "lo", "--resolution", "64"], "--resolution is an option of pathfinder, "
                                                                           "not of listops")]
    for args, match in cases:
        status, _, err = _cli(capsys, *args)
        assert status == 2 and len(err.strip().splitlines()) == 1, (args, err)
        assert re.search(match, err), (match, err)
    assert not (tmp_path / "pf" / "pathfinder32").exists() and not (tmp_path / "runs").exists()
    assert not (tmp_path / "lo").exists()


def test_a_diverging_run_stops_with_one_line(tmp_path, capsys):
    status, _, err = _cli(capsys, "train", *SMALL, "epochs=1", "lr=1e30", f"out_dir={tmp_path}", "run_name=d")
    assert status == 2 and "the loss became" in err and "lower lr" in err


def test_the_command_line_prints_no_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ssmkit", "train", "device=foo", f"out_dir={tmp_path}"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr == "ssmkit train: error: device: expected auto, cpu, cuda, cuda:N or " \
                                                 "mps, got 'foo'\n"


def test_a_damaged_config_yaml_is_refused_on_resume(tmp_path, capsys):
    train(_config(tmp_path, "a", "epochs=1"), log=_quiet)
    config = tmp_path / "a" / "config.yaml"
    config.write_text("")
    with pytest.raises(ValueError, match="config.yaml: empty"):
        train(resume=tmp_path / "a", log=_quiet)
    config.write_text("layer: s4d\nd_model: [16\n")
    status, _, err = _cli(capsys, "train", "--resume", tmp_path / "a")
    assert status == 2 and "config.yaml: line 3 not valid YAML" in err


@pytest.mark.parametrize("option", ["layer_options.bidirectional=true", "layer=mega layer_options.causal=false"])
def test_a_language_model_refuses_layers_that_read_future_tokens(tmp_path, option):
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("hello world, " * 400)
    with pytest.raises(ValueError, match="read future tokens"):
        train(make_config(SMALL + ["epochs=1", "dataset=text", f"data_dir={tmp_path / 'text'}",
                                   "dataset_options.seq_len=32", f"out_dir={tmp_path}", "run_name=lm",
                                   *option.split()]), log=_quiet)


def test_a_model_that_cannot_take_the_data_fails_before_its_folder_is_written(tmp_path, capsys, monkeypatch):
    """A length past the l_max of a kernel that is defined up to it (DSS-softmax's normalizer) is one line that names
    the options and the kernel's own check, before anything is written; training itself is unchanged by the check
    (same weights as a run without it)."""
    status, _, err = _cli(capsys, "train", *SMALL, "epochs=1", "layer=dss", "layer_options.l_max=32",
                          f"out_dir={tmp_path}", "run_name=short")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "'l_max': 32" in err and "normalized over l_max=32, got length 64" in err
    assert not (tmp_path / "short").exists()
    from ssmkit.train import trainer
    runs = {}
    for name in ("checked", "unchecked"):
        if name == "unchecked":
            monkeypatch.setattr(trainer, "_check_takes_data", lambda *a: None)
        train(_config(tmp_path, name, "epochs=1", "layer_options.dropout=0.1"), log=_quiet)  # dropout: the RNG used
        runs[name] = read_weights(tmp_path / name / "checkpoints", "last")
    assert all(torch.equal(runs["checked"][k], runs["unchecked"][k]) for k in runs["checked"])


# -- 10. eval scores what the run scored -------------------------------------------------------------------------------
def test_eval_follows_the_runs_eval_subset_unless_told_otherwise(tmp_path, capsys):
    results = train(_config(tmp_path, "a", "epochs=1"), log=_quiet)
    m = evaluate_run(tmp_path / "a")
    assert m["samples"] == 40 and m["acc"] == results["test_acc"]
    assert json.loads((tmp_path / "a" / "results.json").read_text())["test_acc"] == m["acc"]
    assert evaluate_run(tmp_path / "a", subset=0)["samples"] == 360  # the whole test split
    status, out, _ = _cli(capsys, "eval", tmp_path / "a", "--subset", "100")
    assert status == 0 and "(100 samples)" in out
