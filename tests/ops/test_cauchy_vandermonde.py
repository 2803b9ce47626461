import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.autograd import gradcheck

from ssmkit.ops import _chunks, cauchy, vandermonde


def _cauchy_reference(v, z, w):
    return (v[..., None] / (z - w[..., None]) + v.conj()[..., None] / (z - w.conj()[..., None])).sum(-2)


def _vandermonde_reference(v, x, L):
    return (v[..., None] * torch.exp(x[..., None] * torch.arange(L, dtype=torch.float64))).sum(-2)


def _poles(*shape):
    return torch.complex(-torch.rand(*shape, dtype=torch.float64) - 0.1, torch.randn(*shape, dtype=torch.float64))


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Force several chunks along L even for tiny inputs."""
    monkeypatch.setattr(_chunks, "MAX_TEMP_ELEMENTS", 7)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 3), H=st.integers(1, 3), N=st.integers(1, 6), L=st.integers(1, 40))
def test_cauchy_matches_the_broadcast_sum(batch, H, N, L):
    v = torch.randn(batch, H, N, dtype=torch.complex128)
    w = _poles(H, N)
    z = 1j * torch.randn(L, dtype=torch.float64)
    assert torch.allclose(cauchy(v, z, w), _cauchy_reference(v, z, w), rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 3), H=st.integers(1, 3), N=st.integers(1, 6), L=st.integers(1, 40))
def test_vandermonde_matches_the_broadcast_sum(batch, H, N, L):
    v = torch.randn(batch, H, N, dtype=torch.complex128)
    x = _poles(H, N)
    assert torch.allclose(vandermonde(v, x, L), _vandermonde_reference(v, x, L), rtol=1e-12, atol=1e-12)


def test_chunked_cauchy_equals_unchunked(tiny_chunks):
    v, w, z = torch.randn(2, 3, 5, dtype=torch.complex128), _poles(3, 5), 1j * torch.randn(23, dtype=torch.float64)
    assert torch.allclose(cauchy(v, z, w), _cauchy_reference(v, z, w), rtol=1e-12, atol=1e-12)


def test_chunked_vandermonde_equals_unchunked(tiny_chunks):
    v, x = torch.randn(2, 3, 5, dtype=torch.complex128), _poles(3, 5)
    assert torch.allclose(vandermonde(v, x, 23), _vandermonde_reference(v, x, 23), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("v_shape,w_shape", [((2, 1, 4), (3, 4)), ((3, 4), (2, 3, 4)), ((5, 4), (3, 1, 4)),
                                              ((4,), (4,)), ((6, 2, 3, 4), (3, 4))])
def test_cauchy_takes_any_broadcast_of_v_against_w(v_shape, w_shape, tiny_chunks):
    """Rows sharing a w take one product (w's batch ending v's) or each its own (other broadcasts): the sum and both
    gradients are the broadcast expression's, chunked."""
    v = torch.randn(*v_shape, dtype=torch.complex128, requires_grad=True)
    w = _poles(*w_shape).requires_grad_()
    z = 1j * torch.randn(9, dtype=torch.float64)
    out, ref = cauchy(v, z, w), _cauchy_reference(v, z, w)
    assert out.shape == ref.shape and torch.allclose(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    got = torch.autograd.grad(out, (v, w), g)
    want = torch.autograd.grad(ref, (v, w), g)
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(got, want))


@pytest.mark.parametrize("chunked", [False, True])
def test_cauchy_gradcheck_with_broadcast(chunked, monkeypatch):
    if chunked:
        monkeypatch.setattr(_chunks, "MAX_TEMP_ELEMENTS", 7)
    v = torch.randn(2, 3, 4, dtype=torch.complex128, requires_grad=True)
    w = _poles(3, 4).requires_grad_()
    z = 1j * torch.randn(9, dtype=torch.float64)
    assert gradcheck(lambda v, w: cauchy(v, z, w), (v, w))


@pytest.mark.parametrize("chunked", [False, True])
def test_vandermonde_gradcheck_with_broadcast(chunked, monkeypatch):
    if chunked:
        monkeypatch.setattr(_chunks, "MAX_TEMP_ELEMENTS", 7)
    v = torch.randn(2, 3, 4, dtype=torch.complex128, requires_grad=True)
    x = _poles(3, 4).requires_grad_()
    assert gradcheck(lambda v, x: vandermonde(v, x, 11), (v, x))


def test_saved_tensors_do_not_grow_with_N_times_L(monkeypatch):
    """Backward recomputes the (.., N, chunk) temporaries: nothing of size H·N·L is kept for it."""
    monkeypatch.setattr(_chunks, "MAX_TEMP_ELEMENTS", 1 << 12)
    H, N, L = 8, 16, 2048
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        v = torch.randn(H, N, dtype=torch.complex64, requires_grad=True)
        x = _poles(H, N).to(torch.complex64).requires_grad_()
        z = 1j * torch.randn(L)
        (vandermonde(v, x, L).real.sum() + cauchy(v, z, x).real.sum()).backward()
    assert max(sizes) < H * N * L // 8


def test_complex_dtypes_and_shapes_are_checked():
    v, w = torch.randn(2, 3, dtype=torch.complex128), _poles(2, 3)
    with pytest.raises(ValueError, match="complex"):
        cauchy(v.real, 1j * torch.randn(4, dtype=torch.float64), w)
    with pytest.raises(ValueError, match="z: expected shape"):
        cauchy(v, 1j * torch.randn(2, 4, dtype=torch.float64), w)
    with pytest.raises(ValueError, match="same last dimension"):
        vandermonde(v, _poles(2, 4), 5)
    with pytest.raises(ValueError, match="L: expected a positive integer"):
        vandermonde(v, w, 0)


