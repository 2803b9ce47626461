import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖."""
    return ((a - b).norm() / b.norm()).item()


def random_stable(H: int, N2: int, R: int = 1, Cch: int = 1, dtype=torch.complex128):
    """Random DPLR/diagonal parameters with Re λ < 0 and a small low-rank part."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    Lambda = torch.complex(-torch.rand(H, N2, dtype=real) - 0.05, 4 * torch.randn(H, N2, dtype=real))
    P = 0.5 * torch.randn(R, H, N2, dtype=dtype)
    B = torch.randn(H, N2, dtype=dtype)
    C = torch.randn(Cch, H, N2, dtype=dtype)
    dt = torch.exp(torch.empty(H, dtype=real).uniform_(-5, -1))
    return Lambda, P, B, C, dt
