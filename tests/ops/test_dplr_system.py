"""dplr_system's Triton kernels (S4's bilinear Ā in real form and B̄, one program per channel, forward and backward)
against the reference (kernels/dplr.py dplr_system_torch, itself checked against the dense Ā by the layer tests): on
the GPU when there is one, else in Triton's CPU interpreter."""
import pytest
import torch

import ssmkit
from ssmkit.kernels.dplr import dplr_system, dplr_system_torch, dplr_transition, widen
from ssmkit.kernels.chunked import real_form
from tests.conftest import rel_err

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _inputs(H, d_state, dt_scale=1.0, seed=0):
    """(Lambda, P, B, dt) of an S4 layer's HiPPO-LegS init (complex64, float32), dt scaled by dt_scale."""
    torch.manual_seed(seed)
    k = ssmkit.S4(d_model=H, d_state=d_state, l_max=64).kernel
    with torch.no_grad():
        P, _ = k.low_rank()
        return [t.detach().to(DEVICE) for t in (k.Lambda(), P, k.cplx("B"), k.dt() * dt_scale)]


def _flat(t: torch.Tensor) -> torch.Tensor:
    return (torch.view_as_real(t) if t.is_complex() else t).double().cpu()


def _loss(outs, cotangents):
    return sum((_flat(o).to(c.device) * c).sum() if o.device == c.device else (_flat(o) * c).sum()
               for o, c in zip(outs, cotangents) if c is not None)


@pytest.mark.triton
@pytest.mark.parametrize("H,d_state,dt_scale", [(3, 64, 1.0), (2, 10, 1.0), (4, 6, 300.0), (2, 2, 1e-3), (1, 33, 5.0)])
def test_triton_matches_the_reference_with_gradients(H, d_state, dt_scale):
    """M (float64 and float32), B̄ and the gradients of Λ, P, B and Δ against the float64 reference, rel < 1e-6 for
    M in float64 and < 1e-5 for the rest (float32 outputs and gradients): S4's N = 64, sizes that are no powers of
    two, an odd d_state (a dropped real mode), Δ far above and below the init's range."""
    tds = pytest.importorskip("ssmkit.ops.triton_dplr_system")
    leaves = [t.clone().requires_grad_() for t in _inputs(H, d_state, dt_scale)]
    outs = tds.dplr_system_triton(*leaves)
    cotangents = [torch.randn_like(_flat(o)) for o in outs]
    grads = torch.autograd.grad(_loss(outs, cotangents), leaves)
    ref = [t.detach().cpu().requires_grad_() for t in widen(*leaves)]
    ref_outs = dplr_system_torch(*ref)
    ref_grads = torch.autograd.grad(_loss(ref_outs, cotangents), ref)
    assert rel_err(_flat(outs[0]), _flat(ref_outs[0])) < 1e-6
    for got, want in zip((*outs[1:], *grads), (*ref_outs[1:], *ref_grads)):
        assert got.shape == want.shape and rel_err(_flat(got), _flat(want)) < 1e-5


@pytest.mark.triton
def test_triton_system_is_the_dense_bilinear_transition():
    """M is the real form of the dense Ā = (I − Δ/2·A)^{-1}(I + Δ/2·A) (dplr_transition, an N × N complex matrix)."""
    tds = pytest.importorskip("ssmkit.ops.triton_dplr_system")
    Lambda, P, B, dt = _inputs(2, 16)
    M = tds.dplr_system_triton(Lambda, P, B, dt)[0].cpu()
    assert rel_err(M, real_form(dplr_transition(*widen(Lambda.cpu(), P.cpu(), dt.cpu())))) < 1e-12


@pytest.mark.triton
@pytest.mark.parametrize("used", [(1,), (2,), (0, 2)])
def test_triton_gradients_of_some_outputs_alone(used):
    """Cotangents for some outputs only (the float32 M alone, B̄ alone, the float64 M and B̄): the others count as
    zeros, as in the reference."""
    tds = pytest.importorskip("ssmkit.ops.triton_dplr_system")
    leaves = [t.clone().requires_grad_() for t in _inputs(2, 12)]
    outs = tds.dplr_system_triton(*leaves)
    cotangents = [torch.randn_like(_flat(o)) if j in used else None for j, o in enumerate(outs)]
    grads = torch.autograd.grad(_loss(outs, cotangents), leaves)
    ref = [t.detach().cpu().requires_grad_() for t in widen(*leaves)]
    ref_grads = torch.autograd.grad(_loss(dplr_system_torch(*ref), cotangents), ref, materialize_grads=True)
    assert all(rel_err(_flat(a), _flat(b)) < 1e-5 if b.abs().max() > 0 else a.abs().max() == 0
               for a, b in zip(grads, ref_grads))


@pytest.mark.triton
def test_triton_under_vmap_joins_the_mapped_axis_to_the_channels():
    """As a group of layers builds its chunk matrices (layers/stack_parts.py): mapped over a leading axis, values and
    gradients as each member alone."""
    tds = pytest.importorskip("ssmkit.ops.triton_dplr_system")
    one, two = _inputs(3, 8, seed=0), _inputs(3, 8, 2.0, seed=1)
    stacked = [torch.stack([a, b]).requires_grad_() for a, b in zip(one, two)]
    mapped = torch.func.vmap(tds.dplr_system_triton)(*stacked)
    for g in range(2):
        alone = tds.dplr_system_triton(*(t[g] for t in stacked))
        assert all(rel_err(_flat(x[g]), _flat(y)) < 1e-7 for x, y in zip(mapped, alone))
    grads = torch.autograd.grad(sum(_flat(t).square().sum() for t in mapped), stacked)
    looped = sum(_flat(x).square().sum() for g in range(2) for x in tds.dplr_system_triton(*(t[g] for t in stacked)))
    assert all(rel_err(_flat(a), _flat(b)) < 1e-6 for a, b in zip(grads, torch.autograd.grad(looped, stacked)))


@pytest.mark.triton
def test_triton_takes_the_reference_where_it_does_not_apply():
    """Rank 2, Q apart from P, complex128: the reference's values, bit for bit."""
    tds = pytest.importorskip("ssmkit.ops.triton_dplr_system")
    Lambda, P, B, dt = _inputs(2, 8)
    cases = [(Lambda, torch.cat([P, 0.5 * P]), B, dt, None), (Lambda, P, B, dt, 0.7 * P),
             (*widen(Lambda, P, B, dt), None)]
    for args in cases:
        assert all(torch.equal(x, y) for x, y in zip(tds.dplr_system_triton(*args), dplr_system_torch(*args)))


def test_dplr_system_rounds_the_float64_system_once():
    """The dispatcher's outputs: M in float64, the same M rounded to dt's dtype, B̄ in Lambda's (on a CPU, the
    reference)."""
    Lambda, P, B, dt = (t.cpu() for t in _inputs(2, 8))
    M_wide, M, dB = dplr_system(Lambda, P, B, dt)
    assert M_wide.dtype == torch.float64 and M.dtype == torch.float32 and dB.dtype == torch.complex64
    assert torch.equal(M, M_wide.float())
