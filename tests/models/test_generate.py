"""Recurrent generation gives what the convolutional model computes: prefill (chunked) + steps == forward."""
import importlib
import subprocess
import sys
import warnings

import pytest
import torch

import ssmkit
from conftest import rel_err
from ssmkit.models import SequenceModel, generate


@pytest.mark.parametrize("layer", ["s4", "s4d", "dss", "dlr", "s5", "liquid_s4"])
@pytest.mark.parametrize("prenorm", [True, False])
def test_sampling_logits_equal_the_forward_pass_over_the_sample(layer, prenorm):
    options = {"d_state": 8, **({"variant": "exp"} if layer == "dss" else {})}  # softmax needs l_max to step
    model = SequenceModel(256, 256, layer=layer, d_model=16, n_layers=2, vocab_size=256, pool="none",
                          prenorm=prenorm, layer_options=options, ffn_mult=2).double()
    prompt = torch.randint(0, 256, (3, 7))
    tokens, logits = generate(model, prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (3, 27) and torch.equal(tokens[:, :7], prompt)
    full = model(tokens[:, :-1])  # position t predicts token t+1
    assert rel_err(logits, full[:, 6:]) < 1e-9


def test_greedy_generation_is_deterministic_and_a_single_token_prompt_works():
    model = SequenceModel(256, 256, d_model=16, n_layers=1, vocab_size=256, pool="none")
    a, _ = generate(model, torch.tensor([[10]]), 5, temperature=0)
    b, _ = generate(model, torch.tensor([[10]]), 5, temperature=0)
    assert torch.equal(a, b) and a.shape == (1, 6)


def test_timings_split_the_set_up_from_the_token_steps_and_change_no_token():
    model = SequenceModel(256, 256, d_model=16, n_layers=1, vocab_size=256, pool="none")
    prompt = torch.tensor([[10, 11, 12]])
    for n in (6, 0):
        timings = {}
        a, logits = generate(model, prompt, n, seed=3, timings=timings)
        b, _ = generate(model, prompt, n, seed=3)
        assert torch.equal(a, b) and set(timings) == {"setup", "steps"} and logits.shape == (1, n, 256)
        assert timings["setup"] > 0 and (timings["steps"] > 0 if n else timings["steps"] == 0)


def test_generation_refuses_pooled_models_and_bad_prompts():
    pooled = SequenceModel(1, 10)
    for prompt in (torch.zeros(1, 3, dtype=torch.long), torch.tensor([[49]])):  # ids past its classes: still this
        with pytest.raises(ValueError, match="per-step model"):
            generate(pooled, prompt, 2)
    with pytest.raises(ValueError, match="classifier or regressor"):
        generate(pooled, torch.zeros(1, 3, dtype=torch.long), 2)
    image = ssmkit.models.ImageModel(3, 10, d_model=8, n_layers=1)  # no recurrent view: one line, not an attribute
    with pytest.raises(ValueError, match="per-step model over token ids .* this ImageModel has no default_state"):
        generate(image, torch.ones(1, 3, dtype=torch.long), 2)
    continuous = SequenceModel(1, 1, pool="none")  # d_input features, no vocabulary: its d_output is no vocab
    with pytest.raises(ValueError, match=r"reads continuous inputs \(d_input=1, vocab_size=None\)"):
        generate(continuous, torch.tensor([[0, 0]]), 5)
    lm = SequenceModel(256, 256, vocab_size=256, pool="none")
    with pytest.raises(ValueError, match="prompt: expected a tensor of integer token ids"):
        generate(lm, torch.zeros(1, 0, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"prompt: expected a tensor .*, got list"):
        generate(lm, [100, 101], 2)
    with pytest.raises(ValueError, match=r"prompt: expected token ids in \[0, vocab_size=256\), got "
                                         r"ids from 3 to 300"):
        generate(lm, torch.tensor([[3, 300]]), 2)
    with pytest.raises(ValueError, match="temperature"):
        generate(lm, torch.zeros(1, 2, dtype=torch.long), 2, temperature=-1)


def test_train_then_generate_from_the_command_line(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("the quick brown fox jumps over the lazy dog. " * 120)
    (corpus / "b.txt").write_text("pack my box with five dozen liquor jugs. " * 120)
    args = ["dataset=text", f"data_dir={corpus}", "dataset_options.seq_len=64", "d_model=32", "n_layers=2",
            "d_state=16", "epochs=4", "batch_size=16", "warmup_epochs=0", "dropout=0", f"out_dir={tmp_path}",
            "run_name=lm"]
    subprocess.run([sys.executable, "-m", "ssmkit", "train", *args], check=True, capture_output=True, text=True)
    out = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(tmp_path / "lm"), "--prompt", "the qu",
                          "--length", "40", "--temperature", "0"], check=True, capture_output=True, text=True)
    text, _, speed = out.stdout.rpartition("\n\n")
    assert text.startswith("the qu") and len(text.encode()) >= 40
    assert "s to set up (prompt of 6 tokens by the chunked view, states), then" in speed and "tokens/s" in speed
    import csv
    rows = list(csv.DictReader(open(tmp_path / "lm" / "metrics.csv")))
    assert float(rows[-1]["train_loss"]) < 0.5 * float(rows[0]["train_loss"])  # it learned the two sentences


@pytest.mark.parametrize("options", [{"chunk_size": 4}, {"l_max": 64}], ids=str)
def test_mega_language_model_generates_what_it_computes_with_a_static_cache(options):
    model = SequenceModel(256, 256, layer="mega", d_model=16, n_layers=2, vocab_size=256, pool="none",
                          layer_options={"ndim": 4, **options}).double()
    keys = model.default_state(2, max_length=17)[0][1]
    assert keys.shape[:2] == (2, options.get("chunk_size", 17))  # what generate allocates for 6 + 11 tokens
    tokens, logits = generate(model, torch.randint(0, 256, (2, 6)), 11)
    assert rel_err(logits, model(tokens[:, :-1])[:, 5:]) < 1e-9


def test_pair_model_compares_two_independently_encoded_sequences():
    model = SequenceModel(1, 3, d_model=8, n_layers=2, pair=True, layer_options={"d_state": 8}).double()
    single = SequenceModel(1, 3, d_model=8, n_layers=2, layer_options={"d_state": 8}).double()
    x = torch.randn(4, 2, 20, 1, dtype=torch.float64)
    a, b = model._pooled(x[:, 0], None), model._pooled(x[:, 1], None)
    expected = model.decoder(torch.cat([a, b, a * b, a - b], -1))
    assert rel_err(model(x), expected) < 1e-12
    with pytest.raises(ValueError, match=r"x: expected a floating-point tensor of shape \(B, 2, L, d_input=1\)"):
        model(torch.randn(4, 20, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="pool='none'"):
        SequenceModel(1, 3, pair=True, pool="none")
    assert single(x[:, 0]).shape == (4, 3)


def test_mean_pooling_ignores_padding_beyond_each_length():
    model = SequenceModel(16, 3, d_model=8, n_layers=2, vocab_size=16, layer_options={"d_state": 8}).double()
    x = torch.randint(1, 16, (2, 12))
    padded = x.clone()
    padded[0, 7:] = 0
    out = model(padded, torch.tensor([7, 12]))
    assert rel_err(out[0], model(x[:1, :7])[0]) < 1e-12  # causal layers: the padding cannot reach the first 7


def test_filters_keep_what_top_k_and_top_p_promise():
    from ssmkit.models.sampling import SamplingOptions, filter_logits
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1]]))
    kept = lambda **kw: torch.isfinite(filter_logits(logits, SamplingOptions(**kw), None))[0].tolist()  # noqa: E731
    assert kept(top_k=2) == [True, True, False, False]
    assert kept(top_p=0.5) == [True, False, False, False]  # the first token alone reaches 0.5
    assert kept(top_p=0.7) == [True, True, False, False]
    assert kept(top_p=1.0) == [True, True, True, True]
    seen = torch.tensor([[True, False, False, False]])
    penalized = filter_logits(torch.tensor([[2.0, 1.0, -1.0, 0.0]]), SamplingOptions(repetition_penalty=2.0), seen)
    assert penalized.tolist() == [[1.0, 1.0, -1.0, 0.0]]


