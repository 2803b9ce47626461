"""Liquid-S4: the liquid terms against a naive float64 sum over input products; three views; options."""
import pytest
import torch

from conftest import rel_err, three_views
import ssmkit
from ssmkit import functional as F
from ssmkit.layers.liquid_official import combination_indices


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
@pytest.mark.parametrize("order", [2, 3, 4, 5])
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
    for order in (1, 2.0, True):
        with pytest.raises(ValueError, match="liquid_order"):
            ssmkit.LiquidS4(2, 8, liquid_order=order)
    with pytest.raises(ValueError, match="bidirectional: the causal liquid form"):
        ssmkit.LiquidS4(2, 8, bidirectional=True)
    with pytest.raises(ValueError, match="liquid_kernel"):
        ssmkit.LiquidS4(2, 8, liquid_kernel="kk")
    layer = ssmkit.LiquidS4(2, 8)
    with pytest.raises(ValueError, match="input history"):
        layer.step(torch.randn(1, 2), layer.default_state(2)[0][:1])
    layer(torch.randn(2, 16, 2))[0].square().mean().backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_official_products_multiply_combinations_of_the_last_positions():
    """raminmh/liquid-s4 allcombs: for L = 10 and p = 2, the 10 pairs of positions 5..9 (C(5, 2) = 10), in
    lexicographic order; for p = 3 the 10 triples of 5..9; for L = 12 and p = 2, the last 12 of the 15 pairs of 6..11."""
    assert combination_indices(10, 2).tolist() == [[5, 6], [5, 7], [5, 8], [5, 9], [6, 7], [6, 8], [6, 9], [7, 8],
                                                   [7, 9], [8, 9]]
    assert combination_indices(10, 3).shape == (10, 3) and combination_indices(10, 3)[0].tolist() == [5, 6, 7]
    assert combination_indices(12, 2)[0].tolist() == [6, 10] and combination_indices(12, 2).shape == (12, 2)


@pytest.mark.parametrize("order", [3, 6])
def test_official_form_pb_adds_frozen_weights_times_reversed_products(order):
    """y += c·S^(2^(p−1)−1) · U_rev with S = Σ B̄, c = Re Σ C B̄ (both halves of each pair, B̄ = Δ(1 − Δλ/2)^{-1} B,
    diagonal only, C the plain C drawn at init, not the parameter C̃) frozen at init; the products read later inputs
    (non-causal)."""
    layer = ssmkit.LiquidS4(3, 8, liquid_order=order, liquid_kernel="pb", liquid_form="official", l_max=12,
                            activation="id", output="none").double()
    k = layer.kernel
    dt = k.dt()[:, None]
    dB = dt / (1 - dt / 2 * k.Lambda()) * k.cplx("B")
    S, c = layer.liquid_sum_dB, layer.liquid_CB[0]  # computed at construction, in float32
    assert rel_err(S, 2 * dB.sum(-1).real) < 1e-6 and rel_err(c, 2 * (k.plain_C()[0] * dB).sum(-1).real) < 1e-6
    assert rel_err(c, 2 * (k.cplx("C")[0] * dB).sum(-1).real) > 1e-3  # C̃ = C(I − Ā^12) would give another c
    u = torch.randn(1, 12, 3, dtype=torch.float64)
    y, _ = layer(u)
    plain = ssmkit.S4(3, 8, l_max=12, activation="id", output="none").double()
    plain.load_state_dict({n: t for n, t in layer.state_dict().items() if not n.startswith("liquid")})
    expected = plain(u)[0][0].T.clone()  # (H, L)
    x = u[0].T
    for p in range(2, order + 1):
        factor = S ** (2 ** (p - 1) - 1)  # S, S³, S⁷, S¹⁵, S³¹
        idx = combination_indices(12, p)
        U = torch.stack([x[:, list(row)].prod(-1) for row in idx.tolist()], -1)  # (H, L)
        expected += (c * factor)[:, None] * U.flip(-1)
    assert rel_err(y[0].T, expected) < 1e-12
    liquid = y - plain(u)[0]
    with torch.no_grad():
        k.B.mul_(2)
    plain.load_state_dict({n: t for n, t in layer.state_dict().items() if not n.startswith("liquid")})
    assert rel_err(layer(u)[0] - plain(u)[0], liquid) < 1e-12  # the liquid weights do not follow B: frozen at init
    with pytest.raises(ValueError, match="no recurrent view"):
        layer.default_state(1)


