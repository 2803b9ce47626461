import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.autograd import gradcheck

from ssmkit.ops import scan


def _loop(a, b):
    x, out = torch.zeros_like(b[:, 0]), []
    for k in range(b.shape[1]):
        x = a[:, k] * x + b[:, k]
        out.append(x)
    return torch.stack(out, 1)


def _decaying(*shape, dtype=torch.complex128):
    r = torch.rand(*shape, dtype=torch.float64) * 0.5 + 0.49
    return torch.polar(r, torch.randn(*shape, dtype=torch.float64)).to(dtype) if dtype.is_complex else r


@pytest.mark.parametrize("L", [1, 2, 3, 7, 64, 100, 1000, 4097, 5000])
def test_scan_equals_the_sequential_loop_complex(L):
    a, b = _decaying(2, L, 3), torch.randn(2, L, 3, dtype=torch.complex128)
    assert torch.allclose(scan(a, b), _loop(a, b), rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 3), L=st.integers(1, 300), P=st.integers(1, 4))
def test_scan_equals_the_sequential_loop_real(B, L, P):
    a, b = _decaying(B, L, P, dtype=torch.float64), torch.randn(B, L, P, dtype=torch.float64)
    assert torch.allclose(scan(a, b), _loop(a, b), rtol=1e-10, atol=1e-12)


def test_scan_broadcasts_a_over_the_batch():
    a, b = _decaying(1, 50, 4), torch.randn(3, 50, 4, dtype=torch.complex128)
    assert torch.allclose(scan(a, b), _loop(a.expand_as(b), b), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("L", [1, 5, 8])
def test_scan_gradcheck(L):
    a = _decaying(2, L, 2).requires_grad_()
    b = torch.randn(2, L, 2, dtype=torch.complex128, requires_grad=True)
    assert gradcheck(scan, (a, b))


def test_scan_checks_shapes():
    with pytest.raises(ValueError, match="b: expected shape"):
        scan(torch.ones(4, 3), torch.ones(4, 3))
    with pytest.raises(ValueError, match="a: expected shape"):
        scan(torch.ones(1, 5, 2), torch.ones(1, 4, 2))


@pytest.mark.triton
@pytest.mark.parametrize("complex_", [True, False])
@pytest.mark.parametrize("L", [1, 5, 64, 150])
def test_triton_scan_matches_the_reference(complex_, L):
    """float32 / complex64 values and gradients, a broadcast over the batch: on the GPU when there is one, else in
    Triton's CPU interpreter."""
    triton_scan = pytest.importorskip("ssmkit.ops.triton_scan")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.complex64 if complex_ else torch.float32
    a = _decaying(1, L, 3, dtype=dtype).to(device, dtype).requires_grad_()
    b = torch.randn(2, L, 3, dtype=dtype, device=device, requires_grad=True)
    g = torch.randn(2, L, 3, dtype=dtype, device=device)
    x = triton_scan.scan_triton(a.expand_as(b), b)
    ref = _loop(a.expand_as(b), b)
    grads = torch.autograd.grad((x * g.conj()).real.sum(), (a, b))
    refs = torch.autograd.grad((ref * g.conj()).real.sum(), (a, b))
    assert torch.allclose(x, ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, refs):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
