"""The chunked state-passing convolution equals the FFT convolution with the same SSM kernel (float64)."""
import pytest
import torch

from ssmkit.dense import dense_discretize, dense_kernel, dplr_dense
from ssmkit.kernels.chunked import dense_chunks, diagonal_chunks, interleave, real_form
from ssmkit.ops.power_rows import power_rows_torch as _power_rows
from ssmkit.ops import chunk_scan, chunkconv, fftconv
from ssmkit.ops.chunk_scan import scan_reference
from tests.conftest import random_stable, rel_err


def _diag_system(H=3, N2=4, Cch=2):
    Lambda, _, B, C, dt = random_stable(H, N2, Cch=Cch)
    log_dA = Lambda * dt[:, None]
    W = C * B  # B folded into the output weights: x_t = Ā x_{t−1} + u_t
    return log_dA, W


def _diag_kernel(log_dA, W, L):
    l = torch.arange(L, dtype=torch.float64)
    return torch.einsum("chn,hnl->chl", W, torch.exp(log_dA[..., None] * l)).real


@pytest.mark.parametrize("L", [1, 7, 16, 45])
@pytest.mark.parametrize("T", [4, 8])
def test_diagonal_chunkconv_matches_fft_convolution(L, T):
    log_dA, W = _diag_system()
    system = diagonal_chunks(log_dA, W, T)
    u = torch.randn(3, 2, L, dtype=torch.float64)  # (H, B, L)
    D = torch.randn(2, 3, dtype=torch.float64)
    y = chunkconv(u, system.Kt, system.Win, system.Wout, system.A, D)  # (H, B, L, Cch)
    K = _diag_kernel(log_dA, W, L)
    ref = fftconv(u.transpose(0, 1), K) + D[..., None] * u.transpose(0, 1)[:, None]  # (B, Cch, H, L)
    assert y.shape == (3, 2, L, 2)
    assert rel_err(y.permute(1, 3, 0, 2), ref) < 1e-12


def test_delayed_chunks_give_the_strictly_causal_kernel():
    log_dA, W = _diag_system()
    L, T = 21, 4
    s = diagonal_chunks(log_dA, W, T, delay=True)
    u = torch.randn(3, 2, L, dtype=torch.float64)
    K = _diag_kernel(log_dA, W, L)
    K_delayed = torch.cat([torch.zeros_like(K[..., :1]), K[..., :-1]], dim=-1)
    ref = fftconv(u.transpose(0, 1), K_delayed)
    assert rel_err(chunkconv(u, s.Kt, s.Win, s.Wout, s.A).permute(1, 3, 0, 2), ref) < 1e-12


@pytest.mark.parametrize("delay", [False, True])
def test_dense_chunks_of_a_dplr_system_match_the_dense_kernel(delay):
    H, N2, L, T = 2, 3, 30, 8
    Lambda, P, B, C, dt = random_stable(H, N2, Cch=2)
    A, Bf, Cf = dplr_dense(Lambda, P, B, C)
    dA, dB = dense_discretize(A, Bf, dt, "bilinear")
    M = real_form(dA)
    s = dense_chunks(M, interleave(dB[:, :N2]), interleave(2 * C.conj()), T, delay)
    K = dense_kernel(dA, dB, Cf, L).real  # (Cch, H, L)
    if delay:
        K = torch.cat([torch.zeros_like(K[..., :1]), K[..., :-1]], dim=-1)
    u = torch.randn(H, 2, L, dtype=torch.float64)
    ref = fftconv(u.transpose(0, 1), K)
    assert rel_err(chunkconv(u, s.Kt, s.Win, s.Wout, s.A).permute(1, 3, 0, 2), ref) < 1e-11


