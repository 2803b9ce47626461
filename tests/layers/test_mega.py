"""Mega: the EMA alone, the gated attention's views, chunk isolation, attention functions, errors."""
import math

import pytest
import torch

from conftest import rel_err, three_views
import ssmkit
from ssmkit.layers.mega import laplace
from ssmkit.train import param_groups



def test_ema_follows_the_damped_recurrence_and_has_three_views():
    layer = ssmkit.EMA(3, 4).double().eval()
    u = torch.randn(2, 30, 3, dtype=torch.float64)
    y, y_step, y_chunk = three_views(layer, u, [(0, 5), (5, 6), (6, 30)])
    k = layer.kernel
    a, d, b, eta = torch.sigmoid(k.alpha[0]), torch.sigmoid(k.delta[0]), k.beta[0], k.C[0] / 2  # η·√(1/ndim)
    z, direct = torch.zeros(2, 3, 4, dtype=torch.float64), []
    for t in range(30):
        z = a * (b * u[:, t, :, None]) + (1 - a * d) * z
        direct.append((z * eta).sum(-1))
    assert rel_err(y, torch.nn.functional.silu(torch.stack(direct, 1) + layer.D[0] * u)) < 1e-12
    assert rel_err(y_step, y) < 1e-12 and rel_err(y_chunk, y) < 1e-12
    assert layer.default_state(2).shape == (2, 3, 4)


CASES = [dict(l_max=40), dict(chunk_size=8), dict(attention="laplace", chunk_size=8), dict(attention="relu2", l_max=40),
         dict(attention="laplace", l_max=40, z_dim=3, v_dim=5)]


@pytest.mark.parametrize("options", CASES, ids=str)
def test_mega_forward_step_and_chunks_agree(options):
    layer = ssmkit.Mega(8, 4, **options).double().eval()
    u = torch.randn(2, 37, 8, dtype=torch.float64)
    y, y_step, y_chunk = three_views(layer, u)
    assert rel_err(y_step, y) < 1e-9 and rel_err(y_chunk, y) < 1e-9
    _, state = layer(u, layer.default_state(2))
    assert state[1].shape[1] == options.get("chunk_size", 40) and state[3].tolist() == [37]  # static: c or l_max slots


STATIC = [dict(chunk_size=4), dict(l_max=40)]


@pytest.mark.parametrize("attention", ["softmax", "laplace", "relu2"])
@pytest.mark.parametrize("options", STATIC, ids=str)
@pytest.mark.parametrize("prompt", [1, 8, 11])
def test_static_cache_prefill_then_steps_equal_the_forward_pass_in_place(attention, options, prompt):
    """A prompt through forward (prompt 8: ends on a chunk boundary; 11: spans chunks, more keys than slots), then
    steps across chunk boundaries; under no_grad every state tensor is written in place (fixed data pointers)."""
    layer = ssmkit.Mega(8, 4, attention=attention, **options).double().eval()
    u = torch.randn(2, 23, 8, dtype=torch.float64)
    y, _ = layer(u)
    with torch.no_grad():
        state = layer.default_state(2, max_length=23)
        pointers = [t.data_ptr() for t in state]
        y_prompt, state = layer(u[:, :prompt], state)
        steps = [y_prompt]
        for t in range(prompt, 23):
            y_t, state = layer.step(u[:, t], state)
            steps.append(y_t[:, None])
    assert rel_err(torch.cat(steps, 1), y) < 1e-12
    assert [t.data_ptr() for t in state] == pointers and state[3].tolist() == [23]
    assert state[1].shape == (2, options.get("chunk_size", 23), layer.z)  # chunked: max_length changes nothing


def test_gradients_flow_through_a_carried_state():
    """With gradients recorded the state is returned as new tensors: backward through two chunks is the whole one's."""
    layer = ssmkit.Mega(8, 4, chunk_size=4).double()
    u = torch.randn(2, 10, 8, dtype=torch.float64, requires_grad=True)
    layer(u)[0].square().sum().backward()
    whole, u.grad = u.grad, None
    y1, state = layer(u[:, :6], layer.default_state(2))
    y2, _ = layer(u[:, 6:], state)
    torch.cat([y1, y2], 1).square().sum().backward()
    assert rel_err(u.grad, whole) < 1e-12


