"""ops.column_sum (the reference and the Triton kernel, on the GPU when there is one, else in Triton's CPU interpreter)
and ops.linear, whose backward sums the bias gradient by it: its autograd function (taken on the CPU here by letting
the op treat the CPU as it treats CUDA) against F.linear in float64, first and second derivatives, under autocast
against autocast's own Linear, and F.linear itself wherever the op does not apply; layers/linear.py's forward_linear."""
import sys

import pytest
import torch
import torch.nn.functional as F

from ssmkit.layers.linear import forward_linear, sequential
from ssmkit.ops import column_sum, linear
from tests.conftest import rel_err

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
LINEAR = sys.modules["ssmkit.ops.linear"]  # the module (ssmkit.ops.linear is the function)


@pytest.fixture
def everywhere(monkeypatch):
    """The op takes its autograd function on this device too, with the reference sum."""
    monkeypatch.setattr(LINEAR, "DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(LINEAR, "backend", lambda op, device: "triton")


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
    """The op takes the kernel from MIN_ROWS rows on (the same sums); PyTorch's sum below, for float64, and where the
    sum is to be differentiated (the kernel is not)."""
    tcs = pytest.importorskip("ssmkit.ops.triton_column_sum")
    big = torch.randn(tcs.MIN_ROWS + 5, 3, device=DEVICE)
    assert torch.equal(tcs.column_sum_triton(big), tcs.block_sums(big))
    small = torch.randn(100, 3, device=DEVICE)
    assert torch.equal(tcs.column_sum_triton(small), small.sum(0))
    assert tcs.column_sum_triton(small.double()).dtype == torch.float64
    assert tcs.column_sum_triton(big.requires_grad_()).grad_fn is not None


def test_function_matches_linear_in_float64(everywhere):
    """Values, ẋ, Ẇ, ḃ of x with two leading axes; then a second derivative (a gradient penalty on ẋ) as F.linear's."""
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    dy = torch.randn(3, 5, 6, dtype=torch.float64)
    results = []
    for fn in (linear, F.linear):
        y = fn(x, w, b)
        grads = torch.autograd.grad((y * dy).sum(), (x, w, b), create_graph=True)
        second = torch.autograd.grad((y * dy).sum() + (grads[0] ** 2).sum() + (grads[1] ** 3).sum(), (x, w, b))
        results.append((y, *grads, *second))
    assert results[0][0].grad_fn.name() == "_LinearBackward"
    for got, want in zip(*results):
        assert got.dtype == torch.float64 and got.shape == want.shape and rel_err(got, want) < 1e-13


def test_function_under_autocast_is_autocasts_linear(everywhere):
    """Under bf16 autocast (the CPU's): the output and ẋ, Ẇ are autocast's F.linear's, in the same dtypes; ḃ in
    float32, the bf16 rounding of the same sum."""
    x = torch.randn(2, 64, 16, requires_grad=True)
    w = torch.randn(24, 16, requires_grad=True)
    b = torch.randn(24, requires_grad=True)
    dy = torch.randn(2, 64, 24).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = linear(x, w, b)
        y_ref = F.linear(x, w, b)
    got = torch.autograd.grad((y.float() * dy.float()).sum(), (x, w, b))
    want = torch.autograd.grad((y_ref.float() * dy.float()).sum(), (x, w, b))
    assert y.grad_fn.name() == "_LinearBackward"
    assert y.dtype == y_ref.dtype == torch.bfloat16 and torch.equal(y, y_ref)
    assert [g.dtype for g in got] == [g.dtype for g in want] == [torch.float32] * 3
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert rel_err(got[2], want[2]) < 1e-2 and rel_err(got[2].double(), dy.double().sum((0, 1))) < 1e-2


def test_output_takes_in_place_ops(everywhere):
    x, w = torch.randn(4, 3, 8, requires_grad=True), torch.randn(5, 8)
    b = torch.randn(5, requires_grad=True)
    y = linear(x, w, b)
    y += 1
    y.relu_().sum().backward()
    assert x.grad.shape == x.shape and b.grad.shape == b.shape


def test_linear_is_f_linear_where_the_op_does_not_apply(everywhere):
    """No bias or no gradient for it, empty K or N, 1-D x, mixed dtypes outside autocast (F.linear's own error), a
    float64 weight under autocast (likewise): F.linear's result or error; and everything on a device without the
    kernel (the CPU, by default)."""
    x, w, b = torch.randn(4, 8, requires_grad=True), torch.randn(3, 8), torch.randn(3, requires_grad=True)
    for args in [(x, w), (x, w, b.detach()), (x[:, :0], w[:, :0], b), (x, w[:0], b[:0]), (x[0], w, b)]:
        got, want = linear(*args), F.linear(*args)
        assert type(got.grad_fn) is type(want.grad_fn) and torch.equal(got, want)
    for wrong in [(x, w.double(), b.double())]:
        with pytest.raises(RuntimeError):
            F.linear(*wrong)
        with pytest.raises(RuntimeError):
            linear(*wrong)
        with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(RuntimeError):
            linear(*wrong)


def test_linear_on_a_device_without_the_kernel_is_f_linear():
    x, w, b = torch.randn(4, 8), torch.randn(3, 8, requires_grad=True), torch.randn(3, requires_grad=True)
    y = linear(x, w, b)
    assert y.grad_fn.name() != "_LinearBackward" and torch.equal(y, F.linear(x, w, b))


def test_forward_linear_takes_plain_linears_only(everywhere):
    """An nn.Linear (and a weight-normalized one) goes through ops.linear; a hooked one, a subclass with its own
    forward and other modules run as themselves (the hook fires)."""
    x = torch.randn(2, 8)
    plain = torch.nn.Linear(8, 4)
    normed = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(8, 4))
    for m in (plain, normed):
        y = forward_linear(m, x)
        assert y.grad_fn.name() == "_LinearBackward" and rel_err(y, m(x)) < 1e-6
    fired = []
    hooked = torch.nn.Linear(8, 4)
    hooked.register_forward_hook(lambda *_: fired.append(True))
    assert forward_linear(hooked, x).grad_fn.name() != "_LinearBackward" and fired

    class Scaled(torch.nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)
    scaled = Scaled(8, 4)
    assert torch.equal(forward_linear(scaled, x), scaled(x))
    net = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.GELU(), torch.nn.Linear(6, 3))
    assert rel_err(sequential(net, x), net(x)) < 1e-6


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("autocast", [False, True])
def test_linear_on_the_gpu(autocast):
    """On CUDA with a bias gradient, from MIN_ROWS rows on (the kernel's sum): the output is F.linear's (the same
    addmm), ẋ and Ẇ to the compute dtype's rounding, ḃ the sum of ẏ."""
    x = torch.randn(2, 40000, 64, device="cuda", requires_grad=True)
    lin = torch.nn.Linear(64, 128).cuda()
    dy = torch.randn(2, 40000, 128, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        y = forward_linear(lin, x)
        y_ref = F.linear(x, lin.weight, lin.bias)
    assert y.grad_fn.name() == "_LinearBackward"
    got = torch.autograd.grad((y.float() * dy).sum(), (x, lin.weight, lin.bias))
    want = torch.autograd.grad((y_ref.float() * dy).sum(), (x, lin.weight, lin.bias))
    tol = 1e-2 if autocast else 1e-5
    assert torch.equal(y, y_ref)
    for g, r in zip(got, want):
        assert g.dtype == r.dtype and rel_err(g, r) < tol
    assert rel_err(got[2].double(), dy.to(y.dtype).double().sum((0, 1))) < tol
