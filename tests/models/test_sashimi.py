"""SaShiMi: the recurrent and chunked views give the convolutional outputs; causality; the pooling layers' equations."""
import importlib
import json
import math

import pytest
import torch
from torch.nn.utils import parametrize

from conftest import rel_err
from ssmkit.layers import DownPool, UpPool
from ssmkit.layers.norms import ScalarLayerNorm
from ssmkit.models import Sashimi, generate
from ssmkit.models.pretrained import fitted_to, load_weights
from ssmkit.models.sampling import Sampler, SamplingOptions


def small(pool, unet, **kw) -> Sashimi:
    return Sashimi(1, 256, vocab_size=256, d_model=8, n_layers=1, pool=pool, unet=unet,
                   layer_options={"d_state": 4}, **kw).double().eval()


@pytest.mark.parametrize("pool", [(4, 4), (2,), (4, 4, 4)])
@pytest.mark.parametrize("unet", [False, True])
@pytest.mark.parametrize("with_l_max", [False, True])
def test_sashimi_step_and_chunked_prefill_match_forward_float64(pool, unet, with_l_max):
    """With l_max each level's S4 layers train the C̃ of their own length (l_max over the pooling so far)."""
    L = 2 * math.prod(pool)
    model = small(pool, unet, l_max=L if with_l_max else None)
    if with_l_max:
        assert model.center[0].layer.l_max == 2 and model.up[-1]["blocks"][0].layer.l_max == L
    x = torch.randint(0, 256, (2, L))
    with torch.no_grad():
        y = model(x)
        state, steps = model.default_state(2), []
        for t in range(L):
            out, state = model.step(x[:, t], state)
            steps.append(out)
        state, chunks = model.default_state(2), []
        for a, b in [(0, 3), (3, 7), (7, 8), (8, L)]:  # chunks starting and ending inside pooling windows
            out, state = model.prefill(x[:, a:b], state)
            chunks.append(out)
    assert rel_err(torch.stack(steps, 1), y) < 1e-10
    assert rel_err(torch.cat(chunks, 1), y) < 1e-10


@pytest.mark.parametrize("unet", [False, True])
def test_sashimi_is_causal_perturbing_x_t0_leaves_earlier_outputs_unchanged(unet):
    model = small((4, 4), unet)
    x = torch.randint(0, 256, (1, 64))
    with torch.no_grad():
        y = model(x)
    for t0 in (17, 32, 47):  # inside a window, at a window boundary of both levels, at a window's last step
        x2 = x.clone()
        x2[0, t0] = (x[0, t0] + 100) % 256
        with torch.no_grad():
            y2 = model(x2)
        assert (y2[:, :t0] - y[:, :t0]).abs().max() < 1e-12 * y.abs().max()
        assert (y2[:, t0] - y[:, t0]).abs().max() > 1e-6


def test_sashimi_rejects_lengths_that_are_not_a_multiple_of_the_total_pooling():
    model = small((4, 4), False)
    with pytest.raises(ValueError, match="multiple of the total pooling 16"):
        model(torch.randint(0, 256, (1, 40)))
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.randn(1, 32))
    with pytest.raises(ValueError, match="module states"):
        model.step(torch.zeros(1, dtype=torch.long), [])
    with pytest.raises(ValueError, match="give it to Sashimi as l_max"):
        Sashimi(1, 256, vocab_size=256, d_model=8, n_layers=1, layer_options={"l_max": 64})