def test_static_cache_limits_are_checked():
    layer = ssmkit.Mega(8, 4, l_max=10)
    with pytest.raises(ValueError, match="max_length: unchunked Mega steps at most l_max=10"):
        layer.default_state(1, max_length=11)
    with pytest.raises(ValueError, match="max_length: expected None or a positive integer"):
        layer.default_state(1, max_length=0)
    state = layer.default_state(1, max_length=4)
    _, state = layer(torch.randn(1, 4, 8), state)
    with pytest.raises(ValueError, match="position 5 exceeds the cache's T=4"):
        layer.step(torch.randn(1, 8), state)
    with pytest.raises(ValueError, match=r"T=8 \(chunk_size\)"):
        ssmkit.Mega(8, 4, chunk_size=8).step(torch.randn(1, 8), state)


@pytest.mark.parametrize("attention", ["softmax", "laplace", "relu2"])
def test_chunked_attention_never_reads_another_chunk(attention):
    layer = ssmkit.Mega(8, 4, chunk_size=4, attention=attention).double()
    q, k, v = (torch.randn(1, 12, n, dtype=torch.float64) for n in (2, 2, 16))
    pos = torch.arange(12)
    o = layer._attend(q, k, v, pos, pos)
    v2 = v.clone()
    v2[:, 4:] += 100.0  # change every value outside the first chunk
    assert torch.allclose(layer._attend(q, k, v2, pos, pos)[:, :4], o[:, :4])
    k2 = k.clone()
    k2[:, :3] += 100.0  # and causality: the last key of a chunk is unseen by its earlier queries
    o3 = layer._attend(q, k, v, pos, pos)
    v3 = v.clone()
    v3[:, 3] += 100.0
    assert torch.allclose(layer._attend(q, k, v3, pos, pos)[:, :3], o3[:, :3])


def test_laplace_is_the_papers_erf_form():
    assert laplace(torch.tensor(math.sqrt(0.5))).item() == pytest.approx(0.5)
    x = torch.linspace(-2, 3, 11, dtype=torch.float64)
    expected = 0.5 * (1 + torch.erf((x - math.sqrt(0.5)) / (math.sqrt(1 / (4 * math.pi)) * math.sqrt(2))))
    assert torch.allclose(laplace(x), expected)


def test_bidirectional_mega_runs_and_refuses_state():
    layer = ssmkit.Mega(8, 4, causal=False, chunk_size=8)
    y, _ = layer(torch.randn(2, 20, 8))
    assert y.shape == (2, 20, 8)
    with pytest.raises(ValueError, match="non-causal"):
        layer.default_state(2)


def test_gradients_reach_every_mega_parameter():
    layer = ssmkit.Mega(8, 4, chunk_size=4)
    layer(torch.randn(2, 12, 8))[0].square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_mega_options_and_inputs_are_checked():
    with pytest.raises(ValueError, match="attention"):
        ssmkit.Mega(8, attention="sigmoid", l_max=8)
    with pytest.raises(ValueError, match="needs l_max"):
        ssmkit.Mega(8)
    for ndim in (0, 2.5):  # the EMA's expansion, named as the user gave it (not as the kernel's d_state = 2·ndim)
        with pytest.raises(ValueError, match=r"ndim: expected a positive integer .*, got " + str(ndim)):
            ssmkit.Mega(8, ndim, l_max=8)
    layer = ssmkit.Mega(8, l_max=10)
    with pytest.raises(ValueError, match="exceeds l_max=10"):
        layer(torch.randn(1, 11, 8))
    with pytest.raises(ValueError, match="state: expected"):
        layer(torch.randn(1, 3, 8), (None, None))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("attention", ["softmax", "relu2"])
def test_blocked_chunk_attention_equals_the_masked_whole_sequence(causal, attention):
    """The O(L·c) path (whole chunks, padded keys masked) against one L×L mask, for a length that is not a multiple."""
    layer = ssmkit.Mega(8, 4, chunk_size=8, causal=causal, attention=attention).double()
    q, k, v = (torch.randn(2, 37, n, dtype=torch.float64) for n in (2, 2, 16))
    pos = torch.arange(37)
    assert rel_err(layer._attend_blocked(q, k, v), layer._attend(q, k, v, pos, pos)) < 1e-12