def test_liquid_s4_starts_from_the_unclipped_hippo_b_and_takes_the_dt_options():
    """The official Liquid-S4 ships an S4 whose nplr has no clip: B̃ is the exact HiPPO one (S4 with B_clip=None)."""
    torch.manual_seed(0)
    liquid = ssmkit.LiquidS4(4, 16)
    torch.manual_seed(0)
    exact = ssmkit.S4(4, 16, B_clip=None)
    assert torch.equal(liquid.kernel.B, exact.kernel.B)
    assert not torch.equal(liquid.kernel.B, ssmkit.S4(4, 16).kernel.B)
    soft = ssmkit.LiquidS4(4, 8, dt_transform="softplus", dt_lr=None, liquid_form="official", l_max=16).double()
    y, _ = soft(torch.randn(2, 16, 4, dtype=torch.float64))
    assert y.shape == (2, 16, 4) and "inv_dt" in dict(soft.kernel.named_parameters())


@pytest.mark.parametrize("mode", ["kb", "pb"])
def test_official_bidirectional_form_with_a_silent_backward_half_is_the_one_sided_layer(mode):
    """With the anti-causal channel's C̃ zero, its kernel half and its frozen weight vanish: the bidirectional
    official layer then computes the one-sided one (same causal weights, kb's extra lag −L zero as well)."""
    torch.manual_seed(0)
    two = ssmkit.LiquidS4(3, 7, liquid_order=3, liquid_kernel=mode, liquid_form="official", bidirectional=True,
                          l_max=16).double()
    one = ssmkit.LiquidS4(3, 7, liquid_order=3, liquid_kernel=mode, liquid_form="official", l_max=16).double()
    state = two.state_dict()
    with torch.no_grad():
        state["kernel.C"] = state["kernel.C"][:1].clone()
        state["liquid_CB"] = state["liquid_CB"][:1].clone()
        one.load_state_dict(state)
        two.kernel.C[1:] = 0
        two.liquid_CB[1:] = 0
    u = 3 * torch.randn(2, 16, 3, dtype=torch.float64)
    assert rel_err(two(u)[0], one(u)[0]) < 1e-12


def test_official_bidirectional_pb_weighs_the_unreversed_products_with_the_backward_channel():
    """raminmh/liquid-s4 S4.forward, polyb with bidirectional: y += U_rev·c_fwd·S + U_rev.flip·c_bwd·S (order 2)."""
    torch.manual_seed(1)
    layer = ssmkit.LiquidS4(3, 7, liquid_kernel="pb", liquid_form="official", bidirectional=True, l_max=10,
                            activation="id", output="none").double()
    plain = ssmkit.S4(3, 7, bidirectional=True, l_max=10, activation="id", output="none").double()
    plain.load_state_dict({n: t for n, t in layer.state_dict().items() if not n.startswith("liquid")})
    u = torch.randn(1, 10, 3, dtype=torch.float64)
    x = u[0].T
    U = torch.stack([x[:, list(row)].prod(-1) for row in combination_indices(10, 2).tolist()], -1).flip(-1)
    w = layer.liquid_CB * layer.liquid_sum_dB  # (2, H): forward, backward
    expected = plain(u)[0][0].T + w[0][:, None] * U + w[1][:, None] * U.flip(-1)
    assert rel_err(layer(u)[0][0].T, expected) < 1e-12
    assert rel_err(w[1], w[0]) > 1e-2  # the two halves' weights differ, so the test tells them apart


def test_official_form_takes_the_official_eigenvector_signs_which_its_frozen_sum_reads():
    """The official form builds its kernel in the official nplr's basis (S4 basis='official'): the same kernel as
    the first_positive basis, but S = Σ B̄ over modes with the official signs (at N = 7 its μ = 15.09 mode flipped,
    which turns S negative where Δ is large: the official module's S at ListOps' Δ range lies in [−0.37, 0.004])."""
    torch.manual_seed(0)
    liquid = ssmkit.LiquidS4(16, 7, liquid_kernel="pb", liquid_form="official", dt_min=0.002, dt_max=0.2).double()
    torch.manual_seed(0)
    official_basis = ssmkit.S4(16, 7, B_clip=None, basis="official", dt_min=0.002, dt_max=0.2).double()
    torch.manual_seed(0)
    first_positive = ssmkit.S4(16, 7, B_clip=None, dt_min=0.002, dt_max=0.2).double()
    assert torch.equal(liquid.kernel.B, official_basis.kernel.B)
    assert not torch.equal(liquid.kernel.B, first_positive.kernel.B)
    with torch.no_grad():
        first_positive.kernel.C.copy_(official_basis.kernel.C * torch.sign(  # C follows B's signs: the same system
            official_basis.kernel.B[..., :1] * first_positive.kernel.B[..., :1]))
    assert rel_err(first_positive.kernel(32), official_basis.kernel(32)) < 1e-12
    causal = ssmkit.LiquidS4(16, 7, liquid_kernel="pb")
    assert torch.equal(causal.kernel.B, ssmkit.S4(16, 7, B_clip=None).kernel.B)  # the causal form keeps ours
    assert liquid.liquid_sum_dB.max() < 0.01 and liquid.liquid_sum_dB.min() < -0.1
