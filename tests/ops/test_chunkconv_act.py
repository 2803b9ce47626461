"""chunkconv_act: the batch-first chunked convolution + activation; its Triton version equals the torch reference."""
import pytest
import torch

from ssmkit.dense import dense_discretize, dplr_dense
from ssmkit.kernels.chunked import dense_chunks, diagonal_chunks, interleave, real_form
from ssmkit.ops import ChunkPart, chunkconv, chunkconv_act, fftconv
from ssmkit.ops.chunkconv_act import activate, chunkconv_act_torch
from tests.conftest import random_stable, rel_err


def _part(system, D=None, reverse=False) -> ChunkPart:
    return system.part(D, reverse)


def _diag(H, N2, T, dtype, delay=False):
    Lambda, _, B, C, dt = random_stable(H, N2)
    return diagonal_chunks((Lambda * dt[:, None]).to(dtype), (C * B).to(dtype), T, delay)


def _dense(H, N2, T, dtype):
    Lambda, P, B, C, dt = random_stable(H, N2)
    A, Bf, _ = dplr_dense(Lambda, P, B, C)
    dA, dB = dense_discretize(A, Bf, dt, "bilinear")
    s = dense_chunks(real_form(dA), interleave(dB[:, :N2]), interleave(2 * C.conj()), T)
    return type(s)(*(t.to(dtype if not t.is_complex() else t.dtype) for t in (s.Kt, s.Win, s.Wout, s.A)))


def test_reference_is_the_fft_convolution_plus_activation():
    H, N2, T, L = 3, 4, 8, 29
    fwd, bwd = _diag(H, N2, T, torch.complex128), _diag(H, N2, T, torch.complex128, delay=True)
    D = torch.randn(1, H, dtype=torch.float64)
    u = torch.randn(2, L, H, dtype=torch.float64)
    y = chunkconv_act(u, [_part(fwd, D), _part(bwd, reverse=True)], "gelu")
    # each kernel as the chunked convolution's impulse response (that path is held to the FFT in test_chunkconv.py)
    impulse = torch.eye(1, L, dtype=torch.float64).expand(H, 1, L)
    k_fwd = chunkconv(impulse, fwd.Kt, fwd.Win, fwd.Wout, fwd.A)[:, 0, :, 0]
    k_bwd = chunkconv(impulse, bwd.Kt, bwd.Win, bwd.Wout, bwd.A)[:, 0, :, 0]
    x = u.transpose(1, 2)
    ref = fftconv(x, k_fwd[None]) + fftconv(x.flip(-1), k_bwd[None]).flip(-1) + D[..., None] * x[:, None]
    assert rel_err(y, activate(ref[:, 0].transpose(1, 2), "gelu")) < 1e-12


CASES = [
    ("diag", False, "gelu", 45, 4),
    ("diag", True, "silu", 64, 4),
    ("dense", False, "relu", 37, 4),
    ("dense", True, "id", 40, 4),
    ("dense", True, "gelu", 37, 40),  # 160 state columns side by side: three blocks of 64 in the kernels
    ("diag", True, "gelu", 40, 36),
]


@pytest.mark.triton
@pytest.mark.parametrize("kind,bidirectional,activation,L,N2", CASES)
def test_triton_chunkconv_act_matches_the_reference(kind, bidirectional, activation, L, N2):
    """float32 values and gradients, rel < 1e-5: on the GPU when there is one, else in Triton's CPU interpreter. A
    reversed part runs on the unreversed chunks with reversed matrices: the gradients of the chunk matrices are
    those of the reference, whose reversed parts cut the same chunks."""
    tc = pytest.importorskip("ssmkit.ops.triton_chunkconv")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, T, B = 2, 16, 3
    make = (lambda delay=False: _diag(H, N2, T, torch.complex64, delay)) if kind == "diag" else (
        lambda delay=False: _dense(H, N2, T, torch.float32))
    parts = [_part(make(), 0.5 * torch.randn(1, H))]
    if bidirectional:
        parts.append(_part(make(True) if kind == "diag" else make(), reverse=True))
    leaves = [t.detach().to(device).requires_grad_() for p in parts for t in (p.ToepT, p.Win, p.WoutT, p.A)]
    parts = [ChunkPart(*leaves[4 * k:4 * k + 4], reverse=p.reverse) for k, p in enumerate(parts)]
    u = torch.randn(B, L, 2 * H, device=device)[..., ::2].requires_grad_()  # a strided (non-contiguous) input
    g = torch.randn(B, L, H, device=device)
    y = tc.chunkconv_act_triton(u, parts, activation)
    grads = torch.autograd.grad((y * g).sum(), [u] + leaves)
    y_ref = chunkconv_act_torch(u, parts, activation)
    refs = torch.autograd.grad((y_ref * g).sum(), [u] + leaves)
    assert rel_err(y, y_ref) < 1e-5
    for got, want in zip(grads, refs):
        assert rel_err(got, want) < 1e-5