def check_softmax_attention_against_the_dense_formula(causal, padded, device, dtype, tol, z=3, v_dim=5,
                                                     given=True):
    """The fused softmax(Q Kᵀ/√z + b_rel) V (F.scaled_dot_product_attention) against the L × L matrix written out,
    relative bias gathered by hand, keys masked (causal, padding): output and ∂q, ∂k, ∂v, ∂b_rel. given: the
    positions passed (the bias gathered by them), else 0 .. L − 1 implied (the bias as a Toeplitz view)."""
    torch.manual_seed(0)
    L = 37
    layer = ssmkit.Mega(8, 4, l_max=40, causal=causal, z_dim=z, v_dim=v_dim).to(device, dtype)
    q, k, v = (torch.randn(2, L, n, dtype=dtype, device=device, requires_grad=True) for n in (z, z, v_dim))
    pos = torch.arange(L, device=device)
    real = pos[None] < torch.tensor([[L], [29]], device=device) if padded else None
    reads = None if real is None else layer._padding_reads(real)
    got = layer._attend(q, k, v, pos, pos, reads) if given else layer._attend(q, k, v, reads=reads)
    rel = pos[:, None] - pos[None, :]
    wide = torch.float32 if dtype == torch.bfloat16 else dtype  # a bf16 kernel against the formula in float32
    bias = layer.rel_bias[rel + 39].to(wide)
    allowed = torch.ones(2, L, L, dtype=torch.bool, device=device) if reads is None else reads
    allowed = allowed & (rel >= 0) if causal else allowed
    scores = (q.to(wide) @ k.to(wide).transpose(1, 2) / math.sqrt(z) + bias).masked_fill(~allowed, float("-inf"))
    want = torch.softmax(scores, -1) @ v.to(wide)
    assert rel_err(got.to(wide), want) < tol
    g = torch.randn_like(want)
    inputs = (q, k, v, layer.rel_bias)
    for a, b in zip(torch.autograd.grad(got, inputs, g.to(dtype)), torch.autograd.grad(want, inputs, g)):
        assert rel_err(a.to(wide), b.to(wide)) < tol


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("given", [True, False])
def test_softmax_attention_is_the_dense_formula_in_values_and_gradients(causal, padded, given):
    check_softmax_attention_against_the_dense_formula(causal, padded, "cpu", torch.float64, 1e-12, given=given)


@pytest.mark.parametrize("L", [1, 5, 40])
def test_toeplitz_bias_is_the_gathered_bias_in_values_and_gradients(L):
    layer = ssmkit.Mega(8, 4, l_max=40).double()
    pos = torch.arange(L)
    gathered = layer.rel_bias[pos[:, None] - pos[None, :] + 39]
    view = layer._toeplitz_bias(L, 40)
    assert torch.equal(view, gathered)
    g = torch.randn(L, L, dtype=torch.float64)
    assert torch.allclose(torch.autograd.grad(view, layer.rel_bias, g)[0],
                          torch.autograd.grad(gathered, layer.rel_bias, g)[0], atol=1e-14)


