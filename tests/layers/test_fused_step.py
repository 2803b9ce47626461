"""The fused recurrent step (ops.ssm_step, what SSMConv.step takes on CUDA) equals the layer's plain step."""
import pytest
import torch

import ssmkit
from ssmkit.ops.step import ssm_step, ssm_step_torch
from tests.conftest import rel_err

LAYERS = [("s4", dict(l_max=32)), ("s4", dict(init="legt")), ("s4d", dict(init="lin")), ("s4d", dict(disc="bilinear")),
          ("dss", dict(variant="exp")), ("dlr", dict()), ("ema", dict(ndim=4))]


@pytest.mark.parametrize("name,options", LAYERS)
def test_fused_step_equals_the_plain_step(name, options):
    size = {} if name == "ema" else {"d_state": 8}
    layer = ssmkit.layer(name, d_model=5, **size, **options).eval()
    u = torch.randn(3, 6, 5)
    state_plain = state_fused = layer.default_state(3)
    with torch.no_grad():
        for t in range(6):
            y_plain, state_plain = layer.step(u[:, t], state_plain)
            y_fused, state_fused = layer._step_fused(u[:, t], state_fused, 1.0)
            assert rel_err(y_fused, y_plain) < 1e-5 and rel_err(state_fused, state_plain) < 1e-5


@pytest.mark.triton
@pytest.mark.parametrize("activation", ["gelu", "silu", "relu", "id"])
@pytest.mark.parametrize("B", [1, 3, 19])  # the row form (one row; rows of 2, one ragged); the tile form (ragged)
@pytest.mark.parametrize("form", ["dense", "diagonal"])
def test_triton_step_matches_the_reference(activation, B, form):
    """float32, rel < 1e-6: on the GPU when there is one, else in Triton's CPU interpreter."""
    triton_step = pytest.importorskip("ssmkit.ops.triton_step")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    H, S = 3, 6  # S padded to 16 inside the kernel
    shape = (H, S, S) if form == "dense" else (H, S)
    z, M = torch.randn(B, H, S, device=device), 0.3 * torch.randn(*shape, device=device)
    u, b, c, D = (torch.randn(*shape, device=device) for shape in [(B, H), (H, S), (H, S), (H,)])
    y, z2 = triton_step.ssm_step_triton(z, u, M, b, c, D, activation)
    y_ref, z_ref = ssm_step_torch(z, u, M, b, c, D, activation)
    assert rel_err(y, y_ref) < 1e-6 and rel_err(z2, z_ref) < 1e-6


def test_the_diagonal_form_is_the_block_diagonal_dense_form():
    """M (H, S) of interleaved pairs (Re a, Im a) acts as the real 2x2 blocks [[Re a, −Im a], [Im a, Re a]]."""
    H, S, B = 4, 8, 3
    a, z, u = torch.randn(H, S, dtype=torch.float64), torch.randn(B, H, S, dtype=torch.float64), torch.randn(B, H)
    re, im = a[:, 0::2], a[:, 1::2]
    blocks = torch.stack([torch.stack([re, -im], -1), torch.stack([im, re], -1)], -2)  # (H, S/2, 2, 2)
    M = torch.block_diag(*[torch.block_diag(*blocks[h]) for h in range(H)]).reshape(H, S, H, S)
    M = torch.stack([M[h, :, h] for h in range(H)])
    b, c, D = torch.randn(H, S, dtype=torch.float64), torch.randn(H, S, dtype=torch.float64), torch.randn(H)
    y, z2 = ssm_step_torch(z, u.double(), a, b, c, D.double(), "gelu")
    y_ref, z_ref = ssm_step_torch(z, u.double(), M, b, c, D.double(), "gelu")
    assert rel_err(y, y_ref) < 1e-14 and rel_err(z2, z_ref) < 1e-14
    with pytest.raises(ValueError, match=r"M: expected \(H=4, S=8, S\) or a diagonal"):
        ssm_step(z, u.double(), a[:, :-1], b, c, D.double())


def test_step_in_place_writes_the_given_state():
    layer = ssmkit.layer("s4d", d_model=5, d_state=8).eval()
    u, state = torch.randn(2, 5), layer.default_state(2) + 0.5j
    with torch.no_grad():
        _, expected = layer._step_fused(u, state.clone(), 1.0)
        layer.step_in_place = True
        y, new = layer._step_fused(u, state, 1.0)
    assert new.data_ptr() == state.data_ptr() and torch.equal(new, expected)
