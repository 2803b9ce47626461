"""The chunked convolution path of SSMConv (taken on CUDA with Triton) equals the FFT path: values and gradients."""
import pytest
import torch

import ssmkit
from tests.conftest import rel_err

LAYERS = [
    ("s4", dict(l_max=160)),
    ("s4", dict(l_max=None, init="legt")),
    ("s4", dict(l_max=160, channels=2, bidirectional=True)),
    ("s4d", dict(init="lin")),
    ("s4d", dict(init="legs", disc="bilinear", channels=2)),
    ("s4d", dict(bidirectional=True)),
    ("dss", dict(variant="exp")),
    ("dlr", dict()),
    ("ema", dict(ndim=4)),
]


def _features_and_grads(layer, u, chunked: bool, rate: float):
    """The layer's output through the FFT path (forward on the CPU) or the chunked one (what CUDA takes)."""
    layer.zero_grad()
    y = layer._whole(u, rate, chunked=True) if chunked else layer(u, rate=rate)[0]
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    return y.detach(), {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name,options", LAYERS)
@pytest.mark.parametrize("L", [70, 128])
def test_chunked_convolution_matches_fft_float64(name, options, L):
    size = {} if name == "ema" else {"d_state": 8}
    layer = ssmkit.layer(name, d_model=3, **size, **options).double()
    u = torch.randn(2, L, 3, dtype=torch.float64)
    rate = 1.0 if name == "s4" and options.get("l_max") else 0.7
    y_fft, g_fft = _features_and_grads(layer, u, False, rate)
    y_chk, g_chk = _features_and_grads(layer, u, True, rate)
    assert rel_err(y_chk, y_fft) < 1e-9
    assert g_chk.keys() == g_fft.keys()
    for n in g_fft:
        assert rel_err(g_chk[n], g_fft[n]) < 1e-7, n


def test_only_kernels_whose_recurrence_is_the_kernel_are_chunkable():
    assert ssmkit.layer("dss", d_model=2, variant="exp").kernel.chunkable
    assert not ssmkit.layer("dss", d_model=2, variant="softmax").kernel.chunkable
    assert not getattr(ssmkit.layer("sgconv", d_model=2, l_max=16).kernel, "chunkable", False)
    assert not ssmkit.layer("ema", d_model=2, bidirectional=True).kernel.chunkable  # own backward EMA, from lag 0


def test_cpu_forward_keeps_the_fft_path():
    layer = ssmkit.layer("s4d", d_model=2)
    assert not layer._chunked(torch.randn(1, 4, 2))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,options", [("s4", dict(l_max=256)), ("s4d", dict(bidirectional=True))])
def test_graphed_chunk_matrices_train_like_the_eager_ones(name, options):
    """Three AdamW steps with the matrices from CUDA graphs and formed eagerly: the same parameters; a layer moved away
    and back (new storage) captures again, also after earlier backward passes."""
    import copy
    graphed = ssmkit.layer(name, d_model=32, **options).cuda()
    eager = copy.deepcopy(graphed)
    eager._graphed_parts.failed = True  # the eager path
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in (graphed, eager)]
    for step in range(3):
        if step == 2:
            graphed.cpu().cuda()  # new storage for the same Parameter objects (the optimizer keeps its state)
        u = torch.randn(4, 200, 32, device="cuda")
        for m, opt in zip((graphed, eager), opts):
            m(u)[0].square().mean().backward()
            opt.step()
            opt.zero_grad()
    for (n, p), q in zip(graphed.named_parameters(), eager.parameters()):
        assert rel_err(p, q) < 1e-5, n
    assert graphed._graphed_parts.builder is not None


def test_inference_reuses_the_chunk_matrices_until_a_parameter_changes():
    layer = ssmkit.layer("s4", d_model=4, d_state=8, l_max=64, bidirectional=True).double()
    u = torch.randn(2, 64, 4, dtype=torch.float64)
    with torch.no_grad():
        first = layer._whole(u, 1.0, chunked=True)
        cached = layer._cached_parts.parts
        assert torch.equal(layer._whole(u, 1.0, chunked=True), first) and layer._cached_parts.parts is cached
        layer._whole(u, 2.0, chunked=True)  # another rate: new matrices
        assert layer._cached_parts.parts is not cached
        layer.D.add_(0.5)  # an in-place update (an optimizer step) bumps the version: new matrices
        after = layer._whole(u, 1.0, chunked=True)
    assert rel_err(after, layer(u)[0]) < 1e-10 and rel_err(after, first) > 1e-3


