"""ops.linear_glu: GLU(x Wᵀ + b) in one op equals nn.Linear + nn.GLU; the Triton version equals the reference."""
import pytest
import torch
from torch import nn

from ssmkit.ops import linear_glu
from tests.conftest import rel_err


def test_reference_equals_linear_then_glu():
    module = nn.Sequential(nn.Linear(7, 10), nn.GLU(dim=-1)).double()
    x = torch.randn(2, 3, 7, dtype=torch.float64)
    assert rel_err(linear_glu(x, module[0].weight, module[0].bias), module(x)) < 1e-15


@pytest.mark.triton
@pytest.mark.parametrize("B,K,H", [(1, 256, 256), (19, 70, 33), (2, 300, 16)])  # ragged K and H; K over one tile
def test_triton_matches_the_reference(B, K, H):
    """float32, rel < 1e-6: on the GPU when there is one, else in Triton's CPU interpreter."""
    triton_linear_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(B, K, device=device)[:, :K]
    weight, bias = torch.randn(2 * H, K, device=device) / K ** 0.5, torch.randn(2 * H, device=device)
    y = triton_linear_glu.linear_glu_triton(x, weight, bias)
    assert y.shape == (B, H) and rel_err(y, linear_glu(x.cpu().double(), weight.cpu().double(),
                                                       bias.cpu().double()).to(device).float()) < 1e-6


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="x, weight, bias"):
        linear_glu(torch.randn(2, 4), torch.randn(5, 4), torch.randn(5))


@pytest.mark.triton
@pytest.mark.parametrize("M,K,H", [(300, 70, 33), (129, 64, 64), (40, 300, 16)])  # ragged tiles; K over 2 tiles
def test_triton_tiles_match_the_reference_with_gradients(M, K, H):
    """The tiles (autograd, or more than STEP_ROWS rows): values and the gradients of x, W and bias against float64,
    rel < 1e-5 (3xTF32 on the GPU; float32 in the CPU interpreter)."""
    tl_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(M, 2 * K, device=device)[:, ::2].requires_grad_()  # a row stride other than K
    weight = (torch.randn(2 * H, K, device=device) / K ** 0.5).requires_grad_()
    bias = torch.randn(2 * H, device=device).requires_grad_()
    dy = torch.randn(M, H, device=device)
    y = tl_glu.linear_glu_triton(x, weight, bias)
    grads = torch.autograd.grad((y * dy).sum(), (x, weight, bias))
    ref = [t.detach().cpu().double().requires_grad_() for t in (x, weight, bias)]
    y_ref = linear_glu(*ref)
    refs = torch.autograd.grad((y_ref * dy.cpu().double()).sum(), ref)
    assert y.dtype == torch.float32 and rel_err(y.cpu().double(), y_ref) < 1e-5
    for got, want in zip(grads, refs):
        assert got.shape == want.shape and rel_err(got.cpu().double(), want) < 1e-5
    with torch.no_grad():  # without autograd: the tiles without Z (M = 300), or the step kernel (a step's batch)
        assert rel_err(tl_glu.linear_glu_triton(x, weight, bias).cpu().double(), y_ref) < 1e-5


@pytest.mark.triton
def test_triton_tiles_read_a_column_major_x_and_give_its_gradient_in_that_layout():
    """x (B, L, K) stored channel-major (the chunked convolution's output): no copy in, values and gradients as the
    reference, and Ẋ channel-major too, so that the convolution's backward reads it without a transpose."""
    tl_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    K, H = 24, 8
    x = torch.randn(K, 3, 100, device=device).permute(1, 2, 0).requires_grad_()  # (B, L, K) over (K, B, L) storage
    weight = (torch.randn(2 * H, K, device=device) / K ** 0.5).requires_grad_()
    bias = torch.randn(2 * H, device=device).requires_grad_()
    dy = torch.randn(3, 100, H, device=device)
    y = tl_glu.linear_glu_triton(x, weight, bias)
    grads = torch.autograd.grad((y * dy).sum(), (x, weight, bias))
    ref = [t.detach().cpu().double().requires_grad_() for t in (x, weight, bias)]
    refs = torch.autograd.grad((linear_glu(*ref) * dy.cpu().double()).sum(), ref)
    assert rel_err(y.cpu().double(), linear_glu(*ref)) < 1e-5
    for got, want in zip(grads, refs):
        assert rel_err(got.cpu().double(), want) < 1e-5
    assert grads[0].permute(2, 0, 1).is_contiguous()


@pytest.mark.triton
def test_triton_tiles_backward_inside_autocast_stays_float32():
    """A float32 forward, then backward() called inside a bf16 autocast context: the tiles' backward products stay
    float32 (ops/float32_backward.py), the same gradients as outside it."""
    tl_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(130, 40, device=device)
    weight, bias = torch.randn(32, 40, device=device) / 40 ** 0.5, torch.randn(32, device=device)

    def grads(inside: bool):
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        loss = tl_glu.linear_glu_triton(*leaves).square().sum()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=inside):
            loss.backward()
        return [t.grad for t in leaves]
    assert all(torch.equal(a, b) for a, b in zip(grads(True), grads(False)))


