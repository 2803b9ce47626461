"""ops.power_rows' Triton kernels (one program per channel for the whole doubling chain, forward and backward)
against the reference (ops/power_rows.py, itself tested against explicit powers in tests/ops/test_chunkconv.py): on
the GPU when there is one, else in Triton's CPU interpreter."""
import pytest
import torch

from ssmkit.ops.power_rows import power_rows_torch
from tests.conftest import rel_err

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _inputs(H, S, Cch, scale=0.3):
    return (torch.randn(H, S, device=DEVICE), torch.randn(Cch, H, S, device=DEVICE),
            scale * torch.randn(H, S, S, device=DEVICE) / S ** 0.5 + 0.9 * torch.eye(S, device=DEVICE))


@pytest.mark.triton
@pytest.mark.parametrize("H,S,T,Cch", [(3, 8, 8, 1), (2, 6, 4, 2), (2, 5, 1, 1), (2, 64, 64, 1), (2, 20, 32, 2)])
def test_triton_matches_the_reference_with_gradients(H, S, T, Cch):
    """Values (rows, last power) and the gradients of b, c and M against the float64 reference, rel < 1e-4 (float32's
    bound in these tests; on an H100 S = T = 64 reached 1.3e-5 through the 3xTF32 tiles, the interpreter < 1e-5): S = 64
    and T = 64 (S4's state and chunk), sizes that are no powers of two, one level (T = 1), two output channels."""
    tpr = pytest.importorskip("ssmkit.ops.triton_power_rows")
    leaves = [t.requires_grad_() for t in _inputs(H, S, Cch)]
    outs = tpr.power_rows_triton(*leaves, T + 1)
    cotangents = [torch.randn_like(o) for o in outs]
    grads = torch.autograd.grad(sum((o * g).sum() for o, g in zip(outs, cotangents)), leaves)
    ref = [t.detach().cpu().double().requires_grad_() for t in leaves]
    ref_outs = power_rows_torch(*ref, T + 1)
    ref_grads = torch.autograd.grad(sum((o * g.cpu().double()).sum() for o, g in zip(ref_outs, cotangents)), ref)
    for got, want in zip((*outs, *grads), (*ref_outs, *ref_grads)):
        assert got.shape == want.shape and rel_err(got.cpu().double(), want) < 1e-4


@pytest.mark.triton
def test_triton_gradients_of_some_outputs_alone():
    """Only the rows V used (R and the last power without gradient): the missing cotangents count as zeros."""
    tpr = pytest.importorskip("ssmkit.ops.triton_power_rows")
    leaves = [t.requires_grad_() for t in _inputs(2, 8, 1)]
    grads = torch.autograd.grad(tpr.power_rows_triton(*leaves, 17)[0].square().sum(), leaves)
    ref = [t.detach().cpu().double().requires_grad_() for t in leaves]
    refs = torch.autograd.grad(power_rows_torch(*ref, 17)[0].square().sum(), ref)
    assert rel_err(grads[0].cpu().double(), refs[0]) < 1e-5 and rel_err(grads[2].cpu().double(), refs[2]) < 1e-5
    assert grads[1].abs().max() == 0


@pytest.mark.triton
def test_triton_under_vmap_joins_the_mapped_axis_to_the_channels():
    """As a group of layers builds its chunk matrices (layers/stack_parts.py): mapped over a leading axis, values and
    gradients as each member alone."""
    tpr = pytest.importorskip("ssmkit.ops.triton_power_rows")
    stacked = [torch.stack([t, 0.9 * t]).requires_grad_() for t in _inputs(3, 8, 2)]
    mapped = torch.func.vmap(lambda *a: tpr.power_rows_triton(*a, 9))(*stacked)
    for g in range(2):
        alone = tpr.power_rows_triton(*(t[g] for t in stacked), 9)
        assert all(rel_err(x[g], y) < 1e-6 for x, y in zip(mapped, alone))
    grads = torch.autograd.grad(sum(t.square().sum() for t in mapped), stacked)
    looped = sum(x.square().sum() for g in range(2) for x in tpr.power_rows_triton(*(t[g] for t in stacked), 9))
    assert all(rel_err(a, b) < 1e-6 for a, b in zip(grads, torch.autograd.grad(looped, stacked)))


@pytest.mark.triton
def test_triton_takes_the_reference_where_it_does_not_apply():
    """Row counts whose T is no power of two, states past MAX_S and float64: the reference's values."""
    tpr = pytest.importorskip("ssmkit.ops.triton_power_rows")
    for (H, S, Cch), n, dtype in [((2, 8, 1), 12, torch.float32), ((1, tpr.MAX_S + 2, 1), 9, torch.float32),
                                  ((2, 8, 1), 9, torch.float64)]:
        args = [t.to(dtype) for t in _inputs(H, S, Cch)]
        assert all(torch.equal(x, y) for x, y in zip(tpr.power_rows_triton(*args, n), power_rows_torch(*args, n)))
