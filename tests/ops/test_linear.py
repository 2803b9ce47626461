"""ops.column_sum (the reference and the Triton kernel, on the GPU when there is one, else in Triton's CPU interpreter)
and ops.linear, whose backward sums the bias gradient by it: values and all three gradients against F.linear in
float64, under autocast against autocast's own Linear, and F.linear itself wherever the op does not apply."""
import pytest
import torch
import torch.nn.functional as F

from ssmkit.layers import Linear
from ssmkit.ops import column_sum, linear
from ssmkit.ops.linear import _Linear
from tests.conftest import rel_err

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def test_column_sum_reference_and_bad_input():
    g = torch.randn(7, 3, dtype=torch.float64)
    assert column_sum(g).dtype == torch.float64 and rel_err(column_sum(g), g.sum(0)) < 1e-15
    h = g.bfloat16()
    assert column_sum(h).dtype == torch.float32 and rel_err(column_sum(h).double(), h.double().sum(0)) < 1e-6
    with pytest.raises(ValueError, match="g: expected a floating"):
        column_sum(torch.randn(2, 3, 4))


@pytest.mark.parametrize("M,N,dtype", [(5000, 64, torch.bfloat16), (4099, 96, torch.float32), (300, 256, torch.float16),
                                       (1, 3, torch.float32), (0, 5, torch.float32), (70000, 2, torch.bfloat16)])
def test_triton_column_sum(M, N, dtype):
    """The kernel at ragged rows and columns, a single row, no rows, and more row blocks than PROGRAM_ROWS: float32
    sums of the given values, to float32 rounding."""
    tcs = pytest.importorskip("ssmkit.ops.triton_column_sum")
    g = torch.randn(M, N, device=DEVICE).to(dtype)
    got = tcs.block_sums(g)
    want = g.double().sum(0)
    assert got.dtype == torch.float32 and got.shape == (N,)
    assert (got.cpu().double() - want.cpu()).abs().max() <= 1e-5 * (1 + g.double().abs().sum(0).max().item())


def test_triton_column_sum_of_a_strided_view():
    tcs = pytest.importorskip("ssmkit.ops.triton_column_sum")
    g = torch.randn(300, 40, device=DEVICE)
    assert rel_err(tcs.block_sums(g[::3, 5:20]).cpu().double(), g[::3, 5:20].cpu().double().sum(0)) < 1e-6


def test_triton_column_sum_routes():
    """The op takes the kernel from MIN_ROWS rows on (the same sums), PyTorch's sum below and for float64."""
    tcs = pytest.importorskip("ssmkit.ops.triton_column_sum")
    big = torch.randn(tcs.MIN_ROWS + 5, 3, device=DEVICE)
    assert torch.equal(tcs.column_sum_triton(big), tcs.block_sums(big))
    small = torch.randn(100, 3, device=DEVICE)
    assert torch.equal(tcs.column_sum_triton(small), small.sum(0))
    wide = small.double()
    assert tcs.column_sum_triton(wide).dtype == torch.float64


def test_function_matches_linear_in_float64():
    """_Linear (the op's autograd function, which a CPU never picks) against F.linear: values and ẋ, Ẇ, ḃ, for x with
    two leading axes."""
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    dy = torch.randn(3, 5, 6, dtype=torch.float64)
    y = _Linear.apply(x, w, b, torch.float64)
    got = torch.autograd.grad((y * dy).sum(), (x, w, b))
    y_ref = F.linear(x, w, b)
    want = torch.autograd.grad((y_ref * dy).sum(), (x, w, b))
    assert rel_err(y, y_ref) < 1e-14
    for g, r in zip(got, want):
        assert g.dtype == torch.float64 and rel_err(g, r) < 1e-14


def test_function_under_autocast_is_autocasts_linear():
    """Under bf16 autocast (the CPU's): the output and ẋ, Ẇ exactly autocast's F.linear's, in the same dtypes; ḃ
    summed in float32, so within bf16 rounding of autocast's (which rounds it to bf16 first)."""
    x = torch.randn(64, 16, requires_grad=True)
    w = torch.randn(24, 16, requires_grad=True)
    b = torch.randn(24, requires_grad=True)
    dy = torch.randn(64, 24).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = _Linear.apply(x, w, b, torch.bfloat16)
        y_ref = F.linear(x, w, b)
    got = torch.autograd.grad((y.float() * dy.float()).sum(), (x, w, b))
    want = torch.autograd.grad((y_ref.float() * dy.float()).sum(), (x, w, b))
    assert y.dtype == y_ref.dtype == torch.bfloat16 and torch.equal(y, y_ref)
    assert got[0].dtype == got[1].dtype == got[2].dtype == torch.float32
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    exact = dy.double().sum(0)
    assert rel_err(got[2].double(), exact) < 1e-6 and rel_err(want[2].double(), exact) < 1e-2


def test_linear_is_f_linear_where_the_op_does_not_apply():
    """On a CPU (the torch backend), without a bias or its gradient, the op returns F.linear's own result."""
    x, w, b = torch.randn(4, 8, requires_grad=True), torch.randn(3, 8), torch.randn(3, requires_grad=True)
    y = linear(x, w, b)
    assert y.grad_fn.name() == F.linear(x, w, b).grad_fn.name() and torch.equal(y, F.linear(x, w, b))
    assert torch.equal(linear(x, w), F.linear(x, w))


def test_linear_module_is_nn_linear():
    """ssmkit.layers.Linear: nn.Linear's parameters, initialization and state dict; its forward is ops.linear."""
    torch.manual_seed(3)
    ours = Linear(8, 5)
    torch.manual_seed(3)
    theirs = torch.nn.Linear(8, 5)
    assert isinstance(ours, torch.nn.Linear) and ours.state_dict().keys() == theirs.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    x = torch.randn(2, 8)
    assert torch.equal(ours(x), theirs(x))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("autocast", [False, True])
def test_linear_on_the_gpu_takes_the_function(autocast):
    """On CUDA with a bias gradient the op is _Linear: the output is F.linear's (the same addmm), ẋ and Ẇ to the
    compute dtype's rounding (cuBLAS may take other kernels for the transposed products), ḃ the float32 sum of ẏ."""
    x = torch.randn(2, 3000, 64, device="cuda", requires_grad=True)
    lin = torch.nn.Linear(64, 128).cuda()
    dy = torch.randn(2, 3000, 128, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        y = linear(x, lin.weight, lin.bias)
        y_ref = F.linear(x, lin.weight, lin.bias)
    assert y.grad_fn.name().endswith("_LinearBackward")
    got = torch.autograd.grad((y.float() * dy).sum(), (x, lin.weight, lin.bias))
    want = torch.autograd.grad((y_ref.float() * dy).sum(), (x, lin.weight, lin.bias))
    tol = 1e-2 if autocast else 1e-5
    assert torch.equal(y, y_ref) and rel_err(got[0], want[0]) < tol and rel_err(got[1], want[1]) < tol
    dy_c = dy.to(y.dtype).double()
    assert rel_err(got[2].double(), dy_c.sum((0, 1))) < 1e-5