@pytest.mark.parametrize("fused", [True, False])
def test_cached_values_follow_an_optimizer_step(fused):
    """torch.optim's fused AdamW (the trainer's on a GPU) writes the parameters without bumping their version counters;
    an optimizer step still renews the cached chunk matrices and the cached step, so that evaluation after a training
    step sees the trained kernel (validation had used the first pass's matrices)."""
    layer = ssmkit.layer("s4", d_model=4, d_state=8, l_max=64).double()
    opt = torch.optim.AdamW(layer.parameters(), lr=0.1, fused=fused)
    u = torch.randn(2, 64, 4, dtype=torch.float64)
    with torch.no_grad():
        before = layer._whole(u, 1.0, chunked=True)
        y0, _ = layer.step(u[:, 0], layer.default_state(2))
    layer(u)[0].square().mean().backward()
    opt.step()
    with torch.no_grad():
        after = layer._whole(u, 1.0, chunked=True)
        y1, _ = layer.step(u[:, 0], layer.default_state(2))
    fresh = layer._whole(u, 1.0, chunked=True)  # with gradients: formed anew, no cache
    assert rel_err(after, fresh) < 1e-12 and rel_err(after, before) > 1e-3
    assert rel_err(y1, fresh[:, 0]) < 1e-10 and rel_err(y1, y0) > 1e-3


@pytest.mark.parametrize("name,options", [("s4", dict(l_max=70, bidirectional=True)), ("s4d", dict(channels=2)),
                                          ("s4d", dict(dropout=0.3)), ("sgconv", dict(l_max=70))])
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("recompute", [True, 2])
def test_recompute_gives_the_same_output_and_gradients(name, options, chunked, recompute):
    """recompute=True / rows per slice: the same y and every gradient (input and parameters) as keeping the
    activations, on both paths; dropout draws the same mask in the recomputation (checkpoint's RNG state), so the
    reference runs the plain layer on the same batch slices in the same order."""
    if chunked and name == "sgconv":
        pytest.skip("SGConv's kernel is not a recurrence's: no chunked path")
    torch.manual_seed(0)
    plain = ssmkit.layer(name, d_model=3, **({} if name == "sgconv" else {"d_state": 8}), **options).double()
    again = ssmkit.layer(name, d_model=3, **({} if name == "sgconv" else {"d_state": 8}), **options,
                         recompute=recompute).double()
    again.load_state_dict(plain.state_dict())
    u = torch.randn(5, 70, 3, dtype=torch.float64)
    results = []
    rows = again._recompute_rows(u)
    assert rows == (5 if recompute is True else 2)
    for layer in (plain, again):
        x = u.clone().requires_grad_()
        torch.manual_seed(1)
        parts = x.split(rows) if layer is plain else [x]
        y = torch.cat([layer._whole(part, 1.0, chunked=chunked) for part in parts])
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        results.append([y.detach(), x.grad] + [p.grad for p in layer.parameters()])
    for a, b in zip(*results):
        assert rel_err(b, a) < 1e-12


