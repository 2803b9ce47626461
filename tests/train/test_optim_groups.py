"""Optimizer groups as the official trainers make them (train/optim.py)."""
import pytest
import torch

from ssmkit.models import SequenceModel
from ssmkit.train import param_groups


def _decay_of(model, **options) -> dict[str, float]:
    groups = param_groups(model, lr=1e-2, weight_decay=0.05, **options)
    by_id = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    return {name: by_id[id(p)] for name, p in model.named_parameters()}


def test_decay_heads_decays_the_encoder_and_decoder_as_the_official_s4_trainer():
    """The official S4 trainer exempts biases, norms and embeddings inside the backbone only: with decay_heads the
    token embedding and the decoder's bias are decayed, the blocks' biases and norms still not, the SSM group keeps
    its own settings."""
    model = SequenceModel(1, 4, layer="s4", d_model=8, n_layers=1, vocab_size=10, padding_idx=0,
                          layer_options={"d_state": 4})
    plain, heads = _decay_of(model), _decay_of(model, decay_heads=True)
    assert plain["encoder.weight"] == plain["decoder.bias"] == 0.0
    assert heads["encoder.weight"] == heads["decoder.bias"] == heads["decoder.weight"] == 0.05
    for name in heads:
        if not name.startswith(("encoder.", "decoder.")):
            assert heads[name] == plain[name], name
    assert heads["norms.0.weight"] == 0.0 and heads["layers.0.kernel.B"] == 0.0
    assert len(torch.optim.AdamW(param_groups(model, 1e-2, 0.05, decay_heads=True)).param_groups) >= 3


def test_C_lr_gives_C_its_own_rate_with_the_ordinary_weight_decay():
    """As the official configs whose layer lr is one number (s4-cifar, s4-pathfinder): C at that rate, decayed."""
    for name in ("s4", "s4d"):
        model = SequenceModel(3, 4, layer=name, d_model=8, n_layers=1, layer_options={"d_state": 4, "C_lr": 1e-3})
        groups = param_groups(model, lr=1e-2, weight_decay=0.05)
        (group,) = [g for g in groups if any(p is model.layers[0].kernel.C for p in g["params"])]
        assert group["lr"] == 1e-3 and group["weight_decay"] == 0.05 and len(group["params"]) == 1
    with pytest.raises(ValueError, match="C_lr: expected None"):
        SequenceModel(3, 4, layer="s4", d_model=8, n_layers=1, layer_options={"d_state": 4, "C_lr": -1})


def test_decay_heads_sees_through_torch_compile_and_needs_heads():
    model = SequenceModel(3, 4, d_model=8, n_layers=1, layer_options={"d_state": 4})
    compiled = torch.compile(model)
    decay = {id(p): g["weight_decay"] for g in param_groups(compiled, 1e-2, 0.05, decay_heads=True)
             for p in g["params"]}
    assert decay[id(model.decoder.bias)] == decay[id(model.encoder.bias)] == 0.05
    with pytest.raises(ValueError, match="weight_decay_heads: Linear names no encoder or decoder"):
        param_groups(torch.nn.Linear(3, 4), 1e-2, 0.05, decay_heads=True)


def test_sashimi_decays_its_embedding_and_head_with_decay_heads():
    """SaShiMi's token embedding and output Linear are the official task's encoder and decoder, outside the backbone
    whose biases and norms the official trainer exempts (sashimi-sc09-unet: weight decay 0.1 there)."""
    from ssmkit.models import Sashimi
    model = Sashimi(1, 16, vocab_size=16, d_model=8, n_layers=1, pool=[2], layer_options={"d_state": 4})
    plain, heads = _decay_of(model), _decay_of(model, decay_heads=True)
    assert plain["encoder.weight"] == plain["decoder.bias"] == 0.0
    assert heads["encoder.weight"] == heads["decoder.weight"] == heads["decoder.bias"] == 0.05
    assert heads["norm.weight"] == heads["norm.bias"] == 0.0  # the backbone's final LayerNorm
    assert all(heads[n] == plain[n] for n in heads if not n.startswith(("encoder.", "decoder.")))


def test_param_groups_of_something_that_is_not_a_module_is_one_line():
    """A list of tensors (what torch.optim takes) is refused by name, not with an AttributeError from inside."""
    with pytest.raises(ValueError, match="model: expected an nn.Module .*, got list"):
        param_groups([torch.zeros(2, requires_grad=True)], lr=1e-3, weight_decay=0.0)