@pytest.mark.parametrize("n,Cch", [(2, 1), (3, 2), (4, 1), (6, 2), (9, 1), (17, 2), (65, 1)])
def test_power_rows_match_explicit_powers_with_their_gradients(n, Cch):
    """_PowerRows (the doubling chain with its backward written out) against the powers formed one by one: the rows
    M^j b and c M^j, the last power, and every input's gradient (float64 gradcheck), at row counts on and off powers of
    two and with one and two output channels."""
    H, S = 2, 4
    M = (0.5 * torch.randn(H, S, S, dtype=torch.float64)).requires_grad_()
    b = torch.randn(H, S, dtype=torch.float64, requires_grad=True)
    c = torch.randn(Cch, H, S, dtype=torch.float64, requires_grad=True)
    V, R, P = _power_rows(b, c, M, n)
    powers = [torch.linalg.matrix_power(M, j) for j in range(n)]
    assert rel_err(V, torch.stack([p @ b[..., None] for p in powers], 1)[..., 0]) < 1e-13
    assert rel_err(R, torch.stack([c[:, :, None] @ p for p in powers], 2).transpose(0, 1)[..., 0, :]) < 1e-13
    assert rel_err(P, torch.linalg.matrix_power(M, 2 ** ((n - 1).bit_length() - 1))) < 1e-13
    assert torch.autograd.gradcheck(lambda *a: _power_rows(*a, n), (b, c, M))
    # as a group of layers builds it (layers/stack_parts.py): mapped over a leading axis, values and gradients
    Ms, bs, cs = (torch.stack([t, 0.9 * t]).detach().requires_grad_() for t in (M, b, c))
    mapped = torch.func.vmap(lambda *a: _power_rows(*a, n))(bs, cs, Ms)
    for g, (Vg, Rg, Pg) in enumerate(zip(*mapped)):
        alone = _power_rows(bs[g], cs[g], Ms[g], n)
        assert all(rel_err(x, y) < 1e-13 for x, y in zip((Vg, Rg, Pg), alone))
    mapped_grads = torch.autograd.grad(sum(t.square().sum() for t in mapped), (Ms, bs, cs))
    looped = sum(x.square().sum() for g in range(2) for x in _power_rows(bs[g], cs[g], Ms[g], n))
    assert all(rel_err(a, b) < 1e-12 for a, b in zip(mapped_grads, torch.autograd.grad(looped, (Ms, bs, cs))))