def test_recompute_keeps_only_the_input_for_backward():
    """The tensors saved for backward: with recompute, none of the size of the activations besides the input."""
    sizes = {}
    for recompute in (False, True):
        layer = ssmkit.layer("s4d", d_model=16, d_state=8, recompute=recompute)
        u = torch.randn(4, 256, 16, requires_grad=True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            layer(u)
        sizes[recompute] = sum(n for n in saved if n >= u.numel())
    assert sizes[True] <= u.numel() and sizes[False] >= 3 * u.numel(), sizes


def test_recompute_is_checked():
    with pytest.raises(ValueError, match="recompute: expected True, False or a positive number"):
        ssmkit.layer("s4d", d_model=2, recompute=0)
    with pytest.raises(ValueError, match="recompute"):
        ssmkit.layer("s4d", d_model=2, recompute=1.5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,options", [("s4", dict(l_max=8000, bidirectional=True)), ("s4d", dict())])
def test_recompute_on_the_gpu_path(name, options):
    """recompute on CUDA (graphed chunk matrices, fused Triton op, slices of 1 row): the same output and gradients as
    the plain layer, and a smaller peak memory."""
    torch.manual_seed(0)
    plain = ssmkit.layer(name, d_model=64, **options).cuda()
    again = ssmkit.layer(name, d_model=64, **options, recompute=1).cuda()
    again.load_state_dict(plain.state_dict())
    u = torch.randn(8, 8000, 64, device="cuda")
    results, peaks = [], []
    for layer in (plain, again, plain, again):  # the second pair: matrices from captured graphs
        x = u.clone().requires_grad_()
        layer.zero_grad()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        y = layer(x)[0]
        y.square().mean().backward()
        torch.cuda.synchronize()
        peaks.append(torch.cuda.max_memory_allocated() - base)
        results.append([y.detach(), x.grad] + [p.grad.clone() for p in layer.parameters()])
    for a, b in zip(results[2], results[3]):
        assert rel_err(b, a) < 1e-5
    assert peaks[3] < 0.7 * peaks[2], peaks


def test_cuda_graph_option_is_checked_and_a_no_op_on_the_cpu():
    with pytest.raises(ValueError, match="cuda_graph: expected a bool, and not together with recompute"):
        ssmkit.layer("s4d", d_model=2, cuda_graph=True, recompute=True)
    with pytest.raises(ValueError, match="cuda_graph"):
        ssmkit.layer("s4", d_model=2, cuda_graph=1)
    plain = ssmkit.layer("s4d", d_model=3, d_state=8)
    graphed = ssmkit.layer("s4d", d_model=3, d_state=8, cuda_graph=True)
    graphed.load_state_dict(plain.state_dict())
    u = torch.randn(2, 20, 3)
    assert torch.equal(graphed(u)[0], plain(u)[0])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,options", [("s4", dict(l_max=500, bidirectional=True, d_state=4)),
                                          ("s4d", dict(dropout=0.1))])
@pytest.mark.parametrize("bf16", [False, True])
def test_cuda_graph_trains_like_the_eager_layer(name, options, bf16):
    """Three AdamW steps through the layer's graphs and eagerly: the same outputs, input gradients and parameters;
    another batch shape captures again, evaluation runs eagerly. Dropout draws differ between the two (the graphs
    have their own RNG offsets): the dropout case only trains."""
    import copy
    torch.manual_seed(0)
    eager = ssmkit.layer(name, d_model=32, **options).cuda()
    graphed = copy.deepcopy(eager)
    graphed.cuda_graph = True
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in (eager, graphed)]
    for step, (B, L) in enumerate([(4, 500), (4, 500), (3, 500)]):
        u = torch.randn(B, L, 32, device="cuda")
        outs = []
        for m, opt in zip((eager, graphed), opts):
            x = u.clone().requires_grad_()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                y = m(x)[0]
            (y.float() * torch.linspace(-1, 1, y.numel(), device="cuda").view_as(y)).sum().backward()
            outs.append((y.detach().float().clone(), x.grad))
            opt.step()
            opt.zero_grad()
        if not options.get("dropout"):
            tol = 2e-2 if bf16 else 1e-5
            assert rel_err(outs[1][0], outs[0][0]) < tol and rel_err(outs[1][1], outs[0][1]) < tol, step
    assert len(graphed._graphed_layer.replays.graphs) == 2 and not graphed._graphed_layer.failed
    if options.get("dropout"):  # different masks: the runs differ; the graphed one trained to finite values
        assert all(torch.isfinite(p).all() for p in graphed.parameters())
        return
    for (n, p), q in zip(eager.named_parameters(), graphed.parameters()):
        assert rel_err(q, p) < (2e-2 if bf16 else 1e-5), n
    eager.eval(), graphed.eval()
    with torch.no_grad():
        u = torch.randn(2, 500, 32, device="cuda")
        assert rel_err(graphed(u)[0], eager(u)[0]) < (2e-2 if bf16 else 1e-5)