@pytest.mark.triton
def test_triton_chunkconv_act_backward_inside_autocast_stays_float32():
    """The float32-precision op's backward called inside a bf16 autocast context: the chunk matrices' gradients
    (cuBLAS products in float32) as outside it (ops/float32_backward.py)."""
    tc = pytest.importorskip("ssmkit.ops.triton_chunkconv")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, T, B, L = 2, 16, 2, 40
    part = _part(_dense(H, 3, T, torch.float32), 0.5 * torch.randn(1, H))
    u, g = torch.randn(B, L, H, device=device), torch.randn(B, L, H, device=device)

    def grads(inside: bool):
        leaves = [t.detach().to(device).requires_grad_() for t in (part.ToepT, part.Win, part.WoutT, part.A)]
        x = u.clone().requires_grad_()
        loss = (tc.chunkconv_act_triton(x, [ChunkPart(*leaves, reverse=False)], "gelu") * g).sum()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=inside):
            loss.backward()
        return [x.grad] + [t.grad for t in leaves]
    assert all(torch.equal(a, b) for a, b in zip(grads(True), grads(False)))


def test_activation_grad_is_the_derivative():
    from ssmkit.ops.chunkconv_act import activation_grad
    y = torch.linspace(-4, 4, 101, dtype=torch.float64, requires_grad=True)
    for name in ("gelu", "silu", "relu", "id"):
        (d,) = torch.autograd.grad(activate(y, name).sum(), y)
        assert torch.allclose(activation_grad(y.detach(), name), d, atol=1e-12), name


@pytest.mark.triton
@pytest.mark.parametrize("pad", [0, 5])
def test_triton_transposes_between_the_layouts(pad):
    tc = pytest.importorskip("ssmkit.ops.triton_chunkconv")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    u = torch.randn(3, 70, 2 * 67, device=device)[..., ::2]  # strided, H = 67 and L = 70: partial tiles
    x = tc.to_channel_major(u, pad)
    assert x.dtype == torch.float32 and torch.equal(x[..., pad:], u.permute(2, 0, 1)) and not x[..., :pad].any()
    back = tc.to_batch_first(x, pad, torch.float64)
    assert back.is_contiguous() and torch.equal(back, u.double())


@pytest.mark.triton
def test_triton_channel_major_float32_input_is_read_in_place():
    """A float32 (B, L, H) stored channel-major, without padding, is taken as it is (a view); padded or half or
    batch-first, it is copied."""
    tc = pytest.importorskip("ssmkit.ops.triton_chunkconv")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    storage = torch.randn(5, 3, 64, device=device)
    u = storage.permute(1, 2, 0)  # (B, L, H)
    assert tc.to_channel_major(u, 0).data_ptr() == storage.data_ptr()
    for other, pad in ((u, 4), (u.to(torch.bfloat16), 0), (u.contiguous(), 0)):
        x = tc.to_channel_major(other, pad)
        assert x.data_ptr() != storage.data_ptr() and torch.equal(x[..., pad:], other.permute(2, 0, 1).float())
    half = u.to(torch.bfloat16)  # kept channel-major: a reader that converts as it loads takes it as it is
    assert tc.to_channel_major(half, 0, any_dtype=True).data_ptr() == half.data_ptr()
    x = tc.to_channel_major(u.contiguous(), 3, dtype=torch.bfloat16)  # the forward's copy under autocast, rounded
    # to bf16 (to nearest on the GPU; Triton's CPU interpreter truncates: within one unit of bf16's last place)
    assert x.dtype == torch.bfloat16 and not x[..., :3].any()
    assert torch.allclose(x[..., 3:].float(), u.permute(2, 0, 1), rtol=2 ** -7, atol=0)


def _count_layout_copies(tc, monkeypatch) -> list[bool]:
    """A list that records, for each call of tc.to_channel_major, whether it copied (True) or handed its input
    through as a view (False)."""
    copies = []
    transposes = tc.to_channel_major

    def spy(x, pad, **options):
        out = transposes(x, pad, **options)
        copies.append(out.data_ptr() != x.data_ptr())
        return out
    monkeypatch.setattr(tc, "to_channel_major", spy)
    return copies

