"""ops.window_norm, BatchNorm with the statistics of each row's first ``count`` positions: the reference against
nn.BatchNorm1d over those rows (float64), the Triton kernels (forward and the written-out backward) against the
reference's autograd, on the GPU when there is one, else in Triton's CPU interpreter."""
import pytest
import torch

from ssmkit.ops import window_norm
from tests.conftest import rel_err


def test_reference_is_batchnorm_over_the_window():
    """μ and σ² are BatchNorm1d's over the rows b, l < count; every position, the window's and the rest, is
    normalized by them."""
    torch.manual_seed(0)
    x = torch.randn(3, 10, 5, dtype=torch.float64)
    weight, bias = torch.rand(5, dtype=torch.float64) + 0.5, torch.randn(5, dtype=torch.float64)
    y, mean, var = window_norm(x, torch.tensor(7), weight, bias, 1e-5)
    rows = x[:, :7].reshape(-1, 5)
    var_ref, mean_ref = torch.var_mean(rows, 0, unbiased=False)
    assert rel_err(mean, mean_ref) < 1e-13 and rel_err(var, var_ref) < 1e-13
    assert rel_err(y, (x - mean_ref) / torch.sqrt(var_ref + 1e-5) * weight + bias) < 1e-13
    bn = torch.nn.BatchNorm1d(5, eps=1e-5).double()
    bn.weight.data, bn.bias.data = weight.clone(), bias.clone()
    assert rel_err(y[:, :7].reshape(-1, 5), bn(rows)) < 1e-13


@pytest.mark.triton
def test_bad_inputs_are_named():
    x = torch.randn(2, 6, 4)
    with pytest.raises(ValueError, match="x, count, weight, bias"):
        window_norm(x, torch.tensor(3.0), torch.ones(4), torch.zeros(4), 1e-5)
    with pytest.raises(ValueError, match="x, count, weight, bias"):
        window_norm(x, torch.tensor(3), torch.ones(5), torch.zeros(4), 1e-5)
    with pytest.raises(ValueError, match="x, count, weight, bias"):
        window_norm(x.flatten(0, 1), torch.tensor(3), torch.ones(4), torch.zeros(4), 1e-5)


def _against_reference(shape, count, dtype, device, offset=0.0, tol=None):
    """The Triton op's y, μ, σ² and the gradients of x, γ and β against the float64 reference's autograd."""
    twn = pytest.importorskip("ssmkit.ops.triton_window_norm")
    torch.manual_seed(0)
    H = shape[-1]
    x = torch.randn(*shape, device=device)
    x[..., 0] += offset  # a channel far from zero
    x = x.to(dtype).requires_grad_()
    weight = (torch.rand(H, device=device) + 0.5).requires_grad_()
    bias = torch.randn(H, device=device, requires_grad=True)
    dy = torch.randn(*shape, device=device).to(dtype)
    count = torch.tensor(count, device=device)
    y, mean, var = twn.window_norm_triton(x, count, weight, bias, 1e-5)
    grads = torch.autograd.grad((y.float() * dy.float()).sum(), (x, weight, bias))
    ref = [t.detach().cpu().double().requires_grad_() for t in (x, weight, bias)]
    y_ref, mean_ref, var_ref = window_norm(ref[0], count.cpu(), ref[1], ref[2], 1e-5)
    refs = torch.autograd.grad((y_ref * dy.cpu().double()).sum(), ref)
    tol = tol or (1e-5 if dtype == torch.float32 else 1e-2)
    assert y.dtype == dtype and y.shape == x.shape and rel_err(y.cpu().double(), y_ref) < tol
    assert mean.dtype == var.dtype == torch.float32
    assert rel_err(mean.cpu().double(), mean_ref) < tol and rel_err(var.cpu().double(), var_ref) < tol
    for got, want in zip(grads, refs):
        assert got.dtype == (dtype if got.shape == x.shape else torch.float32)
        assert got.shape == want.shape and rel_err(got.cpu().double(), want) < tol


@pytest.mark.parametrize("shape,count,dtype", [((3, 50, 64), 37, torch.float32), ((2, 45, 200), 45, torch.float32),
                                               ((5, 33, 48), 1, torch.float32), ((4, 40, 64), 29, torch.bfloat16),
                                               ((2, 21, 16), 20, torch.float16)])
def test_triton_matches_the_reference_with_gradients(shape, count, dtype):
    """Rows past one tile, channels past one block (200) and ragged (48), a window of every position and of one, half
    types; a channel at 1000 + N(0, 1) in float32 keeps its variance (the tiles merged by Chan's rule)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    _against_reference(shape, count, dtype, device, offset=1000.0 if dtype == torch.float32 else 0.0)


@pytest.mark.triton
def test_triton_takes_the_reference_for_float64():
    twn = pytest.importorskip("ssmkit.ops.triton_window_norm")
    x = torch.randn(2, 8, 3, dtype=torch.float64)
    w, b = torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    got, want = twn.window_norm_triton(x, torch.tensor(5), w, b, 1e-5), window_norm(x, torch.tensor(5), w, b, 1e-5)
    assert all(torch.equal(g, v) for g, v in zip(got, want))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_triton_at_lra_listops_size(dtype):
    """The batch of lra-listops (32 expressions padded to 2,000 tokens, width 256) with its longest at 1,868."""
    _against_reference((32, 2000, 256), 1868, dtype, "cuda", offset=10.0 if dtype == torch.float32 else 0.0)
