"""One sequence split over 2 and 3 gloo processes (models/sequence_parallel.py): every rank's outputs and the summed
parameter gradients equal the one-process model's, in float64."""
import os
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssmkit.models import SequenceModel
from ssmkit.models.sequence_parallel import part, sum_gradients

L, B = 48, 2
MODELS = {  # name: (SequenceModel options, pooled)
    "s4": (dict(layer="s4", layer_options=dict(d_state=8, l_max=L)), False),
    "s4d": (dict(layer="s4d", layer_options=dict(d_state=8)), True),
    "dss": (dict(layer="dss", layer_options=dict(d_state=8, variant="exp")), False),
    "dlr": (dict(layer="dlr", layer_options=dict(d_state=8)), False),
    "ema": (dict(layer="ema", layer_options=dict(ndim=4)), True),
}


def _model(name):
    options, pooled = MODELS[name]
    torch.manual_seed(0)
    model = SequenceModel(3, 5, d_model=6, n_layers=2, ffn_mult=2, pool="mean" if pooled else "none", **options)
    return model.double(), pooled


def _errors():
    """What cannot run on a split sequence says so in one line, naming the argument."""
    x = part(torch.randn(B, L, 3, dtype=torch.float64), None)
    cases = [(dict(layer="dss", layer_options=dict(d_state=4)), "DSSKernel, whose kernel is not its recurrence"),
             (dict(layer="s4d", layer_options=dict(bidirectional=True)), "bidirectional"),
             (dict(layer="s4d", norm="batch"), "norm: .*BatchNorm"),
             (dict(layer="s5"), "sequence_group: block 0"),
             (dict(layer="s4d", pool="last"), "pool")]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            SequenceModel(3, 5, d_model=6, n_layers=1, **options).double()(x, sequence_group=dist.group.WORLD)
    with pytest.raises(ValueError, match="x: expected a length divisible by the . ranks"):
        part(torch.zeros(1, L + 1), None)


def _compare(name, K):
    """max |y − y_one| and the largest relative gradient error over the parameters, on this rank."""
    model, pooled = _model(name)
    torch.manual_seed(1)
    x = torch.randn(B, L, 3, dtype=torch.float64)
    weight = torch.randn(B, 5, dtype=torch.float64) if pooled else torch.randn(B, L, 5, dtype=torch.float64)
    y_full = model(x)
    (y_full * weight).sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    y = model(part(x, None), sequence_group=dist.group.WORLD)
    share = (y * weight).sum() / K if pooled else (y * part(weight, None)).sum()
    share.backward()
    sum_gradients(model)
    out_err = (y - (y_full if pooled else part(y_full, None))).abs().max().item()
    grad_err = max(((p.grad - expected[n]).abs().max() / expected[n].abs().max().clamp_min(1e-30)).item()
                   for n, p in model.named_parameters())
    return out_err, grad_err


def _worker(rank, K, store_path, names, out_dir):
    lines = []
    try:
        dist.init_process_group("gloo", store=dist.FileStore(store_path, K), rank=rank, world_size=K)
        _errors()
        for name in names:
            lines.append(f"{name} " + " ".join(map(str, _compare(name, K))))
    except Exception:
        lines.append("error " + traceback.format_exc())
    finally:
        (Path(out_dir) / f"{rank}.txt").write_text("\n".join(lines))
        os._exit(0)  # skip gloo's teardown, which can abort after the results are written


def _run(K, names, tmp_path):
    mp.start_processes(_worker, args=(K, str(tmp_path / "store"), names, str(tmp_path)), nprocs=K, join=True,
                       start_method="spawn")
    for rank in range(K):
        text = (tmp_path / f"{rank}.txt").read_text()
        assert "error" not in text, text
        for line in text.splitlines():
            name, out_err, grad_err = line.split()
            assert float(out_err) < 1e-10 and float(grad_err) < 1e-10, (name, rank, out_err, grad_err)
        assert len(text.splitlines()) == len(names)


@pytest.mark.slow
def test_two_ranks_equal_one_process(tmp_path):
    """S4, S4D, DSS-exp, DLR and EMA models (with LayerNorm and FFN blocks), per-position and mean-pooled; and the
    clear errors for what cannot be split."""
    _run(2, sorted(MODELS), tmp_path)


@pytest.mark.slow
def test_three_ranks_equal_one_process(tmp_path):
    _run(3, ["s4", "s4d"], tmp_path)
