"""layers/cuda_graphs.py: the parameters' gradients out of a graphed callable are their own tensors."""
import pytest
import torch

from conftest import PythonNode
from ssmkit.layers.cuda_graphs import _OwnGradients, fresh_copies


class _StaticBuffers(torch.autograd.Function):
    """Stands in for a replayed CUDA graph: y = 2 p, whose backward writes into one static buffer and returns a
    detached view of it, as torch.cuda.make_graphed_callables does."""
    buffer = None

    @staticmethod
    def forward(ctx, p):
        return 2 * p

    @staticmethod
    def backward(ctx, g):
        if _StaticBuffers.buffer is None:
            _StaticBuffers.buffer = torch.empty_like(g)
        _StaticBuffers.buffer.copy_(2 * g)
        return _StaticBuffers.buffer.detach()


@pytest.mark.parametrize("own", [False, True])
def test_accumulated_gradients_survive_the_next_replay(own):
    _StaticBuffers.buffer = None
    p = torch.zeros(3, requires_grad=True)
    for scale in (1.0, 10.0):  # two micro-batches: .grad should be 2 * (1 + 10)
        q = _OwnGradients.apply(p)[0] if own else p
        (_StaticBuffers.apply(q) * scale).sum().backward()
    if own:
        assert torch.equal(p.grad, torch.full((3,), 22.0))
    else:  # the failure it prevents: .grad aliases the buffer, rewritten by the second backward
        assert torch.equal(p.grad, torch.full((3,), 40.0))


def test_tensors_without_gradients_pass_through():
    a, b = torch.ones(2, requires_grad=True), torch.ones(2)
    x, y = _OwnGradients.apply(a, b)
    assert x.requires_grad and not y.requires_grad
    (3 * x).sum().backward()
    assert torch.equal(a.grad, torch.full((2,), 3.0))


def test_fresh_copies_are_equal_contiguous_and_their_own():
    tensors = [torch.randn(3, 4).t(), torch.randn(5, dtype=torch.float64), torch.randn(2, 2, dtype=torch.complex64),
               torch.randn(0), torch.randn(2, 3)]
    copies = fresh_copies(tensors)
    for t, c in zip(tensors, copies):
        assert torch.equal(c, t) and c.dtype == t.dtype and c.is_contiguous()
    for t in tensors:
        t.add_(1)
    assert all(not torch.equal(c, t) for t, c in zip(tensors, copies) if t.numel())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("whole", [False, True])