def _agree_with_gradients(out, ref, inputs, tol):
    """out within tol of ref (relative to ref's largest entry), and so are their gradients to inputs for one random
    output gradient."""
    assert (out - ref).abs().max() <= tol * ref.abs().max()
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(out, inputs, g), torch.autograd.grad(ref, inputs, g)):
        assert (a - b).abs().max() <= tol * b.abs().max()


@pytest.mark.triton
@pytest.mark.parametrize("dtype,tol", [(torch.complex128, 1e-12), (torch.complex64, 2e-5)])
@pytest.mark.parametrize("N,L", [(1, 1), (5, 70), (37, 33), (64, 130)])
def test_triton_cauchy_matches_the_reference(dtype, tol, N, L):
    """Values and gradients of v and w, broadcast operands, shapes off the tiles: on the GPU when there is one, else
    in Triton's CPU interpreter."""
    triton_cauchy = pytest.importorskip("ssmkit.ops.triton_cauchy")
    from ssmkit.ops.cauchy import cauchy_torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(N + L)
    v = torch.randn(2, 3, N, dtype=dtype, device=device, requires_grad=True)
    w = _poles(3, N).to(dtype=dtype, device=device).requires_grad_()
    z = (1j * torch.randn(L, dtype=torch.float64)).to(dtype=dtype, device=device)
    ref, out = cauchy_torch(v, z, w), triton_cauchy.cauchy_triton(v, z, w)
    assert out.shape == ref.shape == (2, 3, L)
    _agree_with_gradients(out, ref, (v, w), tol)


@pytest.mark.triton
@pytest.mark.parametrize("dtype,tol", [(torch.complex128, 1e-12), (torch.complex64, 2e-5)])
@pytest.mark.parametrize("N,L", [(1, 1), (5, 70), (37, 33), (64, 130)])
def test_triton_vandermonde_matches_the_reference(dtype, tol, N, L):
    """Values and gradients of v and x, broadcast operands, shapes off the tiles, phases Im x·l beyond 2π: on the GPU
    when there is one, else in Triton's CPU interpreter."""
    triton_vandermonde = pytest.importorskip("ssmkit.ops.triton_vandermonde")
    from ssmkit.ops.vandermonde import vandermonde_torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(N + L)
    v = torch.randn(2, 3, N, dtype=dtype, device=device, requires_grad=True)
    x = torch.complex(-0.05 * torch.rand(3, N, dtype=torch.float64), 3 * torch.randn(3, N, dtype=torch.float64))
    x = x.to(dtype=dtype, device=device).requires_grad_()
    ref, out = vandermonde_torch(v, x, L), triton_vandermonde.vandermonde_triton(v, x, L)
    assert out.shape == ref.shape == (2, 3, L)
    _agree_with_gradients(out, ref, (v, x), tol)


@pytest.mark.triton
def test_triton_vandermonde_phases_stay_accurate_at_long_lengths():
    """float32 with Im x ≈ 10 at l up to 20000: the Triton phases (reduced in float64) against float64, where a
    float32 product l·Im x would be off by ~1e-3 rad."""
    triton_vandermonde = pytest.importorskip("ssmkit.ops.triton_vandermonde")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.tensor([[-1e-5 + 9.87654321j]], dtype=torch.complex128)
    v = torch.ones(1, 1, dtype=torch.complex128)
    exact = _vandermonde_reference(v, x, 20000)
    out = triton_vandermonde.vandermonde_triton(v.to(torch.complex64).to(device), x.to(torch.complex64).to(device),
                                                 20000).cpu()
    x32 = x.to(torch.complex64).to(torch.complex128)  # the float32 input itself, exactly
    assert (out - _vandermonde_reference(v, x32, 20000)).abs().max() < 1e-4
    assert exact.abs().max() > 0.5


@pytest.mark.parametrize("start,stop", [(0, 255), (0, 256), (3, 1000), (700, 2000)])
def test_blocked_powers_equal_the_direct_ones(start, stop):
    """Past 8 blocks the powers are products exp(q·x)·exp(r·x): equal to exp(l·x) to rounding (float64 and float32)."""
    from ssmkit.ops.vandermonde import _powers
    x = torch.complex(-0.01 * torch.rand(3, 5, dtype=torch.float64), 3 * torch.randn(3, 5, dtype=torch.float64))
    exact = torch.exp(x[..., None] * torch.arange(start, stop, dtype=torch.float64))
    assert torch.allclose(_powers(x, start, stop), exact, rtol=0, atol=1e-12)
    x32 = x.to(torch.complex64)
    exact32 = torch.exp(x32.to(torch.complex128)[..., None] * torch.arange(start, stop, dtype=torch.float64))
    err = (_powers(x32, start, stop) - exact32).abs().max()
    direct = (torch.polar(torch.exp(x32.real[..., None] * torch.arange(start, stop, dtype=torch.float32)),
                          x32.imag[..., None] * torch.arange(start, stop, dtype=torch.float32)) - exact32).abs().max()
    assert err <= 2 * direct + 1e-6  # no worse than the direct float32 powers (whose phase l·Im x rounds)
