"""Δ's parameterization and learning rate (SSMKernel.init_dt): softplus as the official S4 configs, the same Δ at
init as exp, the three views agreeing, and Δ's own optimizer settings (lr.dt: null -> the model's lr)."""
import pytest
import torch
import torch.nn.functional as F

import ssmkit
from conftest import rel_err, three_views
from ssmkit.train.optim import param_groups


@pytest.mark.parametrize("kind", ["s4", "s4d"])
def test_softplus_dt_starts_where_exp_does(kind):
    torch.manual_seed(0)
    exp = ssmkit.layer(kind, d_model=4, d_state=8).double()
    torch.manual_seed(0)
    soft = ssmkit.layer(kind, d_model=4, d_state=8, dt_transform="softplus").double()
    assert not hasattr(soft.kernel, "log_dt") and rel_err(F.softplus(soft.kernel.inv_dt), soft.kernel.dt()) < 1e-15
    # the same draws; the parameters are stored in float32 (the default dtype), each rounded once
    assert rel_err(soft.kernel.dt(), exp.kernel.dt()) < 1e-6 and rel_err(soft.kernel.dt(0.5), exp.kernel.dt(0.5)) < 1e-6
    u = torch.randn(2, 37, 4, dtype=torch.float64)
    assert rel_err(soft(u)[0], exp(u)[0]) < 1e-5
    y, steps, chunks = three_views(soft, u)
    assert rel_err(steps, y) < 1e-10 and rel_err(chunks, y) < 1e-10
    soft(u)[0].square().sum().backward()
    assert soft.kernel.inv_dt.grad.abs().sum() > 0


@pytest.mark.parametrize("dt_lr, lr, fixed", [("ssm", 1e-3, False), (None, 1e-2, False), (5e-4, 5e-4, False),
                                              (0, None, True)])
def test_dt_gets_its_own_learning_rate_and_no_weight_decay(dt_lr, lr, fixed):
    layer = ssmkit.layer("s4", d_model=4, d_state=8, dt_transform="softplus", dt_lr=dt_lr, ssm_lr=1e-3)
    if fixed:
        assert "inv_dt" in dict(layer.kernel.named_buffers())
        return
    groups = param_groups(layer, lr=1e-2, weight_decay=0.1)
    group = next(g for g in groups if any(p is layer.kernel.inv_dt for p in g["params"]))
    assert group["lr"] == lr and group["weight_decay"] == 0.0


@pytest.mark.parametrize("dt_lr, lr", [("ssm", 1e-3), (None, 1e-2), (0.02, 0.02)])
def test_dss_dt_takes_its_own_learning_rate_as_the_official_lra_commands(dt_lr, lr):
    """DSS's Δ (one per part of λ) at the rate of model.layer.lr.log_dt; Λ and W keep ssm_lr; none decays."""
    layer = ssmkit.layer("dss", d_model=4, d_state=8, dt_lr=dt_lr, ssm_lr=1e-3)
    groups = param_groups(layer, lr=1e-2, weight_decay=0.1)
    group = next(g for g in groups if any(p is layer.kernel.log_dt for p in g["params"]))
    assert group["lr"] == lr and group["weight_decay"] == 0.0
    assert layer.kernel.log_dt.shape == (4, 2)
    others = next(g for g in groups if any(p is layer.kernel.C for p in g["params"]))  # W, the DSS output weights
    assert others["lr"] == 1e-3 and others["weight_decay"] == 0.0


def test_bad_dt_options_are_named():
    with pytest.raises(ValueError, match="dt_transform"):
        ssmkit.layer("s4d", d_model=4, dt_transform="sigmoid")
    with pytest.raises(ValueError, match="dt_lr"):
        ssmkit.layer("s4", d_model=4, dt_lr="model")