@pytest.mark.triton
def test_triton_under_autocast_is_the_reference():
    """Under autocast the forward is nn.Linear + nn.GLU's (cuBLAS in the autocast dtype was faster than the tiles
    there): the same values in the same dtype."""
    tl_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module = nn.Sequential(nn.Linear(48, 64), nn.GLU(dim=-1)).to(device)
    x = torch.randn(70, 48, device=device)
    with torch.autocast(device, dtype=torch.bfloat16):
        y = tl_glu.linear_glu_triton(x, module[0].weight, module[0].bias)
        assert y.dtype == torch.bfloat16 and torch.equal(y, module(x))


@pytest.mark.triton
def test_triton_tiles_refuse_a_second_derivative_and_empty_inputs_take_the_reference():
    """The tiles' backward reads the saved Z, which has no graph: a second derivative raises rather than being wrong.
    K = 0 gives GLU(bias), as the reference."""
    tl_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(300, 8, device=device, requires_grad=True)
    weight, bias = torch.randn(6, 8, device=device, requires_grad=True), torch.randn(6, device=device)
    (gx,) = torch.autograd.grad(tl_glu.linear_glu_triton(x, weight, bias).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):  # (no graph to differentiate, or once_differentiable's error)
        torch.autograd.grad(gx.sum(), weight)
    empty = tl_glu.linear_glu_triton(torch.randn(4, 0, device=device), torch.randn(6, 0, device=device), bias)
    assert torch.equal(empty, linear_glu(torch.randn(4, 0, device=device), torch.randn(6, 0, device=device), bias))


@pytest.mark.triton
@pytest.mark.parametrize("column_major", [False, True])
def test_triton_training_under_autocast_has_the_references_gradients(column_major, monkeypatch):
    """Training under bf16 autocast (the fused GLU backward with the bias sum, then cuBLAS's products): values and
    the gradients of x, W and bias within bf16's rounding of float64 (rel < 1e-2), as the reference's are, in the
    leaves' dtypes, and Ẋ in x's layout (a channel-major x gets a channel-major Ẋ, as the float32 tiles give it)."""
    tl_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    monkeypatch.setattr(tl_glu, "AUTOCAST_ROWS", 256)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    M, K, H = 300, 40, 33  # several row blocks, ragged output blocks
    x = torch.randn(K, M, device=device).t() if column_major else torch.randn(M, K, device=device)
    x.requires_grad_()
    weight = (torch.randn(2 * H, K, device=device) / K ** 0.5).requires_grad_()
    bias = torch.randn(2 * H, device=device).requires_grad_()
    dy = torch.randn(M, H, device=device)
    ref = [t.detach().cpu().double().requires_grad_() for t in (x, weight, bias)]
    y_ref = linear_glu(*ref)
    refs = torch.autograd.grad((y_ref * dy.cpu().double()).sum(), ref)
    for fn in (tl_glu.linear_glu_triton, linear_glu):  # ours, and the reference under the same autocast
        with torch.autocast(device, dtype=torch.bfloat16):
            y = fn(x, weight, bias)
            grads = torch.autograd.grad((y.float() * dy).sum(), (x, weight, bias))
        assert y.dtype == torch.bfloat16 and rel_err(y.cpu().double(), y_ref) < 1e-2
        for got, want in zip(grads, refs):
            assert got.dtype == torch.float32 and rel_err(got.cpu().double(), want) < 1e-2
    with torch.autocast(device, dtype=torch.bfloat16):
        y = tl_glu.linear_glu_triton(x, weight, bias)
        assert "_AutocastLinearGLU" in type(y.grad_fn).__name__  # (rows given as rows: no reshape node)
        dx = torch.autograd.grad(y.sum(), x)[0]
        fewer = tl_glu.linear_glu_triton(x[:255], weight, bias)  # below AUTOCAST_ROWS: the reference
        assert "_AutocastLinearGLU" not in type(fewer.grad_fn).__name__
    assert dx.t().is_contiguous() == column_major


@pytest.mark.triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_glu_forward_is_pytorchs_glu(dtype):
    """The autocast forward's GLU pass: F.glu's values over ragged row and output blocks, to float32's rounding, and
    in bf16 to within one unit of its last place (both take σ in float32; Triton's CPU interpreter truncates to bf16)."""
    tl_glu = pytest.importorskip("ssmkit.ops.triton_linear_glu")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    z = (3 * torch.randn(130, 2 * 70, device=device)).to(dtype)
    y, want = tl_glu._glu_forward(z), torch.nn.functional.glu(z, dim=-1)
    assert y.dtype == dtype and y.shape == want.shape
    rtol = 1e-6 if dtype == torch.float32 else 2 ** -7
    assert torch.allclose(y.float(), want.float(), rtol=rtol, atol=1e-6)