@pytest.mark.triton
@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("step,offset", [(1, 0), (0, 1)])
def test_inverse_cdf_sampling_is_exact(backend, step, offset):
    """token = first i with cdf_i > U: each token takes exactly its probability's share of [0, 1); the op also writes
    the token and the logits at step t + offset (on the GPU, or in Triton's CPU interpreter)."""
    from ssmkit.ops import draw as draw_module  # noqa: F401
    impl = pytest.importorskip(f"ssmkit.ops.{'draw' if backend == 'torch' else 'triton_draw'}")
    device = "cuda" if backend == "triton" and torch.cuda.is_available() else "cpu"
    p = torch.tensor([0.1, 0.0, 0.6, 0.3], device=device)
    B = 1000
    uniforms = ((torch.arange(B, device=device) + 0.5) / B).expand(3, B).contiguous()
    t = torch.tensor([step], device=device)
    x = torch.zeros(B, dtype=torch.long, device=device)
    tokens = torch.zeros(3, B, dtype=torch.long, device=device)
    out = torch.zeros(3, B, 4, device=device)
    logits = p.log().expand(B, 4).contiguous()
    fn = impl.draw_torch if backend == "torch" else impl.draw_triton
    fn(logits, uniforms, t, x, tokens, out, torch.zeros(B, dtype=torch.bool, device=device), 1.0, None, offset)
    assert torch.bincount(x, minlength=4).tolist() == [100, 0, 600, 300] and t.item() == step
    assert torch.equal(tokens[1], x) and not tokens[0].any() and torch.equal(out[1], logits)