@pytest.mark.triton
@pytest.mark.parametrize("activation", ["gelu", "id"])
def test_triton_backward_reads_a_half_precision_channel_major_gradient(activation, monkeypatch):
    """Under autocast the output map's GEMM (PyTorch's matmul backward) hands back the gradient of the op's
    channel-major bf16 output channel-major, in bf16: the backward's gate reads it as it is (no pass to float32), and
    the gradients equal those of the same gradient given as float32 batch-first. Without a gate (activation 'id') it
    is converted first."""
    tc = pytest.importorskip("ssmkit.ops.triton_chunkconv")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, T, B, L = 4, 16, 2, 64
    p = _part(_diag(H, 4, T, torch.complex64), 0.5 * torch.randn(1, H))
    leaves = [t.detach().to(device).requires_grad_() for t in (p.ToepT, p.Win, p.WoutT, p.A)]
    u = torch.randn(B, L, H, device=device, requires_grad=True)
    grad = torch.randn(H, B, L, device=device).to(torch.bfloat16).permute(1, 2, 0)  # (B, L, H), channel-major
    copies = _count_layout_copies(tc, monkeypatch)
    y = tc.chunkconv_act_triton(u, [ChunkPart(*leaves)], activation, "float32", torch.bfloat16)
    got = torch.autograd.grad(y, [u, *leaves], grad)
    assert copies == [True, activation == "id"]
    y = tc.chunkconv_act_triton(u, [ChunkPart(*leaves)], activation, "float32", torch.bfloat16)
    want = torch.autograd.grad(y, [u, *leaves], grad.float().contiguous())
    for a, b in zip(got, want):
        assert rel_err(a, b) < 1e-6


@pytest.mark.triton
@pytest.mark.parametrize("activation", ["gelu", "id"])
def test_triton_convolution_then_glu_hand_the_gradient_over_channel_major(activation, monkeypatch):
    """The chunked convolution's output (channel-major) through the GLU output map's tiles, float32: the gradient the
    map hands back is channel-major, so the convolution's backward reads it without a transpose (one layout copy
    fewer each way), and the gradients are the reference chain's."""
    tc = pytest.importorskip("ssmkit.ops.triton_chunkconv")
    tl_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    from ssmkit.ops.linear_glu import linear_glu_torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, T, B, L = 4, 16, 2, 64
    p = _part(_diag(H, 4, T, torch.complex64), 0.5 * torch.randn(1, H))
    leaves = [t.detach().to(device).requires_grad_() for t in (p.ToepT, p.Win, p.WoutT, p.A)]
    part = ChunkPart(*leaves)
    u = torch.randn(B, L, H, device=device, requires_grad=True)
    weight = (torch.randn(2 * H, H, device=device) / H ** 0.5).requires_grad_()
    bias = torch.randn(2 * H, device=device).requires_grad_()
    g = torch.randn(B, L, H, device=device)
    copies = _count_layout_copies(tc, monkeypatch)
    y = tl_glu.linear_glu_triton(tc.chunkconv_act_triton(u, [part], activation), weight, bias)
    grads = torch.autograd.grad((y * g).sum(), [u, weight, bias, *leaves])
    y_ref = linear_glu_torch(chunkconv_act_torch(u, [part], activation), weight, bias)
    refs = torch.autograd.grad((y_ref * g).sum(), [u, weight, bias, *leaves])
    assert copies == [True, False]  # the input copied into channel-major; the gradient read as it came
    assert rel_err(y, y_ref) < 1e-5
    for got, want in zip(grads, refs):
        assert rel_err(got, want) < 1e-5


@pytest.mark.triton
@pytest.mark.parametrize("SR", [8, 80])  # one block of state columns, padded; two blocks
def test_triton_chunk_matrix_grads_are_the_three_products(SR, monkeypatch):
    """One pass over the rows, split over programs (M = 100: whole blocks of ROWS rows and part of one), equals
    the three products (3xTF32 here, to hold it to float32 accuracy; the CPU interpreter multiplies in float32)."""
    grads = pytest.importorskip("ssmkit.ops.triton_chunk_grads")
    monkeypatch.setattr(grads, "PROGRAMS_PER_SM", 16)  # several programs share each channel's rows
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, M, T = 2, 100, 16
    U, G = torch.randn(2, H, M, T, device=device)
    dS, X = torch.randn(2, H, M, SR, device=device)
    got = grads.chunk_matrix_grads(U, G, dS, X, "tf32x3")
    want = (U.transpose(1, 2) @ G, U.transpose(1, 2) @ dS, X.transpose(1, 2) @ G)
    for a, b in zip(got, want):
        assert a.shape == b.shape and rel_err(a, b) < 1e-5
    with pytest.raises(ValueError, match=r"dS must be contiguous .* in torch.float32, got"):
        grads.chunk_matrix_grads(U, G, dS[..., :4], X)
    Uh, Gh = U.to(torch.bfloat16), G.to(torch.bfloat16)  # the input copy and gated gradient kept in bf16 (autocast)
    half = grads.chunk_matrix_grads(Uh, Gh, dS, X, "tf32x3")
    Uf, Gf = Uh.float(), Gh.float()
    for a, b in zip(half, (Uf.transpose(1, 2) @ Gf, Uf.transpose(1, 2) @ dS, X.transpose(1, 2) @ Gf)):
        assert rel_err(a, b) < 1e-5
    with pytest.raises(ValueError, match=r"X must be contiguous .* in torch.float32, got"):
        grads.chunk_matrix_grads(U, G, dS, X.to(torch.bfloat16))