def test_power_rows_backward_stays_float32_inside_autocast():
    """backward() called inside a bf16 autocast context (or a CUDA graph whose backward was captured there) gives the
    float32 gradients of the doubling chain, as outside: its products would otherwise run in bf16 (ops/
    float32_backward.py)."""
    torch.manual_seed(0)
    H, S, n = 3, 8, 33
    inputs = (torch.randn(H, S), torch.randn(2, H, S), 0.3 * torch.randn(H, S, S))

    def grads(inside: bool):
        b, c, M = (t.clone().requires_grad_() for t in inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            with torch.autocast("cpu", enabled=False):  # as the layers form their matrices (layers/conv.py)
                loss = sum(t.square().sum() for t in _power_rows(b, c, M, n))
            if inside:
                loss.backward()
        if not inside:
            loss.backward()
        return b.grad, c.grad, M.grad
    assert all(torch.equal(x, y) for x, y in zip(grads(True), grads(False)))


def test_delay_per_channel_equals_each_channel_alone():
    """delay=(False, True): the two halves of a bidirectional layer from one set of powers, each channel equal to its
    own system (dense and diagonal); a wrong number of flags is refused."""
    H, N2, T = 2, 3, 8
    Lambda, P, B, C, dt = random_stable(H, N2, Cch=3)
    A, Bf, _ = dplr_dense(Lambda, P, B, C)
    dA, dB = dense_discretize(A, Bf, dt, "bilinear")
    log_dA, W = (Lambda * dt[:, None]), C * B

    def make_dense(c, delay):
        return dense_chunks(real_form(dA), interleave(dB[:, :N2]), interleave(2 * c.conj()), T, delay)

    def make_diag(w, delay):
        return diagonal_chunks(log_dA, w, T, delay)
    for make, out in ((make_dense, C), (make_diag, W)):
        both = make(out, (False, True, False))
        for k, delay in enumerate((False, True, False)):
            alone, one = make(out[k:k + 1], delay), both.channels(slice(k, k + 1))
            for a, b in zip((one.Kt, one.Win, one.Wout, one.A), (alone.Kt, alone.Win, alone.Wout, alone.A)):
                assert rel_err(a, b) < 1e-13
        with pytest.raises(ValueError, match="delay: expected a bool or one per output channel"):
            make(out, (False, True))


def test_real_form_is_the_half_state_map():
    H, N2 = 2, 3
    dA = torch.randn(H, 2 * N2, 2 * N2, dtype=torch.complex128)
    x = torch.randn(H, N2, dtype=torch.complex128)
    top = torch.einsum("hij,hj->hi", dA, torch.cat([x, x.conj()], -1))[:, :N2]
    assert torch.allclose(torch.einsum("hij,hj->hi", real_form(dA), interleave(x)), interleave(top), atol=1e-13)


@pytest.mark.parametrize("complex_A", [False, True])
def test_chunk_scan_gradient(complex_A):
    H, B, n, D = 2, 3, 5, 4
    A = (0.5 * torch.randn(H, D // 2, dtype=torch.complex128) if complex_A
         else 0.5 * torch.randn(H, D, D, dtype=torch.float64)).requires_grad_()
    S = torch.randn(H, B, n, D, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(chunk_scan, (A, S))


def test_reverse_scan_is_the_adjoint():
    """<scan(A, S), G> = <S, reverse scan(Aᵀ, G)>: what the GPU backward relies on."""
    H, B, n, D = 2, 3, 6, 4
    A = torch.randn(H, D, D, dtype=torch.float64)
    S, G = torch.randn(2, H, B, n, D, dtype=torch.float64)
    lhs = (scan_reference(A, S) * G).sum()
    rhs = (S * scan_reference(A.transpose(-1, -2), G, reverse=True)).sum()
    assert torch.allclose(lhs, rhs, atol=1e-12)


def test_chunkconv_checks_shapes():
    log_dA, W = _diag_system()
    s = diagonal_chunks(log_dA, W, 4)
    with pytest.raises(ValueError, match="u: expected shape"):
        chunkconv(torch.randn(2, 2, 8, dtype=torch.float64), s.Kt, s.Win, s.Wout, s.A)
    with pytest.raises(ValueError, match="A: expected shape"):
        chunk_scan(torch.randn(3, 4, 4), torch.randn(3, 2, 5, 6))


@pytest.mark.parametrize("complex_A", [False, True])
# 17 rows: two batch blocks; D = 6: padded to 16; n = 5 and 11: whole groups of loads and a partial one
@pytest.mark.triton
@pytest.mark.parametrize("shape", [(2, 3, 5, 8), (3, 17, 4, 6), (2, 18, 11, 4)])
def test_triton_chunk_scan_matches_the_reference(complex_A, shape):
    """Values and gradients, float32, rel < 1e-5: on the GPU when there is one, else in Triton's CPU interpreter."""
    triton_scan = pytest.importorskip("ssmkit.ops.triton_chunk_scan")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, B, n, D = shape
    A = (0.5 * torch.randn(H, D // 2, dtype=torch.complex64) if complex_A else 0.3 * torch.randn(H, D, D)).to(device)
    S = torch.randn(H, B, n, D, device=device)
    G = torch.randn(H, B, n, D, device=device)
    A.requires_grad_(), S.requires_grad_()
    X = triton_scan.chunk_scan_triton(A, S)
    gA, gS = torch.autograd.grad((X * G).sum(), (A, S))
    X_ref = scan_reference(A, S)
    rA, rS = torch.autograd.grad((X_ref * G).sum(), (A, S))
    assert rel_err(X, X_ref) < 1e-5 and rel_err(gA, rA) < 1e-5 and rel_err(gS, rS) < 1e-5


@pytest.mark.triton
@pytest.mark.parametrize("complex_A", [False, True])
def test_triton_scan_reads_half_precision_increments(complex_A):
    """The chunked convolution under autocast keeps the increments S in bf16: the scan reads them as float32 and
    carries and writes float32 states, the scan of S.float() (forward and adjoint with ∂A)."""
    triton_scan = pytest.importorskip("ssmkit.ops.triton_chunk_scan")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, B, n, D = 2, 17, 5, 8
    A = (0.5 * torch.randn(H, D // 2, dtype=torch.complex64) if complex_A else 0.3 * torch.randn(H, D, D)).to(device)
    S = torch.randn(H, B, n, D, device=device).to(torch.bfloat16)
    X = triton_scan.scan_launch(A, S, reverse=False, adjoint=False)
    want = triton_scan.scan_launch(A, S.float(), reverse=False, adjoint=False)
    assert X.dtype == torch.float32 and rel_err(X, want) < 1e-6
    dS, dA = triton_scan.scan_launch(A, S, reverse=True, adjoint=True, forward_states=X)
    dS_want, dA_want = triton_scan.scan_launch(A, S.float(), reverse=True, adjoint=True, forward_states=X)
    assert dS.dtype == torch.float32 and rel_err(dS, dS_want) < 1e-6 and rel_err(dA, dA_want) < 1e-6
