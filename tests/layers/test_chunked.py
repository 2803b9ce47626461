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
    y = layer._chunked_forward(u, rate) if chunked else layer(u, rate=rate)[0]
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
        first = layer._chunked_forward(u, 1.0)
        cached = layer._cached_parts.parts
        assert torch.equal(layer._chunked_forward(u, 1.0), first) and layer._cached_parts.parts is cached
        layer._chunked_forward(u, 2.0)  # another rate: new matrices
        assert layer._cached_parts.parts is not cached
        layer.D.add_(0.5)  # an in-place update (an optimizer step) bumps the version: new matrices
        after = layer._chunked_forward(u, 1.0)
    assert rel_err(after, layer(u)[0]) < 1e-10 and rel_err(after, first) > 1e-3