@pytest.mark.triton
def test_triton_chunkconv_act_in_tf32_is_close():
    """precision 'tf32': values and gradients within TF32's rounding of the float32 reference (on the GPU; the CPU
    interpreter multiplies in float32, so there it must agree as closely as float32)."""
    tc = pytest.importorskip("ssmkit.ops.triton_chunkconv")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, T, B, L = 4, 16, 3, 70
    parts = [_part(_diag(H, 4, T, torch.complex64, False), 0.5 * torch.randn(1, H)),
             _part(_diag(H, 4, T, torch.complex64, True), reverse=True)]
    leaves = [t.detach().to(device).requires_grad_() for p in parts for t in (p.ToepT, p.Win, p.WoutT, p.A)]
    parts = [ChunkPart(*leaves[4 * k:4 * k + 4], reverse=p.reverse) for k, p in enumerate(parts)]
    u = torch.randn(B, L, H, device=device, requires_grad=True)
    g = torch.randn(B, L, H, device=device)
    y = tc.chunkconv_act_triton(u, parts, "gelu", "tf32")
    grads = torch.autograd.grad((y * g).sum(), [u] + leaves)
    y_ref = chunkconv_act_torch(u, parts, "gelu")
    refs = torch.autograd.grad((y_ref * g).sum(), [u] + leaves)
    tol = 5e-3 if device == "cuda" else 1e-5
    assert rel_err(y, y_ref) < tol
    for got, want in zip(grads, refs):
        assert rel_err(got, want) < tol
    # written in the dtype a GEMM reads; act'(y) and the gated gradient then kept in it too (half the backward's bytes)
    y16 = tc.chunkconv_act_triton(u, parts, "gelu", "tf32", torch.bfloat16)
    node = y16.grad_fn
    while "ChunkConvAct" not in type(node).__name__:  # under the slice and permute of the output
        node = node.next_functions[0][0]
    # the channel-major input and act'(y) in bf16, the carried states X in float32
    assert [t.dtype for t in node.saved_tensors[:3]] == [torch.bfloat16, torch.bfloat16, torch.float32]
    grads16 = torch.autograd.grad((y16.float() * g).sum(), [u] + leaves)
    assert y16.dtype == torch.bfloat16 and rel_err(y16.float(), y_ref) < 1e-2
    # every gradient within bf16's rounding: 2e-3 to 5e-3 of float32 here (1e-3 to 2e-3 with the input copy, S, R,
    # act'(y) and Ġ kept in float32); A's, a sum with cancellation, 1.2e-2 for one seed (9e-3 in float32)
    for got, want in zip(grads16, refs):
        assert got.dtype == want.dtype and rel_err(got, want) < 2e-2
    assert node.increments == torch.bfloat16  # every part diagonal: S and R kept in bf16 too
    with pytest.raises(ValueError, match="precision: expected one of"):
        chunkconv_act(u, parts, "gelu", "bf16")


@pytest.mark.triton
def test_triton_dense_parts_keep_float32_increments():
    """Under autocast a part with a dense A keeps its chunks' state increments S and R in float32 (its scan is bound by
    latency, where converting them cost time on an H100), and the values stay within bf16's rounding."""
    tc = pytest.importorskip("ssmkit.ops.triton_chunkconv")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, T, B, L = 4, 16, 2, 50
    part = _part(_dense(H, 3, T, torch.float32), 0.5 * torch.randn(1, H))
    part = ChunkPart(*(t.to(device) for t in (part.ToepT, part.Win, part.WoutT, part.A)), reverse=False)
    u = torch.randn(B, L, H, device=device, requires_grad=True)
    y16 = tc.chunkconv_act_triton(u, [part], "gelu", "tf32", torch.bfloat16)
    assert rel_err(y16.float(), chunkconv_act_torch(u, [part], "gelu")) < 1e-2
    node = y16.grad_fn
    while "ChunkConvAct" not in type(node).__name__:
        node = node.next_functions[0][0]
    assert node.increments == torch.float32
