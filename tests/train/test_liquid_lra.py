"""The liquid-lra-* experiments build the models of the official Liquid-S4 LRA configs (raminmh/liquid-s4
configs/experiment/lra/*.yaml with the paper's PB order, arXiv 2209.12951 Table 1) and train with their recipe; the
CPU-scale one trains on generated ListOps."""
import types

import pytest
import torch

from ssmkit.layers import LiquidS4
from ssmkit.train import load_experiment, make_config, train
from ssmkit.train.build import build_model
from ssmkit.train.optim import param_groups

VOCAB = 20
# what each official config (with model.layer.liquid_kernel=polyb model.layer.liquid_degree=p) sets: layers, width,
# d_state (pairs kept), the paper's order, two-sided, prenorm, norm, dropout, decoder mode, optimizer lr and weight
# decay, lr of A and B, lr of dt (None: the optimizer's), Δ range, warmup and training steps of cosine_warmup,
# epochs, batch; the dataset's classes, tokens or values, two towers; and the parameter count of the official model
# as its train.py builds that config (vocabulary VOCAB for tokens), printed by benchmarks/versus_official.py
# (compare_liquid_lra) from the official modules.
OFFICIAL = {
    "liquid-lra-listops": dict(n_layers=9, H=128, N=7, N2=3, order=5, bidirectional=False, prenorm=True,
                               norm=torch.nn.BatchNorm1d, dropout=0.01, pool="mean", lr=0.002, wd=0.03, ssm_lr=9e-4,
                               dt_lr=None, dt=(0.002, 0.2), warmup=1000, steps=80000, epochs=40, batch=12,
                               classes=10, tokens=True, pair=False, parameters=333_578),
    "liquid-lra-text": dict(n_layers=4, H=128, N=7, N2=3, order=6, bidirectional=False, prenorm=True,
                            norm=torch.nn.BatchNorm1d, dropout=0.1, pool="mean", lr=0.003, wd=0.01, ssm_lr=9e-4,
                            dt_lr=None, dt=(0.002, 0.2), warmup=1000, steps=50000, epochs=50, batch=8, classes=2,
                            tokens=True, pair=False, parameters=149_506),
    "liquid-lra-retrieval": dict(n_layers=6, H=256, N=64, N2=32, order=2, bidirectional=False, prenorm=True,
                                 norm=torch.nn.BatchNorm1d, dropout=0.2, pool="mean", lr=0.005, wd=0.05,
                                 ssm_lr=1e-3, dt_lr=None, dt=(0.001, 0.1), warmup=2500, steps=50000, epochs=20,
                                 batch=16, classes=2, tokens=True, pair=True, parameters=1_457_410),
    "liquid-lra-image": dict(n_layers=6, H=512, N=512, N2=256, order=3, bidirectional=True, prenorm=False,
                             norm=torch.nn.LayerNorm, dropout=0.1, pool="mean", lr=0.01, wd=0.03, ssm_lr=1e-3,
                             dt_lr=None, dt=(0.002, 0.2), warmup=1000, steps=200000, epochs=200, batch=50,
                             classes=10, tokens=False, pair=False, parameters=11_034_634),
    "liquid-lra-pathfinder": dict(n_layers=6, H=256, N=64, N2=32, order=2, bidirectional=False, prenorm=True,
                                  norm=torch.nn.BatchNorm1d, dropout=0.0, pool="last", lr=0.004, wd=0.03,
                                  ssm_lr=1e-3, dt_lr=1e-3, dt=(0.001, 0.1), warmup=2500, steps=500000, epochs=200,
                                  batch=4, classes=2, tokens=False, pair=False, parameters=1_190_402),
    "liquid-lra-pathx": dict(n_layers=6, H=320, N=64, N2=32, order=2, bidirectional=False, prenorm=True,
                             norm=torch.nn.BatchNorm1d, dropout=0.0, pool="mean", lr=0.001, wd=0.05, ssm_lr=5e-4,
                             dt_lr=5e-4, dt=(1e-4, 0.1), warmup=10000, steps=500000, epochs=60, batch=8, classes=2,
                             tokens=False, pair=False, parameters=1_733_762),
}