def test_eos_ends_each_row_and_the_seed_fixes_the_sample():
    model = SequenceModel(8, 8, d_model=16, n_layers=1, vocab_size=8, pool="none")
    with torch.no_grad():
        model.decoder.bias[3] = 4.0  # token 3 likely: every row soon emits it
    prompt = torch.zeros(4, 2, dtype=torch.long)
    a, logits = generate(model, prompt, 500, seed=1, eos=3)
    b, _ = generate(model, prompt, 500, seed=1, eos=3)
    assert torch.equal(a, b) and a.shape[1] < 502 and logits.shape[1] == a.shape[1] - 2
    for row in a[:, 2:]:
        first = int((row == 3).int().argmax())
        assert (row[first:] == 3).all()
    assert (a[:, -1] == 3).all() and not (a[:, -2] == 3).all()  # cut right after the last row finished


@pytest.mark.parametrize("bad", [dict(top_k=0), dict(temperature=float("nan")), dict(top_p=0.0),
                                 dict(repetition_penalty=0.0), dict(eos=300)])
def test_sampling_options_are_checked(bad):
    model = SequenceModel(256, 256, d_model=8, n_layers=1, vocab_size=256, pool="none")
    with pytest.raises(ValueError, match=next(iter(bad))):
        generate(model, torch.zeros(1, 2, dtype=torch.long), 3, **bad)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("layer, options", [("s4", {}), ("s4d", {}), ("s5", {}), ("mega", {"chunk_size": 8}),
                                            ("mega", {"l_max": 64, "attention": "laplace"})], ids=str)
