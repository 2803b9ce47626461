"""SequenceModel checks x's shape and dtype (token values only on a CPU: on a GPU that would sync) and names what it
expects."""
from re import escape

import pytest
import torch

from ssmkit.models import SequenceModel

TOKENS = "token ids, an int64 or int32 tensor of shape"


@pytest.mark.parametrize("shape", [(2, 50, 3), (2, 50)])
def test_a_wrong_feature_count_is_refused_by_name(shape):
    expected = f"x: expected a floating-point tensor of shape (B, L, d_input=1), got {shape} torch.float32"
    with pytest.raises(ValueError, match=escape(expected)):
        SequenceModel(1, 10, d_model=8, n_layers=1)(torch.randn(shape))


@pytest.mark.parametrize("x", [torch.randn(2, 50, 1), torch.randint(0, 9, (2, 50), dtype=torch.uint8)])
def test_a_token_model_takes_integer_ids_of_shape_B_L(x):
    model = SequenceModel(16, 16, d_model=8, n_layers=1, vocab_size=16, pool="none")
    with pytest.raises(ValueError, match=escape(f"x: expected {TOKENS} (B, L), got {tuple(x.shape)} {x.dtype}")):
        model(x)
    assert model(torch.randint(0, 16, (2, 50), dtype=torch.int32)).shape == (2, 50, 16)


def test_prefill_and_step_check_their_inputs():
    lm = SequenceModel(16, 16, d_model=8, n_layers=1, vocab_size=16, pool="none")
    states = lm.default_state(2)
    with pytest.raises(ValueError, match=escape(f"x: expected {TOKENS} (B, L), got (2,)")):
        lm.prefill(torch.randint(0, 16, (2,)), states)
    with pytest.raises(ValueError, match=escape(f"x_t: expected {TOKENS} (B,), got (2, 1)")):
        lm.step(torch.randint(0, 16, (2, 1)), states)
    model = SequenceModel(3, 3, d_model=8, n_layers=1, pool="none")
    with pytest.raises(ValueError, match=escape("x_t: expected a floating-point tensor of shape (B, d_input=3), got "
                                                "(2, 1, 3)")):
        model.step(torch.randn(2, 1, 3), model.default_state(2))


def test_floats_of_another_dtype_than_the_models_are_one_line():
    """numpy's float64 arrays into a float32 model: named, with the two casts that fix it; autocast runs it."""
    model = SequenceModel(1, 10, d_model=8, n_layers=1)
    with pytest.raises(ValueError, match=escape("x: expected dtype torch.float32 (the model's parameters), got "
                                                "torch.float64; cast the input (x.to(torch.float32)) or the model")):
        model(torch.randn(2, 5, 1, dtype=torch.float64))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.randn(2, 5, 1)).shape == (2, 10)


def test_token_ids_outside_the_vocabulary_are_one_line_on_a_cpu():
    lm = SequenceModel(16, 16, d_model=8, n_layers=1, vocab_size=16, pool="none")
    for ids, low, high in (([[1, 16]], 1, 16), ([[-2, 3]], -2, 3)):
        with pytest.raises(ValueError, match=escape(f"x: expected token ids in [0, vocab_size=16), got ids from {low} "
                                                    f"to {high}")):
            lm(torch.tensor(ids))
