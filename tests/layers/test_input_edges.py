"""Edge inputs every layer answers with one ValueError (or handles), never a backend error or a silent NaN."""
import inspect
import math

import pytest
import torch

import ssmkit
from ssmkit.export import freeze
from ssmkit.layers import DownPool, UpPool

OPTIONS = {"sgconv": {"l_max": 16}, "mega": {"l_max": 16}, "ckconv": {"l_max": 16}}


def _layer(name):
    return ssmkit.layer(name, d_model=4, **OPTIONS.get(name, {})).eval()


@pytest.mark.parametrize("name", sorted(ssmkit.LAYERS))
def test_an_empty_batch_is_refused_by_name(name):
    with pytest.raises(ValueError, match="u: expected a batch of B >= 1 sequences, got B=0"):
        _layer(name)(torch.randn(0, 8, 4))


STEPPING = ["attention", "dlr", "dss", "ema", "gss", "liquid_s4", "mega", "s4", "s4d", "s5"]
OTHER_STATES = {  # every other default_state that allocates from batch_size: the pools, the frozen forms
    "down_pool": lambda: DownPool(4, 8, 2), "up_pool": lambda: UpPool(8, 4, 2),
    "frozen_s4d": lambda: freeze(ssmkit.S4D(4), 8), "frozen_s5": lambda: freeze(ssmkit.S5(4, 8), 8)}


@pytest.mark.parametrize("batch_size", [0, -1, 2.0])
@pytest.mark.parametrize("name", STEPPING + sorted(OTHER_STATES))
def test_a_batch_size_below_one_is_refused_by_default_state(name, batch_size):
    module = OTHER_STATES[name]() if name in OTHER_STATES else _layer(name)
    with pytest.raises(ValueError, match=f"batch_size: expected a positive integer, got {batch_size}"):
        module.default_state(batch_size)


RESAMPLABLE = [n for n, cls in sorted(ssmkit.LAYERS.items()) if "rate" in inspect.signature(cls.forward).parameters]


@pytest.mark.parametrize("name", RESAMPLABLE)
@pytest.mark.parametrize("rate", [math.inf, math.nan, 0.0, -1.0])
def test_a_rate_that_is_not_a_positive_finite_number_is_refused(name, rate):
    with pytest.raises(ValueError, match="rate: expected a positive finite number"):
        _layer(name)(torch.randn(1, 8, 4), rate=rate)


def test_s5_steps_from_a_complex128_state_in_a_float32_layer():
    layer = ssmkit.S5(4, 8).eval()
    state, u = torch.randn(2, 4, dtype=torch.complex64), torch.randn(2, 4)
    y, next_state = layer.step(u, state.to(torch.complex128))
    expected, expected_state = layer.step(u, state)
    assert torch.equal(y, expected) and torch.equal(next_state, expected_state)


@pytest.mark.parametrize("name", ["s4d", "s4"])
def test_a_nan_input_poisons_every_fft_output_but_only_later_steps(name):
    """Documented in the README: the FFT mixes all positions, the recurrence only carries forward."""
    layer = _layer(name)
    u = torch.randn(1, 8, 4)
    u[0, 5, 0] = math.nan
    with torch.no_grad():
        y, _ = layer(u)
        state, steps = layer.default_state(1), []
        for t in range(8):
            y_t, state = layer.step(u[:, t], state)
            steps.append(y_t)
    assert torch.isnan(y[0, :5]).any()
    assert torch.isfinite(torch.stack(steps[:5])).all() and torch.isnan(steps[5]).any()
