import pytest
import torch

from ssmkit.ops import fftconv


def _direct(u, k, k_rev=None):
    """y[b,c,h,t] = Σ_j k[c,h,j] u[b,h,t−j] + Σ_j k_rev[c,h,j] u[b,h,t+1+j], by loops."""
    B, H, L = u.shape
    C = k.shape[0]
    y = torch.zeros(B, C, H, L, dtype=u.dtype)
    for t in range(L):
        for j in range(t + 1):
            y[..., t] += k[None, :, :, j] * u[:, None, :, t - j]
        if k_rev is not None:
            for j in range(L - 1 - t):
                y[..., t] += k_rev[None, :, :, j] * u[:, None, :, t + 1 + j]
    return y


@pytest.mark.parametrize("L", [1, 2, 7, 16])
@pytest.mark.parametrize("two_sided", [False, True])
def test_fftconv_is_a_linear_not_circular_convolution(L, two_sided):
    u = torch.randn(2, 3, L, dtype=torch.float64)
    k = torch.randn(2, 3, L, dtype=torch.float64)
    k_rev = torch.randn(2, 3, L, dtype=torch.float64) if two_sided else None
    assert torch.allclose(fftconv(u, k, k_rev), _direct(u, k, k_rev), atol=1e-12)


def test_fftconv_checks_shapes():
    with pytest.raises(ValueError, match="u: expected shape"):
        fftconv(torch.randn(3, 4), torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match="k: expected shape"):
        fftconv(torch.randn(2, 3, 4), torch.randn(1, 3, 5))


@pytest.mark.parametrize("L", [1, 2, 7, 16])
@pytest.mark.parametrize("two_sided", [False, True])
def test_fftconv_gradients(L, two_sided):
    """The written-out backward (correlations by real FFTs) against gradcheck, for u, k and k_rev, C = 2 channels."""
    u = torch.randn(2, 3, L, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, L, dtype=torch.float64, requires_grad=True)
    k_rev = torch.randn(2, 3, L, dtype=torch.float64, requires_grad=True) if two_sided else None
    assert torch.autograd.gradcheck(fftconv, (u, k, k_rev))


def test_fftconv_gradient_of_one_input_only():
    u = torch.randn(2, 3, 9, dtype=torch.float64, requires_grad=True)
    k, k_rev = torch.randn(1, 3, 9, dtype=torch.float64), torch.randn(1, 3, 9, dtype=torch.float64)
    y = fftconv(u, k, k_rev)
    (gu,) = torch.autograd.grad(y.sum(), u)
    assert torch.allclose(gu, torch.autograd.grad(_direct(u, k, k_rev).sum(), u)[0], atol=1e-12)
