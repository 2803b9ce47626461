"""DDP through torchrun: 2 processes on CPU (gloo) train the same model as one process, up to reduction order."""
import csv
import subprocess
import sys

import pytest
import torch

from ssmkit.train import load_experiment, make_config, train

ARGS = ["d_model=32", "n_layers=1", "d_state=8", "epochs=2", "batch_size=32", "warmup_epochs=0", "dropout=0"]


def _metrics(path):
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_two_gloo_processes_agree_with_one(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ssmkit",
           "train", *ARGS, f"out_dir={tmp_path}", "run_name=ddp"]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    # the CLI without an experiment trains the embedded default, `digits`: the same here
    config = make_config(ARGS + [f"out_dir={tmp_path}", "run_name=one"], load_experiment("digits"), source="digits")
    single = train(config, log=lambda *_: None)
    ddp, one = _metrics(tmp_path / "ddp" / "metrics.csv"), _metrics(tmp_path / "one" / "metrics.csv")
    assert len(ddp) == len(one) == 2
    for a, b in zip(ddp, one):
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    with pytest.raises(ValueError, match="written by 2 processes"):
        train(resume=tmp_path / "ddp", log=lambda *_: None)
    assert single["test_acc"] > 0



def test_lra_listops_under_several_processes_goes_op_by_op_on_trimmed_batches():
    """lra-listops ships model_graph and one-length batches, which are for one process: under DDP the run warns once
    (rank 0), goes op by op and cuts each batch to its longest again (BatchNorm synchronized across the processes;
    SyncBatchNorm needs GPUs, so this is the trainer's own step, not a torchrun)."""
    import warnings

    from ssmkit.train.trainer import _graph_options
    config = make_config([], load_experiment("lra-listops"), source="lra-listops")
    assert config.model_graph and not config.trim_padding
    cuda = torch.device("cuda")
    assert _graph_options(config, 1, 0, cuda) is config
    with pytest.warns(UserWarning, match="model_graph: one process only.*trim_padding=true"):
        changed = _graph_options(config, 2, 0, cuda)
    assert not changed.model_graph and changed.trim_padding
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _graph_options(config, 2, 1, cuda) == changed


def test_on_a_cpu_the_graphs_options_give_way_to_trimmed_batches_silently():
    """On a CPU the graphs would not run: lra-text's one-length batches are cut to their longest (the same outputs,
    less padding), without a warning; S5's ListOps, whose model reads the padding, keeps its full-length batches."""
    import warnings

    from ssmkit.train.trainer import _graph_options
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = _graph_options(make_config([], load_experiment("lra-text"), source="lra-text"), 1, 0,
                              torch.device("cpu"))
        s5 = _graph_options(make_config([], load_experiment("s5-lra-listops"), source="s5-lra-listops"), 1, 0,
                            torch.device("cpu"))
    assert not text.model_graph and text.trim_padding
    assert not s5.model_graph and not s5.trim_padding