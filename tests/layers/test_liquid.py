"""Liquid-S4: the liquid terms against a naive float64 sum over input products; three views; options."""
import pytest
import torch

from conftest import rel_err, three_views
import ssmkit
from ssmkit import functional as F


def _naive_liquid(layer, u, order, mode):
    """Σ_p Σ_{j<=k} K^(p)_j U^(p)_{k−j} with K^(p)_j = C_f Ā^j (B̄^p)_f by dense matrices, U^(p) by loops."""
    k = layer.kernel
    A, _, Cf = F.dplr_dense(k.Lambda(), k.cplx("P"), k.cplx("B"), k.plain_C())
    dA, _ = F.dense_discretize(A, torch.zeros(A.shape[:2], dtype=A.dtype), k.dt(), "bilinear")
    dB = k.discrete_B()
    x = u[0].T  # (H, L)
    H, L = x.shape
    y = torch.zeros(1, H, L, dtype=torch.float64)  # channel 0
    for p in range(2, order + 1):
        U = torch.zeros(H, L, dtype=torch.float64)
        for t in range(L):
            U[:, t] = torch.prod(torch.stack([x[:, t - i] if t - i >= 0 else torch.zeros(H) for i in range(p)]), 0)
        b = torch.cat([dB ** p, (dB ** p).conj()], -1)
        Kp = F.dense_kernel(dA, b, Cf, L).real[0]  # (H, L)
        if mode == "pb":
            Kp = torch.cat([Kp[:, :1], torch.zeros(H, L - 1, dtype=torch.float64)], 1)
        for t in range(L):
            y[0, :, t] += sum(Kp[:, j] * U[:, t - j] for j in range(t + 1))
    return y


@pytest.mark.parametrize("mode", ["kb", "pb"])
@pytest.mark.parametrize("order", [2, 3, 4])
def test_liquid_terms_equal_a_naive_sum_over_input_products(mode, order):
    layer = ssmkit.LiquidS4(2, 8, liquid_order=order, liquid_kernel=mode, activation="id", output="none").double()
    plain = ssmkit.S4(2, 8, activation="id", output="none").double()
    plain.load_state_dict(layer.state_dict())
    u = torch.randn(1, 12, 2, dtype=torch.float64)
    liquid_part = (layer(u)[0] - plain(u)[0]).transpose(1, 2)  # (1, H, L)
    assert rel_err(liquid_part, _naive_liquid(layer, u, order, mode)) < 1e-9


@pytest.mark.parametrize("options", [{}, {"liquid_order": 3, "l_max": 64},
                                     {"liquid_kernel": "pb", "liquid_order": 4},
                                     {"liquid_order": 3, "init": "legt", "channels": 2, "output": "linear"}], ids=str)
def test_liquid_s4_forward_step_and_chunks_agree(options):
    layer = ssmkit.LiquidS4(3, 8, **options).double().eval()
    y, y_step, y_chunk = three_views(layer, torch.randn(2, 37, 3, dtype=torch.float64))
    assert rel_err(y_step, y) < 1e-9 and rel_err(y_chunk, y) < 1e-9


def test_liquid_s4_options_and_state_are_checked():
    with pytest.raises(ValueError, match="liquid_order"):
        ssmkit.LiquidS4(2, 8, liquid_order=5)
    with pytest.raises(ValueError, match="liquid_kernel"):
        ssmkit.LiquidS4(2, 8, liquid_kernel="kk")
    layer = ssmkit.LiquidS4(2, 8)
    with pytest.raises(ValueError, match="input history"):
        layer.step(torch.randn(1, 2), layer.default_state(2)[0][:1])
    layer(torch.randn(2, 16, 2))[0].square().mean().backward()
    assert all(p.grad is not None for p in layer.parameters())
