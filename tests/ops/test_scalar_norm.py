"""ops.scalar_norm, s · (x − μ + m) / √(var + ε) over the last axis: the reference against the formula in float64, the
Triton kernels (forward and the written-out backward) against the reference's autograd, on the GPU when there is
one, else in Triton's CPU interpreter."""
import pytest
import torch

from ssmkit.ops import scalar_norm
from tests.conftest import rel_err


def test_reference_is_the_formula():
    x = torch.randn(4, 7, dtype=torch.float64)
    s, m = torch.tensor([1.3], dtype=torch.float64), torch.tensor([-0.2], dtype=torch.float64)
    std, mean = torch.std_mean(x, dim=-1, unbiased=False, keepdim=True)
    assert rel_err(scalar_norm(x, s, m, 1e-12), 1.3 * (x - mean - 0.2) / std) < 1e-12


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="x, s, m"):
        scalar_norm(torch.randn(2, 4), torch.ones(4), torch.zeros(1), 1e-12)


@pytest.mark.parametrize("shape,dtype", [((3, 50, 64), torch.float32), ((2, 37, 48), torch.float32),
                                         ((5, 300), torch.float32), ((4, 33, 64), torch.bfloat16),
                                         ((2, 9, 256), torch.float16)])  # rows past one tile, ragged H, half types
@pytest.mark.triton
def test_triton_matches_the_reference_with_gradients(shape, dtype):
    """Values and the gradients of x, s and m against float64 (rel < 1e-5 in float32, the dtype's rounding in half
    types), for m ≠ 0 (its gradient through r) and rows far from zero (h = 1000 + N(0, 1) in float32)."""
    tsn = pytest.importorskip("ssmkit.ops.triton_scalar_norm")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(*shape, device=device)
    if dtype == torch.float32:
        x[0] += 1000.0
    x = x.to(dtype).requires_grad_()
    s = torch.tensor([1.7], device=device, requires_grad=True)
    m = torch.tensor([0.3], device=device, requires_grad=True)
    dy = torch.randn(*shape, device=device).to(dtype)
    y = tsn.scalar_norm_triton(x, s, m, 1e-12)
    grads = torch.autograd.grad((y.float() * dy.float()).sum(), (x, s, m))
    ref = [t.detach().cpu().double().requires_grad_() for t in (x, s, m)]
    y_ref = scalar_norm(*ref, 1e-12)
    refs = torch.autograd.grad((y_ref * dy.cpu().double()).sum(), ref)
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    assert y.dtype == dtype and y.shape == x.shape and rel_err(y.cpu().double(), y_ref) < tol
    for got, want in zip(grads, refs):
        assert got.dtype == (dtype if got.shape == x.shape else torch.float32)
        assert got.shape == want.shape and rel_err(got.cpu().double(), want) < tol


@pytest.mark.triton
def test_triton_takes_the_reference_for_float64():
    tsn = pytest.importorskip("ssmkit.ops.triton_scalar_norm")
    x = torch.randn(3, 8, dtype=torch.float64)
    s, m = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    assert torch.equal(tsn.scalar_norm_triton(x, s, m, 1e-12), scalar_norm(x, s, m, 1e-12))


@pytest.mark.triton
def test_triton_gradients_of_s_and_m_alone():
    """x without a gradient (a frozen input): ∂s and ∂m as the reference's, no ∂x formed."""
    tsn = pytest.importorskip("ssmkit.ops.triton_scalar_norm")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, dy = torch.randn(5, 40, device=device), torch.randn(5, 40, device=device)
    s = torch.tensor([0.8], device=device, requires_grad=True)
    m = torch.tensor([-0.5], device=device, requires_grad=True)
    got = torch.autograd.grad((tsn.scalar_norm_triton(x, s, m, 1e-12) * dy).sum(), (s, m))
    ref = [t.detach().cpu().double().requires_grad_() for t in (s, m)]
    want = torch.autograd.grad((scalar_norm(x.cpu().double(), *ref, 1e-12) * dy.cpu().double()).sum(), ref)
    for g, w in zip(got, want):
        assert rel_err(g.cpu().double(), w) < 1e-5
