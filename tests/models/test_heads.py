"""The ends of a SequenceModel: the official Mega LRA encoder init, embedding dropout and the MLP head."""
import pytest
import torch

from conftest import rel_err
from ssmkit.models import SequenceModel, generate


def test_mega_and_s5_encoder_inits_as_the_official_lra_encoders():
    torch.manual_seed(0)
    tokens = SequenceModel(1, 10, d_model=64, n_layers=1, vocab_size=500, padding_idx=0, encoder_init="mega")
    w = tokens.encoder.weight
    assert w[1:].std().item() == pytest.approx(64 ** -0.5, rel=0.05) and not w[0].any()  # padding embeds to 0
    pixels = SequenceModel(1, 10, d_model=256, n_layers=1, encoder_init="mega")
    assert pixels.encoder.weight.std().item() == pytest.approx(1.0, rel=0.1)
    assert pixels.encoder.bias.std().item() == pytest.approx(0.1, rel=0.15)
    torch.manual_seed(0)
    s5_tokens = SequenceModel(1, 10, d_model=64, n_layers=1, vocab_size=500, padding_idx=0, encoder_init="lecun")
    w = s5_tokens.encoder.weight
    assert w[1:].std().item() == pytest.approx(500 ** -0.5, rel=0.05) and not w[0].any()  # one-hot Dense, fan-in 500
    assert w.abs().max() <= 2 / 0.8796 * 500 ** -0.5 + 1e-6  # truncated at two standard deviations, as JAX's
    dense = s5_tokens.encoder  # the one-hot Dense's bias, added to every token: E[t] + b, b from 0
    assert not dense.bias.any() and dense.bias.requires_grad
    with torch.no_grad():
        dense.bias.normal_()
    x = torch.tensor([[3, 0, 7]])
    assert torch.equal(dense(x), w[x] + dense.bias) and torch.equal(dense(x)[0, 1], dense.bias)
    assert torch.equal(torch.nn.functional.one_hot(x, 500).float() @ w + dense.bias, dense(x))
    old = {k: v for k, v in s5_tokens.state_dict().items() if k != "encoder.bias"}  # saved before the bias existed
    s5_tokens.load_state_dict(old)
    assert not s5_tokens.encoder.bias.any() and torch.equal(s5_tokens.encoder(x), w[x])
    s5_values = SequenceModel(4, 10, d_model=256, n_layers=1, encoder_init="lecun")
    assert s5_values.encoder.weight.std().item() == pytest.approx(0.5, rel=0.1) and not s5_values.encoder.bias.any()
    default = SequenceModel(1, 10, d_model=256, n_layers=1)
    assert default.encoder.weight.abs().max() <= 1.0  # torch's U(−1, 1) for one input
    with pytest.raises(ValueError, match="encoder_init: expected one of"):
        SequenceModel(1, 10, encoder_init="xavier")


def test_mlp_head_is_megas_classifier_and_a_pair_reads_both_features():
    model = SequenceModel(3, 5, d_model=8, n_layers=1, head="mlp", dropout=0.3).double()
    first, drop, _, last = model.decoder
    assert (first.in_features, first.out_features, last.out_features) == (8, 16, 5) and last.bias is None
    assert not first.bias.any() and isinstance(drop, torch.nn.Dropout)
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    model.eval()
    h = model._pooled(x, None)
    assert rel_err(model(x), last(torch.nn.functional.gelu(first(h)))) < 1e-15
    pair = SequenceModel(3, 2, d_model=8, n_layers=1, head="mlp", pair=True).double().eval()
    assert pair.decoder[0].in_features == 16
    xs = torch.randn(2, 2, 7, 3, dtype=torch.float64)
    a, b = pair._pooled(xs[:, 0], None), pair._pooled(xs[:, 1], None)
    assert rel_err(pair(xs), pair.decoder(torch.cat([a, b], -1))) < 1e-15
    with pytest.raises(ValueError, match="head: expected one of"):
        SequenceModel(3, 5, head="deep")


