"""S4 in float32 at large Δ (what rate reaches): every view keeps float32 accuracy against the float64 layer.

C̃ = C(I − Ā^L) cancels where |Ā_n| ≈ 1, and the generating function divides that difference by 1 − Ā_n ω; computed in
float32, the views were off by 1e-2 at Δ = 100 and 1e-1 at Δ = 1000 (see kernels/dplr.py ctilde_from_c).
"""
import copy
import math

import pytest
import torch

from conftest import random_stable, rel_err, three_views
import ssmkit

DTS = (0.1, 10.0, 100.0, 1000.0)


def _at_dt(layer, dt, rate=1.0):
    """layer with Δ·rate = dt in every channel, and its float64 copy."""
    with torch.no_grad():
        layer.kernel.log_dt.fill_(math.log(dt / rate))
    return layer, copy.deepcopy(layer).double()


@pytest.mark.parametrize("cls", [ssmkit.S4, ssmkit.LiquidS4])
@pytest.mark.parametrize("l_max, rate", [(None, 1.0), (100, 3.0)])
def test_float32_convolution_matches_float64_at_every_dt(cls, l_max, rate):
    torch.manual_seed(0)
    layer = cls(4, 32, l_max=l_max).eval()
    u = torch.randn(2, 100, 4)
    for dt in DTS:
        layer, wide = _at_dt(layer, dt, rate)
        with torch.no_grad():
            assert rel_err(layer(u, rate=rate)[0].double(), wide(u.double(), rate=rate)[0]) < 2e-5, dt
            assert rel_err(layer.kernel(256, rate).double(), wide.kernel(256, rate)) < 2e-5, dt


def test_float32_step_and_chunks_match_float64_at_every_dt():
    """The recurrence reads the plain C = C̃(I − Ā^l_max)^{-1}; the chunks a C̃ of their own length."""
    torch.manual_seed(0)
    layer = ssmkit.S4(4, 32, l_max=48).eval()
    u = torch.randn(2, 37, 4)
    for dt in DTS:
        layer, wide = _at_dt(layer, dt)
        with torch.no_grad():
            y64, _ = wide(u.double())
            views = three_views(layer, u)
        for name, y in zip(("forward", "step", "chunks"), views):
            assert rel_err(y.double(), y64) < 2e-5, (dt, name)


def test_functional_dplr_kernel_in_float32_matches_float64_at_large_dt():
    Lambda, P, B, C, _ = random_stable(3, 16, dtype=torch.complex64)
    for dt in DTS:
        dt = torch.full((3,), dt)
        K32 = ssmkit.functional.dplr_kernel(Lambda, P, B, C, dt, 200)
        K64 = ssmkit.functional.dplr_kernel(*(t.to(torch.complex128) for t in (Lambda, P, B, C)), dt.double(), 200)
        assert rel_err(K32.double(), K64) < 2e-5, dt