def test_cuda_gradients_of_two_micro_batches_add_up(whole):
    """Two micro-batches' backward passes through a layer's graphs (its chunk matrices', or the whole layer's with
    cuda_graph) sum their gradients, as the eager layer's do."""
    import copy

    import ssmkit
    graphed = ssmkit.layer("s4", d_model=32, d_state=16, l_max=128, cuda_graph=whole).cuda()
    eager = copy.deepcopy(graphed)
    eager.cuda_graph = False
    eager._graphed_parts.failed = True
    graphed(torch.randn(2, 128, 32, device="cuda"))[0].sum().backward()  # capture, then start from no .grad
    graphed.zero_grad(set_to_none=True)
    for u in torch.randn(2, 2, 128, 32, device="cuda"):
        for m in (graphed, eager):
            m(u)[0].square().mean().backward()
    for (n, p), q in zip(graphed.named_parameters(), eager.parameters()):
        assert (p.grad - q.grad).norm() <= 1e-4 * q.grad.norm(), n


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("whole", [False, True])
def test_cuda_replays_read_the_parameters_in_place(whole):
    """A replay copies none of the parameters into the graph (its placeholders share their storage), and reads an
    optimizer's in-place update: after a step the graphed layer's output and gradients are the eager layer's."""
    import copy

    from torch.utils._python_dispatch import TorchDispatchMode

    import ssmkit

    class Copies(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.sizes = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.copy_.default:
                self.sizes.append(args[0].numel())
            return func(*args, **(kwargs or {}))

    graphed = ssmkit.layer("s4", d_model=32, d_state=16, l_max=128, cuda_graph=whole).cuda()
    eager = copy.deepcopy(graphed)
    eager.cuda_graph = False
    eager._graphed_parts.failed = True
    u = torch.randn(2, 128, 32, device="cuda")
    for m in (graphed, eager):  # the graphed one captures
        m(u)[0].sum().backward()
    with Copies() as copies:
        if whole:
            graphed._graphed_layer(graphed, u, 1.0)
        else:
            graphed._graphed_parts(graphed.kernel, graphed.D, False, 1.0)
    assert copies.sizes == ([u.numel()] if whole else []), copies.sizes  # the layer's input alone
    for m in (graphed, eager):
        torch.optim.SGD(m.parameters(), lr=0.5).step()  # in place
        m.zero_grad(set_to_none=True)
    for m in (graphed, eager):
        m(u)[0].square().mean().backward()
    assert (graphed(u)[0] - eager(u)[0]).abs().max() <= 1e-4
    for (n, p), q in zip(graphed.named_parameters(), eager.parameters()):
        assert (p.grad - q.grad).norm() <= 1e-4 * q.grad.norm(), n


def test_gradients_zeroed_in_place_stay_the_parameters_own():
    """zero_grad(set_to_none=False) keeps .grad and adds into it: with the buffers' views as .grad it doubled."""
    _StaticBuffers.buffer = None
    p = torch.zeros(3, requires_grad=True)
    for _ in range(2):
        if p.grad is not None:
            p.grad.zero_()
        _StaticBuffers.apply(_OwnGradients.apply(p)[0]).sum().backward()
        assert torch.equal(p.grad, torch.full((3,), 2.0))


def _stand_in_graphs(monkeypatch) -> tuple[list, list]:
    """cuda_graphs.graphed replaced by a stand-in that serves any device (GraphedLayer.usable then says yes on a CPU):
    a capture records its input's length, a replay runs the module through a Python autograd.Function (as
    make_graphed_callables' node is) and is counted. Returns (the captured lengths, the replays)."""
    from ssmkit.layers import cuda_graphs
    captured, replays = [], []

    def stand_in(module, inputs):
        names = [n for n, _ in module.named_parameters()]
        captured.append(inputs[0].shape[1])

        def run(*args):
            replays.append(1)
            return PythonNode.apply(torch.func.functional_call(module, dict(zip(names, args[1:])), args[:1]))
        return run
    monkeypatch.setattr(cuda_graphs, "graphed", stand_in)
    monkeypatch.setattr(cuda_graphs.GraphedLayer, "usable", staticmethod(lambda layer, u: True))
    return captured, replays


def test_a_layer_called_again_before_its_backward_runs_eagerly(monkeypatch):
    """A graph's backward reads the activations of its last forward replay: a second call before the first call's
    backward must not replay over them (GraphedLayer runs it eagerly), and after a backward the graph serves again.
    A stand-in for the graph records its replays."""
    import ssmkit
    replays = _stand_in_graphs(monkeypatch)[1]
    layer = ssmkit.layer("s4d", d_model=4, d_state=4, cuda_graph=True)
    u = torch.randn(2, 16, 4)
    first = layer(u)[0]
    second = layer(2 * u)[0]  # the first call's backward is still to come
    assert len(replays) == 1
    (first.sum() + second.sum()).backward()
    layer(u)[0].sum().backward()
    assert len(replays) == 2
    loss = layer(u)[0].sum()
    del loss  # a graph dropped without its backward frees the layer's graph for the next call
    layer(u)
    assert len(replays) == 4


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphed_lra_model_trains_under_bf16_like_the_eager_one():
    """An lra-listops-like model (bidirectional S4, N = 4, postnorm BatchNorm, each layer masking the padding) with
    every layer on cuda_graph, under bf16 autocast on padded batches with their lengths and the trainer's fused AdamW:
    four steps give finite losses within bf16 rounding of an eager copy's. (The trainer's NaN with these settings came
    from the first capture of a process: the next test.)"""
    import copy

    from ssmkit.models import SequenceModel
    from ssmkit.train.optim import adamw
    torch.manual_seed(0)
    graphed = SequenceModel(17, 10, layer="s4", d_model=64, n_layers=2, vocab_size=17, padding_idx=0, norm="batch",
                            prenorm=False, mask_padding="layers",
                            layer_options={"bidirectional": True, "d_state": 4, "cuda_graph": True}).cuda()
    eager = copy.deepcopy(graphed)
    for m in eager.modules():
        if hasattr(m, "cuda_graph"):
            m.cuda_graph = False
    optimizers = [adamw(m, 0.01, 0.05) for m in (eager, graphed)]
    for step in range(4):
        lengths = torch.randint(100, 301, (8,), device="cuda")
        x = torch.randint(1, 17, (8, 300), device="cuda") * (torch.arange(300, device="cuda") < lengths[:, None])
        y = torch.randint(0, 10, (8,), device="cuda")
        losses = []
        for model, optimizer in zip((eager, graphed), optimizers):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(model(x, lengths).float(), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert all(torch.isfinite(torch.tensor(losses))), (step, losses)
        assert abs(losses[1] - losses[0]) <= 2e-2 * abs(losses[0]), (step, losses)
    assert not any(m._graphed_layer.failed for m in graphed.modules() if hasattr(m, "_graphed_layer"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphed_lra_listops_trains_under_bf16_from_the_first_capture_of_a_process(tmp_path):
    """lra-listops with cuda_graph under bf16 in a fresh process, whose first capture is its first layer's. Before
    the warm-up on the capture stream (layers/cuda_graphs.py capture_stream), cuBLAS's workspace for that stream was
    made inside that capture, the first layer's gradients came out NaN and so did the loss of the second step, in 8
    runs of 8 on H100s; a process whose first capture came earlier trained."""
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent(f"""
        from ssmkit.data.listops import write_listops
        from ssmkit.train import load_experiment, make_config
        from ssmkit.train.trainer import train
        write_listops({str(tmp_path / "data")!r}, n_train=64, n_val=32, n_test=32, seed=0)
        config = make_config(["data_dir={tmp_path / 'data'}", "out_dir={tmp_path / 'runs'}", "epochs=1",
                              "precision=bf16", "trim_padding=false", "model_graph=false",
                              "layer_options.cuda_graph=true"],
                             load_experiment("lra-listops"), source="lra-listops")
        train(config, log=lambda *a, **k: None)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "could not capture" not in done.stderr, done.stderr[-3000:]  # the layers replayed, not ran eagerly


def test_graph_length_is_at_most_four_lengths_per_doubling_and_a_quarter_longer():
    from ssmkit.layers.cuda_graphs import graph_length
    for L in range(1, 5000):
        assert L <= graph_length(L) <= 1.25 * L and graph_length(graph_length(L)) == graph_length(L)
    assert len({graph_length(L) for L in range(1025, 2049)}) == 4
    assert [graph_length(L) for L in (1500, 1869, 2000)] == [1536, 2048, 2048]


def test_varying_lengths_replay_few_graphs_and_give_the_eager_outputs(monkeypatch):
    """Once a cuda_graph layer on the chunked path meets a second length, it replays graphs at graph_length(L) over
    the input padded with zeros and returns the first L steps: a bidirectional S4 gives the eager layer's outputs and
    gradients (float64), and lengths 37, 40, 33, 45 take graphs at 37 (the first, before lengths varied), 40 and 48. A
    stand-in for the graph records each capture's length (the replay itself is the function, as on the GPU)."""
    import copy

    import ssmkit
    captured = _stand_in_graphs(monkeypatch)[0]
    torch.manual_seed(0)
    eager = ssmkit.layer("s4", d_model=3, d_state=4, bidirectional=True).double()
    graphed = copy.deepcopy(eager)
    graphed.cuda_graph = True
    for m in (eager, graphed):  # the chunked path (on a GPU where Triton runs; here the float64 reference)
        monkeypatch.setattr(m, "_chunked", lambda u: True)
    for L in (37, 40, 33, 45):
        u = torch.randn(2, L, 3, dtype=torch.float64)
        results = []
        for m in (eager, graphed):
            x = u.clone().requires_grad_()
            y = m(x)[0]
            grads = torch.autograd.grad((y * torch.cos(y)).sum(), [x, *m.parameters()])
            results.append((y, grads))
        (y_e, g_e), (y_g, g_g) = results
        assert y_g.shape == y_e.shape and (y_g - y_e).abs().max() <= 1e-12 * y_e.abs().max()
        for a, b in zip(g_g, g_e):
            assert (a - b).abs().max() <= 1e-10 * b.abs().max().clamp_min(1e-30)
    assert captured == [37, 40, 48]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphed_layer_at_varying_lengths_trains_like_the_eager_one():
    """A bidirectional S4 with cuda_graph at the lengths of trimmed batches (500, 470, 520, 450: graphs at 500, 512 and
    640 after the first): three AdamW steps give the eager layer's outputs, input gradients and parameters."""
    import copy

    import ssmkit
    torch.manual_seed(0)
    eager = ssmkit.layer("s4", d_model=32, d_state=4, bidirectional=True).cuda()
    graphed = copy.deepcopy(eager)
    graphed.cuda_graph = True
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in (eager, graphed)]
    for L in (500, 470, 520, 450):
        u = torch.randn(4, L, 32, device="cuda")
        outs = []
        for m, opt in zip((eager, graphed), opts):
            x = u.clone().requires_grad_()
            y = m(x)[0]
            (y * torch.linspace(-1, 1, y.numel(), device="cuda").view_as(y)).sum().backward()
            outs.append((y.detach().clone(), x.grad))
            opt.step()
            opt.zero_grad()
        (y_e, g_e), (y_g, g_g) = outs
        assert y_g.shape == y_e.shape
        assert (y_g - y_e).norm() <= 1e-4 * y_e.norm() and (g_g - g_e).norm() <= 1e-4 * g_e.norm()
    for p, q in zip(eager.parameters(), graphed.parameters()):
        assert (p - q).norm() <= 1e-4 * p.norm()
    lengths = sorted({k[0][1] for k in graphed._graphed_layer.replays.graphs})
    assert lengths == [500, 512, 640] and not graphed._graphed_layer.failed


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graphed_layer_under_bf16_has_the_eager_gradients():
    """Under bf16 autocast with backward() after it, as the trainer steps: the graphed S4 layer's gradients are the
    eager layer's, its backward captured without autocast as eager runs it (cuda_graphs.graphed). Captured inside the
    autocast, the chunk matrices' backward products ran in bf16 and log Δ's gradient moved by a few percent."""
    import copy

    import ssmkit
    torch.manual_seed(0)
    eager = ssmkit.layer("s4", d_model=32, d_state=16, l_max=512).cuda()
    graphed = copy.deepcopy(eager)
    graphed.cuda_graph = True
    u = torch.randn(2, 512, 32, device="cuda")
    weight = torch.linspace(-1, 1, u.numel(), device="cuda").view_as(u)
    for _ in range(2):  # the first call captures, the second replays
        for m in (eager, graphed):
            m.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                y = m(u)[0]
            (y.float() * weight).sum().backward()
        for (name, p), q in zip(eager.named_parameters(), graphed.parameters()):
            assert (q.grad - p.grad).norm() <= 2e-3 * p.grad.norm() + 1e-6, (name, float((q.grad - p.grad).norm()
                                                                                     / p.grad.norm()))