def test_s5_head_is_its_retrieval_decoder_over_its_four_features_and_a_linear_map_alone():
    """head 's5': a pair reads MLP([a, b, a − b, a ⊙ b]) with the tanh GELU (flax's nn.gelu); one sequence, a Linear."""
    pair = SequenceModel(3, 2, d_model=8, n_layers=1, head="s5", pair=True, head_init="lecun").double().eval()
    first, act, last = pair.decoder
    assert first.in_features == 32 and act.approximate == "tanh"
    xs = torch.randn(2, 2, 7, 3, dtype=torch.float64)
    a, b = pair._pooled(xs[:, 0], None), pair._pooled(xs[:, 1], None)
    z = first(torch.cat([a, b, a - b, a * b], -1))
    tanh_gelu = 0.5 * z * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (z + 0.044715 * z ** 3)))
    assert rel_err(pair(xs), last(tanh_gelu)) < 1e-14
    single = SequenceModel(3, 5, d_model=8, n_layers=1, head="s5")
    assert isinstance(single.decoder, torch.nn.Linear)


def test_embedding_dropout_drops_in_training_only():
    model = SequenceModel(3, 5, d_model=8, n_layers=1, embedding_dropout=0.5).double()
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    assert torch.equal(model.eval()(x), model(x))
    torch.manual_seed(0)
    y1 = model.train()(x)
    assert not torch.allclose(y1, model(x))
    with pytest.raises(ValueError, match="embedding_dropout: expected a probability"):
        SequenceModel(3, 5, embedding_dropout=1.0)


def test_a_per_step_model_with_the_mlp_head_generates_its_forward_logits():
    model = SequenceModel(32, 32, d_model=8, n_layers=2, vocab_size=32, pool="none", head="mlp",
                          layer_options={"d_state": 8}).double()
    prompt = torch.randint(0, 32, (2, 4))
    tokens, logits = generate(model, prompt, 6, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert rel_err(logits, model(tokens[:, :-1])[:, 3:]) < 1e-9


def test_final_norm_can_be_left_out_and_batchnorm_takes_its_momentum():
    """S5's model: prenorm blocks without a norm after the last one; flax's BatchNorm momentum 0.95 is torch's 0.05."""
    model = SequenceModel(3, 5, d_model=8, n_layers=1, norm="batch", final_norm=False, bn_momentum=0.05)
    assert isinstance(model.final_norm, torch.nn.Identity)
    assert all(m.momentum == 0.05 for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    with pytest.raises(ValueError, match=r"bn_momentum: expected a weight in \(0, 1\]"):
        SequenceModel(3, 5, norm="batch", bn_momentum=0.0)


def test_lecun_head_init_is_s5s_flax_dense_decoders():
    """head_init=lecun: every Linear of the head LeCun normal over its fan-in (JAX's truncated normal) with zero bias,
    as the official S5 decoder and retrieval MLP; torch keeps each head's own init."""
    torch.manual_seed(0)
    model = SequenceModel(3, 400, d_model=256, n_layers=1, head_init="lecun")
    w = model.decoder.weight
    assert w.std().item() == pytest.approx(256 ** -0.5, rel=0.05) and not model.decoder.bias.any()
    assert w.abs().max() <= 2 / 0.8796 * 256 ** -0.5 + 1e-6
    pair = SequenceModel(3, 2, d_model=64, n_layers=1, pair=True, head_init="lecun")
    first, _, last = pair.decoder
    assert first.weight.std().item() == pytest.approx(256 ** -0.5, rel=0.05)  # fan-in 4H, as S5's layer1
    assert not first.bias.any() and not last.bias.any()
    default = SequenceModel(3, 400, d_model=256, n_layers=1)
    assert default.decoder.bias.any() and default.decoder.weight.abs().max() <= 256 ** -0.5  # torch's U(±1/√fan_in)
    with pytest.raises(ValueError, match="head_init: expected one of"):
        SequenceModel(3, 5, head_init="xavier")
