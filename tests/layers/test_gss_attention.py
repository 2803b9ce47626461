"""GSS (gated DSS block), causal multi-head attention with a KV cache, and the hybrid backbone."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import rel_err, three_views
import ssmkit
from ssmkit.models import SequenceModel, generate

CHUNKS = [(0, 5), (5, 6), (6, 20)]


def _views(layer, H):
    u = torch.randn(2, 20, H, dtype=torch.float64)
    return (u, *three_views(layer.double().eval(), u, CHUNKS))


@pytest.mark.parametrize("options", [{}, {"dt": None, "variant": "softmax", "l_max": 20}], ids=str)
def test_gss_views_agree_and_follow_the_block_equations(options):
    layer = ssmkit.GSS(16, 32, **options)
    u, y, y_step, y_chunk = _views(layer, 16)
    assert rel_err(y_step, y) < 1e-9 and rel_err(y_chunk, y) < 1e-9
    h = layer.norm(u)
    v = F.gelu(layer.to_v(h))
    s, _ = layer.ssm(F.gelu(layer.to_u(h)))
    assert rel_err(y, u + layer.to_out(layer.to_c(s) * v)) < 1e-12
    assert layer.to_v.out_features == 64 and layer.to_u.out_features == 4


def test_gss_fixes_delta_to_one_by_default():
    fixed, learned = ssmkit.GSS(16, 32), ssmkit.GSS(16, 32, dt=None)
    assert "ssm.kernel.log_dt" in dict(fixed.named_buffers())
    assert torch.allclose(fixed.ssm.kernel.log_dt, torch.zeros(4))
    assert "ssm.kernel.log_dt" in dict(learned.named_parameters())
    with pytest.raises(ValueError, match="reduce"):
        ssmkit.GSS(10, reduce=4)


def test_attention_views_agree_and_equal_naive_causal_softmax():
    layer = ssmkit.MultiHeadAttention(16, 4)
    u, y, y_step, y_chunk = _views(layer, 16)
    assert rel_err(y_step, y) < 1e-12 and rel_err(y_chunk, y) < 1e-12
    q, k, v = layer.qkv(u).view(2, 20, 3, 4, 4).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / math.sqrt(4)
    scores = scores.masked_fill(torch.ones(20, 20, dtype=torch.bool).triu(1), float("-inf"))
    naive = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 20, 16)
    assert rel_err(y, layer.out(naive)) < 1e-12


def test_attention_errors():
    with pytest.raises(ValueError, match="n_heads"):
        ssmkit.MultiHeadAttention(10, 4)
    bidirectional = ssmkit.MultiHeadAttention(8, 2, causal=False)
    with pytest.raises(ValueError, match="non-causal"):
        bidirectional.default_state(1)
    layer = ssmkit.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match="keys, values"):
        layer(torch.randn(1, 3, 8), torch.zeros(1, 2, 0, 4))
    for wrong in (torch.zeros(1, 2, 0, 3), torch.zeros(1, 2, 0, 4, dtype=torch.float64)):  # head size, dtype
        with pytest.raises(ValueError, match=r"shape \(1, 2, T, 4\) each in torch.float32, .* got \(1, 2, 0,"):
            layer.step(torch.randn(1, 8), (wrong, wrong.clone()))
    state = layer.default_state(1, max_length=4)
    _, state = layer(torch.randn(1, 3, 8), state)
    with pytest.raises(ValueError, match="position 5 exceeds the cache's T=4"):
        layer(torch.randn(1, 2, 8), state)


def test_hybrid_backbone_interleaves_attention_and_generates_consistently():
    model = SequenceModel(256, 256, layer="gss", d_model=16, n_layers=4, vocab_size=256, pool="none",
                          attention_every=2, layer_options={"d_state": 16}).double()
    assert [type(m).__name__ for m in model.layers] == ["GSS", "MultiHeadAttention"] * 2
    tokens, logits = generate(model, torch.randint(0, 256, (2, 5)), 10)
    assert rel_err(logits, model(tokens[:, :-1])[:, 4:]) < 1e-9


@pytest.mark.parametrize("layer,options", [("gss", {"d_state": 8}), ("mega", {"ndim": 4, "l_max": 12})], ids=str)
def test_a_backbone_stacks_whole_residual_blocks_without_a_second_norm_and_shortcut(layer, options):
    """GSS and Mega normalize their input and add it back themselves; the backbone adds neither again (the blocks of
    the official code), and hands them its dropout."""
    model = SequenceModel(3, 5, layer=layer, d_model=16, n_layers=2, layer_options=options, pool="none",
                          dropout=0.25).double().eval()
    assert not any(name.startswith("norms.") for name, _ in model.named_parameters())
    assert all(block.dropout.p == 0.25 for block in model.layers)
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    h = model.encoder(x)
    for block in model.layers:
        h = block(h)[0]
    assert rel_err(model(x), model.decoder(model.final_norm(h))) < 1e-12
    own = SequenceModel(3, 5, layer=layer, d_model=16, n_layers=2, layer_options={**options, "dropout": 0.0},
                        dropout=0.25)
    assert all(isinstance(block.dropout, torch.nn.Identity) for block in own.layers)