def _model(name, expected):
    """Our experiment's model as build_model makes it, over a dataset stand-in of the task's shape (l_max None: the
    count does not depend on it, and C̃ at N = 512 would need a 2 GiB dense solve per layer)."""
    config = make_config([], load_experiment(name), source=name)
    tokens = expected["tokens"]
    dataset = types.SimpleNamespace(d_input=VOCAB if tokens else 1, vocab_size=VOCAB if tokens else None,
                                    n_classes=expected["classes"], l_max=None, padding_idx=0 if tokens else None,
                                    pair=expected["pair"], task="classify")
    return config, build_model(config, dataset)


def _groups(config, model):
    """{parameter: (lr, weight decay)} as the trainer's optimizer groups them."""
    groups = param_groups(model, config.lr, config.weight_decay, config.weight_decay_all, config.weight_decay_heads)
    return {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


@pytest.mark.parametrize("name", OFFICIAL)
def test_liquid_lra_experiment_builds_the_official_configs_model(name):
    e = OFFICIAL[name]
    config, model = _model(name, e)
    assert sum(p.numel() for p in model.parameters()) == e["parameters"]
    assert len(model.layers) == e["n_layers"] and config.d_model == e["H"] and config.d_state == e["N"]
    assert config.prenorm is e["prenorm"] and config.dropout == e["dropout"] and config.tie_dropout
    assert config.pool == e["pool"] and model.pair is e["pair"]
    assert all(isinstance(n, e["norm"]) or isinstance(getattr(n, "norm", None), e["norm"]) for n in model.norms)
    for layer in model.layers:
        assert isinstance(layer, LiquidS4)
        assert (layer.order, layer.liquid_kernel, layer.liquid_form) == (e["order"], "pb", "official")
        assert layer.bidirectional is e["bidirectional"]
        k = layer.kernel
        assert (k.H, k.N2, k.n_ssm, k.channels) == (e["H"], e["N2"], e["H"], 2 if e["bidirectional"] else 1)
        dt = k.dt()
        assert e["dt"][0] <= dt.min() and dt.max() <= e["dt"][1]
    groups, first = _groups(config, model), model.layers[0].kernel
    dt_name = next(n for n, _ in first.named_parameters() if n in ("log_dt", "inv_dt"))
    assert groups[id(first.A_real)] == groups[id(first.B)] == groups[id(first.P)] == (e["ssm_lr"], 0.0)
    assert groups[id(getattr(first, dt_name))] == (e["dt_lr"] or e["lr"], 0.0)
    assert groups[id(first.C)] == groups[id(model.layers[0].D)] == (e["lr"], e["wd"])  # C and D: the model's
    ends = [p for m in (model.encoder, model.decoder) for p in m.parameters()]
    assert all(groups[id(p)] == (e["lr"], e["wd"]) for p in ends)  # every other parameter decayed, biases too
    assert (config.schedule, config.warmup_steps, config.schedule_steps) == ("cosine_warmup", e["warmup"], e["steps"])
    assert (config.epochs, config.batch_size, config.drop_last) == (e["epochs"], e["batch"], True)
    assert config.mask_padding == ("layers" if e["tokens"] else True) and config.trim_padding is e["tokens"]


def test_liquid_lra_listops_small_trains_on_generated_listops(tmp_path):
    """The CPU-scale recipe, shrunk further: two steps of batch 4 on generated LRA-format ListOps files."""
    from ssmkit.data.listops import write_listops
    write_listops(tmp_path / "lo", 12, 4, 4, min_length=10, max_length=60)
    config = make_config([f"data_dir={tmp_path / 'lo'}", "batch_size=4", "train_subset=8", "eval_subset=4",
                          "epochs=1", "warmup_epochs=0", f"out_dir={tmp_path / 'runs'}", "run_name=small"],
                         load_experiment("liquid-lra-listops-small"), source="liquid-lra-listops-small")
    assert (config.layer, config.layer_options["liquid_order"], config.d_state) == ("liquid_s4", 5, 7)
    results = train(config, log=lambda *_: None)
    assert 0.0 <= results["test_acc"] <= 1.0 and torch.isfinite(torch.tensor(results["test_loss"]))
