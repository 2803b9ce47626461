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
