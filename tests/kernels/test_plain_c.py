"""S4's plain C = C̃_f (I − Ā^L)^{-1} from the roots of unity (kernels/dplr.py: dplr_c_from_ctilde) against the dense
powers and solve, in float64: values and gradients, with the torch Cauchy sums and with the Triton ones (on the GPU
when there is one, else through Triton's CPU interpreter)."""
import pytest
import torch

import ssmkit
import ssmkit.kernels.dplr as dplr
from conftest import random_stable, rel_err
from ssmkit.kernels.dplr import c_from_ctilde, dplr_c_from_ctilde, dplr_transition
from ssmkit.ops.cauchy import cauchy_torch


def _cauchy_impls():
    impls = [("torch", cauchy_torch)]
    try:
        from ssmkit.ops.triton_cauchy import cauchy_triton
    except ImportError:
        return impls
    return impls + [("triton", cauchy_triton)]


def _device(name):
    return "cuda" if name == "triton" and torch.cuda.is_available() else "cpu"


def _grads(out, inputs, g):
    return torch.autograd.grad(out, inputs, g)


@pytest.mark.parametrize("impl", _cauchy_impls(), ids=lambda i: i[0])
@pytest.mark.parametrize("L", [1, 2, 3, 16, 17, 100, 257])
@pytest.mark.parametrize("rank,Cch", [(1, 1), (2, 3)])
def test_roots_equal_the_dense_solve(impl, L, rank, Cch, monkeypatch):
    name, fn = impl
    monkeypatch.setattr(dplr, "cauchy", fn)
    dev = _device(name)
    torch.manual_seed(L)
    inputs = [t.to(dev).requires_grad_() for t in random_stable(3, 5, R=rank, Cch=Cch)]
    Lambda, P, _, C_tilde, dt = inputs
    leaves = (C_tilde, Lambda, P, dt)
    ref = c_from_ctilde(C_tilde, dplr_transition(Lambda, P, dt), L)
    out = dplr_c_from_ctilde(C_tilde, Lambda, P, dt, L)
    assert rel_err(out, ref) < 1e-9
    g = torch.randn_like(ref)
    for a, b in zip(_grads(out, leaves, g), _grads(ref, leaves, g)):
        assert rel_err(a, b) < 1e-7


@pytest.mark.parametrize("init", ["legs", "legt"])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 100.0])
def test_roots_equal_the_dense_solve_for_hippo_at_extreme_steps(init, scale):
    """HiPPO's spectrum at Δ from 1e-6 (I − Ā^L nearly 0) to 10 (Ā's modes near −1)."""
    k = ssmkit.kernels.DPLRKernel(4, 16, init=init).double()
    dt = torch.tensor([1e-3, 1e-2, 3e-2, 1e-1], dtype=torch.float64) * scale
    C_tilde = torch.randn(1, 4, 8, dtype=torch.complex128)
    Lambda, P = k.Lambda().detach(), k.cplx("P").detach()
    ref = c_from_ctilde(C_tilde, dplr_transition(Lambda, P, dt), 512)
    assert rel_err(dplr_c_from_ctilde(C_tilde, Lambda, P, dt, 512), ref) < 1e-8


def test_the_layer_takes_the_roots_where_the_cauchy_sums_run_in_triton(monkeypatch):
    """With Triton's Cauchy sums (forced here on the CPU through its interpreter), an S4 layer's recurrence and step
    are those of the dense solve."""
    impls = dict(_cauchy_impls())
    if "triton" not in impls:
        pytest.skip("triton is not installed")
    torch.manual_seed(0)
    layer = ssmkit.S4(d_model=3, d_state=8, l_max=64).double()
    dense = layer.kernel.recurrence()
    monkeypatch.setattr(dplr, "cauchy", impls["triton"])
    monkeypatch.setattr(dplr, "backend", lambda op, device: "triton")
    assert layer.kernel._roots(torch.device("cpu"))
    roots = layer.kernel.recurrence()
    assert rel_err(roots.C, dense.C) < 1e-10
    assert rel_err(roots.dA, dense.dA) < 1e-12
    monkeypatch.setattr(dplr, "ROOTS_MAX_WORK", 4 * 63)
    assert not layer.kernel._roots(torch.device("cpu"))