def test_cuda_graph_generation_equals_the_plain_loop(layer, options):
    """Same seed, same tokens and logits: the graph replays the plain loop's kernels (Mega and attention: static
    caches, so no step falls back to the plain loop with a warning)."""
    model = SequenceModel(256, 256, layer=layer, d_model=64, n_layers=2, vocab_size=256, pool="none",
                          layer_options=options, attention_every=2 if layer == "s4d" else 0).cuda()
    prompt = torch.randint(0, 256, (4, 9), device="cuda")
    kw = dict(temperature=0.9, top_p=0.95, seed=3)
    plain = generate(model, prompt, 50, cuda_graph=False, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graphed = generate(model, prompt, 50, **kw)
    assert not [w for w in caught if "generate:" in str(w.message)]  # no fallback to the plain loop
    assert torch.equal(plain[0], graphed[0]) and torch.equal(plain[1], graphed[1])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("n_tokens", [50, 5])
def test_cuda_graph_over_sashimis_pooling_cycle_equals_the_plain_loop(n_tokens):
    """The graph replays one cycle of 16 steps (pool (4, 4)); prompts and lengths off the cycle give the same tokens."""
    from ssmkit.models import Sashimi
    model = Sashimi(1, 256, vocab_size=256, d_model=16, n_layers=2, pool=[4, 4], layer="s4").cuda()
    prompt = torch.randint(0, 256, (3, 9), device="cuda")
    plain = generate(model, prompt, n_tokens, cuda_graph=False, seed=5, temperature=0.8)
    graphed = generate(model, prompt, n_tokens, seed=5, temperature=0.8)
    assert graphed[0].shape == (3, 9 + n_tokens)
    assert torch.equal(plain[0], graphed[0]) and torch.equal(plain[1], graphed[1])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generation_samples_after_a_failed_capture(monkeypatch):
    """A step that waits for the device while the token cycle is captured (CUDA invalidates the capture): one
    warning, the plain loop's tokens, and random draws still work (the generator was left marked as capturing
    before, so every later draw of the process failed)."""
    model = SequenceModel(256, 256, layer="s4d", d_model=32, n_layers=1, vocab_size=256, pool="none").cuda()
    prompt = torch.randint(0, 256, (2, 5), device="cuda")
    kw = dict(temperature=0.9, seed=1)
    plain = generate(model, prompt, 20, cuda_graph=False, **kw)

    def syncing(step):
        def run(*args, **kwargs):
            out = step(*args, **kwargs)
            if torch.cuda.is_current_stream_capturing():
                torch.cuda.synchronize()
            return out
        return run
    for name in ("step", "step_features"):  # the loop steps through one of them
        if hasattr(model, name):
            monkeypatch.setattr(model, name, syncing(getattr(model, name)))
    with pytest.warns(UserWarning, match="generate: the token step could not be captured"):
        fallback = generate(model, prompt, 20, **kw)
    assert torch.equal(plain[0], fallback[0]) and torch.isfinite(torch.rand(3, device="cuda")).all()


def test_attention_hybrid_generates_what_it_computes_with_a_static_cache():
    model = SequenceModel(256, 256, d_model=16, n_layers=2, vocab_size=256, pool="none", attention_every=2,
                          layer_options={"d_state": 8}).double()
    states = model.default_state(2, max_length=30)
    assert states[1][0].shape == (2, 4, 30, 4) and states[1][2].tolist() == [0]
    tokens, logits = generate(model, torch.randint(0, 256, (2, 6)), 11, seed=0)
    assert rel_err(logits, model(tokens[:, :-1])[:, 5:]) < 1e-9


def test_static_attention_cache_steps_like_the_growing_one():
    layer = ssmkit.layer("attention", d_model=8, n_heads=2).double()
    u = torch.randn(3, 7, 8, dtype=torch.float64)
    grow, static = layer.default_state(3), layer.default_state(3, max_length=7)
    y_static, static = layer(u[:, :4], static)  # a chunk, then steps
    y_grow, grow = layer(u[:, :4], grow)
    for t in range(4, 7):
        a, grow = layer.step(u[:, t], grow)
        b, static = layer.step(u[:, t], static)
        assert torch.allclose(a, b, atol=1e-12)
    assert torch.allclose(y_static, y_grow, atol=1e-12) and static[2].tolist() == [7]


def test_generate_leaves_the_model_in_the_mode_it_found():
    model = ssmkit.models.SequenceModel(d_input=5, d_model=8, d_output=5, n_layers=1, vocab_size=5, pool="none",
                                        layer_options=dict(d_state=4))
    for training in (True, False):
        model.train(training)
        ssmkit.models.generate(model, torch.tensor([[1, 2]]), 3, seed=0)
        assert model.training == training


@pytest.mark.parametrize("options", [dict(temperature=0.9), dict(temperature=0.9, top_k=3, repetition_penalty=1.3)])
def test_a_cycle_writes_each_step_where_single_steps_do(options):
    """A cycle (what a CUDA graph replays) writes its steps at t + 0, …, t + period − 1 and advances t once: the same
    tokens, logits and t as stepping one token at a time, with the filters too."""
    from ssmkit.models import Sashimi
    from ssmkit.models.generate import _Loop
    from ssmkit.models.sampling import Sampler, SamplingOptions
    torch.manual_seed(0)
    model = Sashimi(1, 16, vocab_size=16, d_model=8, n_layers=1, pool=[2, 2], layer_options={"d_state": 4}).eval()
    prompt, uniforms = torch.randint(0, 16, (3, 1)), torch.rand(12, 3)
    loops = [_Loop(model, prompt[:, 0], model.default_state(3), Sampler(SamplingOptions(**options), 3, 16, "cpu",
                                                                        prompt), uniforms, 16) for _ in range(2)]
    with torch.no_grad():
        for _ in range(3):
            loops[0].cycle(model.step_period)
        for _ in range(12):
            loops[1].step()
    assert loops[0].t.item() == loops[1].t.item() == 12
    assert torch.equal(loops[0].tokens, loops[1].tokens) and torch.equal(loops[0].logits, loops[1].logits)


@pytest.mark.parametrize("B,D,V,temperature,eos", [(3, 64, 256, 1.0, None), (2, 48, 100, 0.7, 5),
                                                    (4, 64, 256, 0.0, None)])
@pytest.mark.triton
def test_draw_through_the_head_in_one_op(B, D, V, temperature, eos):
    """ops.draw_head, LayerNorm and Linear then the draw in one program per row (on the GPU, or in Triton's CPU
    interpreter), against the reference that composes them: the same tokens, finished rows and t + offset, the
    logits to float32 rounding; ragged D and V, greedy and eos."""
    draw_module = importlib.import_module("ssmkit.ops.draw")
    tdraw = pytest.importorskip("ssmkit.ops.triton_draw")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    norm, linear = torch.nn.LayerNorm(D).to(device), torch.nn.Linear(D, V).to(device)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    h = torch.randn(B, D, device=device) * 3 + 1
    t, offset = torch.tensor([2], device=device), 1
    uniforms = torch.rand(5, B, device=device)
    outs = []
    for fn in (draw_module.draw_head_torch, tdraw.draw_head_triton):
        x = torch.zeros(B, dtype=torch.long, device=device)
        tokens = torch.zeros(5, B, dtype=torch.long, device=device)
        logits = torch.zeros(5, B, V, device=device)
        finished = torch.tensor([True] + [False] * (B - 1), device=device)
        with torch.no_grad():
            fn(h, norm.weight, norm.bias, norm.eps, linear.weight, linear.bias, uniforms, t, x, tokens, logits,
               finished, temperature, eos, offset)
        outs.append((x, tokens, logits, finished))
    (x, tokens, logits, finished), (x2, tokens2, logits2, finished2) = outs
    assert torch.equal(x, x2) and torch.equal(tokens, tokens2) and torch.equal(finished, finished2)
    assert torch.equal(tokens[3], x) and not tokens[2].any() and rel_err(logits2, logits) < 1e-5
    assert logits[3].abs().sum() > 0 and (eos is None or x[0] == eos)


@pytest.mark.triton
def test_draw_head_picks_from_the_logits_as_stored():
    """In a bfloat16 model the head's logits are rounded to bfloat16 before the pick, as the Linear then draw would
    round them: two logits 2^-10 apart, equal after rounding, give the reference's greedy token (the first)."""
    draw_module = importlib.import_module("ssmkit.ops.draw")
    tdraw = pytest.importorskip("ssmkit.ops.triton_draw")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    norm = torch.nn.LayerNorm(8).to(device, torch.bfloat16)
    linear = torch.nn.Linear(8, 4).to(device, torch.bfloat16)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[1, 0] = 2.0 ** -11  # logit 1 is 1 + ~2^-10 (under bf16's 2^-7 step at 1.0)
        linear.bias.copy_(torch.tensor([1.0, 1.0, -5.0, -5.0]))
    h = torch.zeros(1, 8, device=device, dtype=torch.bfloat16)
    h[0, 0] = 3.0
    picked = []
    for fn in (draw_module.draw_head_torch, tdraw.draw_head_triton):
        x = torch.zeros(1, dtype=torch.long, device=device)
        out = torch.zeros(2, 1, 4, device=device, dtype=torch.bfloat16)
        with torch.no_grad():
            fn(h, norm.weight, norm.bias, norm.eps, linear.weight, linear.bias, torch.rand(2, 1, device=device),
               torch.tensor([0], device=device), x, torch.zeros(2, 1, dtype=torch.long, device=device), out,
               torch.zeros(1, dtype=torch.bool, device=device), 0.0, None)
        picked.append(x.item())
    assert picked == [0, 0]