def test_generate_samples_from_sashimi_what_its_forward_pass_computes():
    model = small((4, 4), False)
    prompt = torch.full((3, 5), 128)
    tokens, logits = generate(model, prompt, 27, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (3, 32)
    assert rel_err(logits, model(tokens)[:, 4:-1]) < 1e-10


def test_sashimi_at_the_sc09_defaults_has_the_official_parameter_count():
    # the official training code's backbone (state-spaces/s4 src/models/sequence/backbones/sashimi.py with
    # configs/model/sashimi.yaml: scalar TransposedLN, weight-normalized pooling), built here with n_ssm=1 as the SC09
    # config, has 4,718,048 parameters, 4,751,072 with the embedding and the output Linear; its standalone copy
    # (models/sashimi/sashimi.py: per-channel LayerNorms, plain pooling Linears) 4,764,160, and 5,447,680 with
    # n_ssm=None. The U-Net experiment's (src/models/sequence/backbones/unet.py with configs/model/unet.yaml and
    # sashimi-sc09-unet.yaml: n_ssm None, plain `linear` pools, the scalar norm), built here on 2026-12-06, has
    # 6,787,488, 6,820,512 with the embedding and the output Linear
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(Sashimi(1, 256, vocab_size=256, layer_options={"n_ssm": 1})) == 4_751_072
    standalone = dict(norm="layer", pool_weight_norm=False)
    assert count(Sashimi(1, 256, vocab_size=256, layer_options={"n_ssm": 1}, **standalone)) == 4_764_160
    assert count(Sashimi(1, 256, vocab_size=256, **standalone)) == 5_447_680
    assert count(Sashimi(1, 256, vocab_size=256, unet=True, pool_weight_norm=False)) == 6_820_512


def test_scalar_layer_norm_is_the_official_transposed_ln():
    """s · (x − mean + m) / std over the channels, population std (TransposedLN(scalar=True)); bf16 in, bf16 out."""
    norm = ScalarLayerNorm(6).double()
    with torch.no_grad():
        norm.s.fill_(1.7), norm.m.fill_(-0.4)
    x = torch.randn(3, 5, 6, dtype=torch.float64)
    std, mean = torch.std_mean(x, dim=-1, unbiased=False, keepdim=True)
    assert rel_err(norm(x), 1.7 / std * (x - mean - 0.4)) < 1e-10
    assert norm(x.float().bfloat16()).dtype == torch.bfloat16


def test_weights_saved_before_the_official_norm_load_as_they_were_trained(tmp_path):
    """A folder written before the norm and pool_weight_norm options (per-channel LayerNorms, plain pooling Linears,
    neither option in config.json) loads into the model it was trained as, with the same outputs."""
    old = Sashimi(1, 256, vocab_size=256, d_model=8, n_layers=1, pool=[2], layer_options={"d_state": 4},
                  norm="layer", pool_weight_norm=False).eval()
    old.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["norm"], config["pool_weight_norm"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = Sashimi.from_pretrained(tmp_path)
    assert loaded.config["norm"] == "layer" and loaded.config["pool_weight_norm"] is False
    x = torch.randint(0, 256, (2, 8))
    with torch.no_grad():
        assert torch.equal(loaded(x), old(x))
    new = Sashimi(1, 256, vocab_size=256, d_model=8, n_layers=1, pool=[2], layer_options={"d_state": 4})
    assert Sashimi.config_of_weights(new.config, new.state_dict()) == new.config
    # a resumed run (or a checkpoint without config.json) is rebuilt from the current defaults first
    fitted = fitted_to(new, old.state_dict())
    assert fitted.config["norm"] == "layer" and fitted.config["pool_weight_norm"] is False
    load_weights(fitted, old.state_dict(), "older weights")


def test_downpool_folds_s_steps_channel_major_into_one_linear_map():
    pool = DownPool(3, 5, stride=4).double()
    u = torch.randn(2, 8, 3, dtype=torch.float64)
    v, _ = pool(u)
    for j in range(2):
        folded = torch.stack([u[:, 4 * j + r] for r in range(4)], -1).reshape(2, 12)  # index h·s + r
        assert rel_err(v[:, j], pool.linear(folded)) < 1e-14
    with pytest.raises(ValueError, match="multiple of the pooling stride 4"):
        pool(u[:, :6])


def test_uppool_outputs_zeros_first_then_the_previous_coarse_steps_expansion():
    pool = UpPool(5, 3, stride=4).double()
    v = torch.randn(2, 3, 5, dtype=torch.float64)
    y, _ = pool(v)
    assert y.shape == (2, 12, 3) and torch.equal(y[:, :4], torch.zeros(2, 4, 3, dtype=torch.float64))
    for j in (1, 2):
        expanded = pool.linear(v[:, j - 1]).reshape(2, 3, 4)  # index h·s + r
        for r in range(4):
            assert rel_err(y[:, 4 * j + r], expanded[..., r]) < 1e-14


def test_pooling_states_are_checked():
    down, up = DownPool(3, 5, stride=4), UpPool(5, 3, stride=4)
    with pytest.raises(ValueError, match="window"):
        down(torch.randn(2, 1, 3), torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="pending outputs"):
        up(torch.randn(2, 1, 5), torch.zeros(2, 0, 3), length=1)
    with pytest.raises(ValueError, match="length"):
        up(torch.randn(2, 1, 5), up.default_state(2), length=9)


def test_bidirectional_sashimi_reads_the_future_and_has_no_recurrent_view():
    model = Sashimi(4, 4, d_model=8, n_layers=1, pool=(2,), layer_options={"d_state": 4, "bidirectional": True})
    x = torch.randn(1, 16, 4)
    x2 = x.clone()
    x2[0, 12] += 1.0
    with torch.no_grad():
        assert (model(x2)[:, :12] - model(x)[:, :12]).abs().max() > 1e-6  # features in, non-causal out
    with pytest.raises(ValueError, match="bidirectional"):
        model.default_state(1)


def test_the_trainer_gives_sashimi_its_per_level_l_max_only_when_asked():
    from types import SimpleNamespace

    from ssmkit.train import make_config
    from ssmkit.train.build import build_model
    dataset = SimpleNamespace(d_input=1, n_classes=256, vocab_size=256, l_max=64, task="lm")
    args = ["model=sashimi", "layer=s4", "d_model=8", "n_layers=1", "d_state=4"]
    model = build_model(make_config(args + ["model_options.l_max=64"]), dataset)
    assert model.center[0].layer.l_max == 4 and [u["blocks"][0].layer.l_max for u in model.up] == [16, 64]
    assert build_model(make_config(args), dataset).center[0].layer.l_max is None


def test_generate_forms_the_weight_normalized_pooling_once_per_call():
    """The pooling Linears' W = g ⊙ V / ‖V‖ is formed once for generate's token loop (parametrize.cached), not at every
    coarse step, with the same tokens as stepping by hand."""
    torch.manual_seed(0)
    model = Sashimi(1, 16, vocab_size=16, d_model=8, n_layers=1, pool=[2], layer_options={"d_state": 4}).eval()
    formed = []
    for pool in (model.down[0]["pool"], model.up[0]["pool"]):
        pool.linear.parametrizations.weight[0].register_forward_hook(lambda *_: formed.append(1))
    prompt = torch.randint(0, 16, (2, 1))
    tokens, logits = generate(model, prompt, 12, temperature=0.0)
    assert len(formed) == 2  # one per pooling Linear, for 6 coarse steps each
    states, x = model.default_state(2), prompt[:, 0]
    with torch.no_grad():
        for t in range(12):
            out, states = model.step(x, states)
            x = out.argmax(-1)
            assert torch.equal(x, tokens[:, 1 + t])


def _shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether a and b read or write some of the same storage elements (by their storage offset ranges)."""
    if a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr() or not a.numel() or not b.numel():
        return False
    return a.storage_offset() < b.storage_offset() + b.numel() and b.storage_offset() < a.storage_offset() + a.numel()


@pytest.mark.parametrize("pool,unet", [((4, 4), False), ((2,), False), ((4, 4, 4), False), ((4, 4), True)])
@pytest.mark.parametrize("P", [1, 3, 18])
def test_generate_graph_cycles_end_in_their_buffers(monkeypatch, pool, unet, P):
    """What generate's CUDA graph path runs, on the CPU: snapshot, two warm-up cycles and the captured one, restore,
    then whole cycles (the replays). Every cycle ends with the states in the loop's own buffers (what a replay reads),
    no state copy has overlapping source and destination (the pooling layers hand back views of their state), and
    the tokens and logits are those of stepping by hand."""
    generate_module = importlib.import_module("ssmkit.models.generate")
    torch.manual_seed(0)
    model = Sashimi(1, 16, vocab_size=16, d_model=8, n_layers=1, pool=list(pool), unet=unet,
                    layer_options={"d_state": 4}).eval()
    overlapping = []
    assign = generate_module._assign

    def checked(old, new):
        if (isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor) and old is not new
                and old.shape == new.shape and _shares_storage(old, new)):
            overlapping.append(tuple(old.shape))
        return assign(old, new)
    monkeypatch.setattr(generate_module, "_assign", checked)
    period, B = model.step_period, 2
    n = 3 * period
    prompt = torch.randint(0, 16, (B, P))

    def start():
        states = model.default_state(B)
        return model.prefill(prompt[:, :-1], states)[1] if P > 1 else states
    with torch.no_grad():
        states, x, want, want_logits = start(), prompt[:, -1], [], []
        for _ in range(n):
            out, states = model.step(x, states)
            x = out.argmax(-1)
            want.append(x)
            want_logits.append(out)
        sampler = Sampler(SamplingOptions(0.0, None, 1.0, 1.0, None), B, 16, prompt.device, prompt)
        loop = generate_module._Loop(model, prompt[:, -1], start(), sampler, torch.rand(n, B), 16)
        with generate_module._states_in_place(model), parametrize.cached():
            saved = loop.snapshot()
            buffers = generate_module._tensors(loop.states)

            def cycles(count):
                for _ in range(count):
                    loop.cycle(period)
                    assert all(a is b for a, b in zip(generate_module._tensors(loop.states), buffers))
            cycles(3)  # two warm-ups and the capture
            loop.restore(saved)
            cycles(n // period)  # the replays
    assert not overlapping
    assert torch.equal(loop.tokens.T, torch.stack(want, 1))
    assert torch.equal(loop.logits.transpose(0, 1), torch.stack(want_logits, 1))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("B,pool,unet", [(1, (4, 4), False), (3, (4, 4), False), (1, (2,), False), (2, (4, 4), True),
                                         (1, (4, 4, 4), False), (2, (2, 4, 2), True)])
def test_generation_with_the_coarse_levels_beside_matches_the_forward(B, pool, unet):
    """On a GPU a step's coarse levels run on side streams beside each finer level's blocks (models/beside.py; two
    or more nested at once where the pools are three deep): the logits that generate writes over several graph
    cycles, plain and replayed, are the forward's on its tokens (a read of a state before a side stream wrote it, or
    of memory reused under it, would show here)."""
    torch.manual_seed(0)
    model = Sashimi(1, 256, vocab_size=256, d_model=64, n_layers=2, pool=list(pool), unet=unet).cuda().eval()
    total = math.prod(pool)
    P = 5
    n = -(-80 // total) * total - P + 1  # the forward below runs on P + n - 1 positions, a multiple of the pooling
    prompt = torch.randint(0, 256, (B, P), device="cuda")
    for cuda_graph in (False, True):
        tokens, logits = generate(model, prompt, n, seed=1, cuda_graph=cuda_graph)
        with torch.no_grad():
            full = model(tokens[:, :-1])
        assert rel_err(logits, full[:, P - 1:]) < 1e-4