@pytest.mark.parametrize("mask_shape", ["shared", "per-sample"])
def test_value_split_is_one_head_over_groups_of_value_columns(mask_shape):
    """value_split: V's columns in groups (the last one padded) as heads sharing Q, K and the mask equal the one-head
    attention, values and gradients."""
    from ssmkit.layers.mega import value_split
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 9, n, dtype=torch.float64, requires_grad=True) for n in (3, 3, 10))
    mask = torch.randn(9, 9, dtype=torch.float64) if mask_shape == "shared" else torch.randn(2, 1, 9, 9,
                                                                                            dtype=torch.float64)
    mask[..., 2, 5] = float("-inf")
    mask.requires_grad_(True)
    inputs = (q, k, v, mask)
    want = value_split(q, k, v, mask, 0.5, 10)
    g = torch.randn_like(want)
    for width in (4, 5, 1):
        got = value_split(q, k, v, mask, 0.5, width)
        assert got.shape == want.shape and rel_err(got, want) < 1e-12
        for a, b in zip(torch.autograd.grad(got, inputs, g), torch.autograd.grad(want, inputs, g, retain_graph=True)):
            assert rel_err(a, b) < 1e-12


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("padded", [False, True])
def test_cuda_softmax_attention_is_the_dense_formula(causal, padded):
    """On the GPU the fused kernel, forced (memory-efficient attention, with the bias's gradient; head sizes it
    takes: multiples of 8), in float32, and in bfloat16, where V 160 wide goes in two groups of value_split (the
    second padded)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
        for given in (True, False):
            check_softmax_attention_against_the_dense_formula(causal, padded, "cuda", torch.float32, 1e-4, z=16,
                                                              v_dim=160, given=given)
            check_softmax_attention_against_the_dense_formula(causal, padded, "cuda", torch.bfloat16, 3e-2, z=16,
                                                              v_dim=160, given=given)


def test_bidirectional_ema_adds_a_backward_ema_with_its_own_parameters_from_lag_0():
    """y_t = SiLU(Σ_{k>=0} K_k u_{t−k} + Σ_{k>=0} K'_k u_{t+k} + ω u_t), K' from the second set of a, d, β, η
    (the official MultiHeadEMA's bidirectional kernel)."""
    layer = ssmkit.EMA(3, 4, bidirectional=True).double()
    k, L = layer.kernel, 9
    u = torch.randn(2, L, 3, dtype=torch.float64)

    def kernel(d):  # (H, L): s Σ_i η_i α_i β_i (1 − α_i δ_i)^l
        a, dl = torch.sigmoid(k.alpha[d]), torch.sigmoid(k.delta[d])
        powers = (1 - a * dl)[..., None] ** torch.arange(L, dtype=torch.float64)
        return ((k.C[d] / 2 * a * k.beta[d])[..., None] * powers).sum(1)

    fwd, back = kernel(0), kernel(1)
    expected = torch.zeros_like(u)
    for t in range(L):
        for s in range(L):
            expected[:, t] += fwd[:, t - s] * u[:, s] if s <= t else 0
            expected[:, t] += back[:, s - t] * u[:, s] if s >= t else 0
    y, _ = layer(u)
    assert rel_err(y, torch.nn.functional.silu(expected + layer.D[0] * u)) < 1e-12
    assert not torch.equal(k.alpha[0], k.alpha[1])


def test_mega_starts_as_the_official_init():
    torch.manual_seed(0)
    layer = ssmkit.Mega(256, 16, l_max=64)
    for linear in (layer.to_v, layer.mix, layer.to_h, layer.ffn.fc1, layer.ffn.fc2):
        assert linear.weight.std().item() == pytest.approx(0.02, rel=0.05) and not linear.bias.any()
    assert layer.qk_scale.std().item() == pytest.approx(0.02, rel=0.1) and layer.qk_scale.mean().abs() < 0.002
    ema = layer.ema.kernel
    assert ema.scale == 0.25 and ema.C.std().item() == pytest.approx(1.0, rel=0.05)  # η ~ N(0, 1), used as η/4
    alone = ssmkit.EMA(4, 16)
    decayed = {id(p) for g in param_groups(alone, lr=1e-2, weight_decay=0.1) if g["weight_decay"] == 0.1
               for p in g["params"]}
    assert all(id(getattr(alone.kernel, n)) in decayed for n in ("alpha", "delta", "beta", "C"))  # as fairseq's AdamW


def test_a_frozen_mega_steps_through_its_frozen_ema():
    from ssmkit.export import freeze
    layer = ssmkit.Mega(8, 4, chunk_size=4).double().eval()
    frozen = freeze(layer, 16)
    u = torch.randn(2, 10, 8, dtype=torch.float64)
    with torch.no_grad():
        y, _ = layer(u)
        state, steps = frozen.default_state(2), []
        for t in range(10):
            y_t, state = frozen.step(u[:, t], state)
            steps.append(y_t)
    assert rel_err(torch.stack(steps, 1), y) < 1e-12


NORMED = [dict(norm="scale", prenorm=False, l_max=40), dict(norm="rms", chunk_size=8), dict(norm="batch", l_max=40),
          dict(norm="layer", prenorm=False, chunk_size=8, attention="laplace")]


@pytest.mark.parametrize("options", NORMED, ids=str)
def test_norm_types_and_postnorm_keep_the_three_views(options):
    layer = ssmkit.Mega(8, 4, **options).double()
    layer.train()
    layer(torch.randn(4, 16, 8, dtype=torch.float64))  # BatchNorm: running statistics away from their start
    layer.eval()
    u = torch.randn(2, 37, 8, dtype=torch.float64)
    y, y_step, y_chunk = three_views(layer, u)
    assert rel_err(y_step, y) < 1e-9 and rel_err(y_chunk, y) < 1e-9


def test_postnorm_normalizes_after_each_residual_and_reads_the_raw_input():
    """Postnorm (the official LRA ListOps, Text and Retrieval layers): the EMA and V read u itself, the gate's residual
    is u, and each part ends in its norm: the output of every position has the norm's statistics."""
    layer = ssmkit.Mega(8, 4, norm="scale", prenorm=False, l_max=20).double().eval()
    u = 5 * torch.randn(2, 20, 8, dtype=torch.float64)
    y, _ = layer(u)
    assert torch.allclose(y.square().mean(-1), torch.ones(2, 20, dtype=torch.float64), atol=1e-4)  # ScaleNorm, g = 1
    x_ema, _ = layer.ema(u)
    expected, _, _ = layer._gated(u, u, x_ema, None, None, None)
    assert rel_err(y, expected) < 1e-14
    with torch.no_grad():
        layer.ffn_norm.weight.fill_(3.0)
    assert torch.allclose(layer(u)[0].square().mean(-1), torch.full((2, 20), 9.0, dtype=torch.float64), atol=1e-3)


def test_scale_norm_is_the_rms_over_channels_with_one_gain():
    from ssmkit.layers.norms import ScaleNorm, norm_class
    norm = ScaleNorm(6).double()
    x = torch.randn(3, 5, 6, dtype=torch.float64)
    assert rel_err(norm(x), x / (x.square().mean(-1, keepdim=True) + 1e-5).sqrt()) < 1e-15
    assert [p.shape for p in norm.parameters()] == [torch.Size([])]
    expected = r"norm: expected one of \('layer', 'batch', 'scale', 'rms', 'scalar'\), got 'group'"
    with pytest.raises(ValueError, match=expected):
        norm_class("group")


def test_truncated_bidirectional_ema_keeps_its_first_lags_only():
    """truncation T: K_k = K'_k = 0 for k >= T, both directions, as the official LRA models' EMA."""
    full = ssmkit.EMA(3, 4, bidirectional=True).double()
    cut = ssmkit.EMA(3, 4, bidirectional=True, truncation=5).double()
    cut.load_state_dict(full.state_dict())
    K, Kc = full.kernel(12), cut.kernel(12)
    assert torch.equal(Kc[0, :, :5], K[0, :, :5]) and not Kc[0, :, 5:].any()  # causal half, lags 0..4
    assert torch.equal(Kc[1, :, :4], K[1, :, :4]) and not Kc[1, :, 4:].any()  # anti-causal half from lag 1: 1..4
    u = torch.randn(2, 12, 3, dtype=torch.float64)
    u_far = u.clone()
    u_far[:, 11] += 10.0  # 6 or more steps away from positions 0..5
    assert torch.allclose(cut(u)[0][:, :6], cut(u_far)[0][:, :6]) and not torch.allclose(full(u)[0][:, :6],
                                                                                          full(u_far)[0][:, :6])
    cut.kernel.truncation = 50  # beyond the length: the whole kernel
    assert torch.equal(cut.kernel(12), K)
    with pytest.raises(ValueError, match="truncation: expected None or a positive number of lags for a bidirectional"):
        ssmkit.Mega(8, 4, l_max=10, truncation=4)  # causal
    with pytest.raises(ValueError, match="truncation"):
        ssmkit.EMA(3, 4, bidirectional=True, truncation=0)


def test_dropout_sites_are_the_official_ones():
    """dropout: the EMA output, Ĥ and the FFN output, not the attention weights (attention_dropout); hidden_dropout: V
    and the FFN's hidden layer. In training each rate changes the output; in evaluation none does."""
    torch.manual_seed(0)
    base = ssmkit.Mega(8, 4, l_max=12).double()
    u = torch.randn(2, 12, 8, dtype=torch.float64)
    for key in ("dropout", "attention_dropout", "hidden_dropout"):
        layer = ssmkit.Mega(8, 4, l_max=12, **{key: 0.5}).double()
        layer.load_state_dict(base.state_dict())
        assert torch.equal(layer.eval()(u)[0], base.eval()(u)[0])
        assert not torch.allclose(layer.train()(u)[0], base.train()(u)[0]), key
    layer = ssmkit.Mega(8, 4, l_max=12, dropout=0.5)
    assert isinstance(layer.attention_dropout, torch.nn.Identity) and isinstance(layer.ffn.drop, torch.nn.Identity)
    with pytest.raises(ValueError, match=r"attention_dropout: expected a probability in \[0, 1\)"):
        ssmkit.Mega(8, 4, l_max=12, attention_dropout=1.0)


def test_sequence_model_hands_its_norm_and_prenorm_to_mega():
    model = ssmkit.models.SequenceModel(3, 5, layer="mega", d_model=8, n_layers=2, prenorm=False, norm="scale",
                                        layer_options={"ndim": 4, "l_max": 10, "causal": False})
    from ssmkit.layers.norms import ScaleNorm
    assert all(not m.prenorm and isinstance(m.norm, ScaleNorm) for m in model.layers)
    assert isinstance(model.final_norm, torch.nn.Identity)  # postnorm: no final norm, as the official encoder
    own = ssmkit.models.SequenceModel(3, 5, layer="mega", d_model=8, n_layers=1, norm="scale",
                                      layer_options={"ndim": 4, "l_max": 10, "norm": "rms"})
    assert isinstance(own.layers[0].norm, torch.nn.RMSNorm) and isinstance(own.final_norm, ScaleNorm)
