"""S5: the MIMO diagonal SSM against a dense oracle, its three views (variable Δ included), bidirectional, errors."""
import pytest
import torch

from conftest import rel_err, three_views
import ssmkit
from ssmkit import hippo
from ssmkit.layers.s5 import default_blocks
from ssmkit.ops import scan
from ssmkit.train.optim import optim_settings

OPTIONS = [{}, {"disc": "bilinear", "blocks": 4, "activation": "full_glu"},
           {"C_init": "complex_normal", "activation": "half_glu", "clip_eigs": True}, {"activation": "half_glu2"},
           {"C_init": "trunc_normal", "blocks": 2}]


def _dense_zoh_output(layer, u):
    """Pre-activation y of the full P-state system, discretized with a block matrix exponential per state."""
    Lam = layer.Lambda()
    dt = torch.exp(layer.log_dt)
    B, C = torch.view_as_complex(layer.B), torch.view_as_complex(layer.C)[0]
    Lf, dtf = torch.cat([Lam, Lam.conj()]), torch.cat([dt, dt])
    Bf, Cf = torch.cat([B, B.conj()]), torch.cat([C, C.conj()], dim=1)
    P, H = Bf.shape
    M = torch.zeros(P + H, P + H, dtype=torch.complex128)
    M[:P, :P] = torch.diag(dtf * Lf)
    M[:P, P:] = dtf[:, None] * Bf
    E = torch.linalg.matrix_exp(M)
    dA, dB = E[:P, :P], E[:P, P:]
    x, ys = torch.zeros(u.shape[0], P, dtype=torch.complex128), []
    for k in range(u.shape[1]):
        x = x @ dA.T + u[:, k].to(torch.complex128) @ dB.T
        ys.append((x @ Cf.T).real + layer.D * u[:, k])
    return torch.stack(ys, 1)


def test_s5_matches_the_dense_oracle():
    layer = ssmkit.S5(3, 8, blocks=2, activation="gelu").double()
    u = torch.randn(2, 30, 3, dtype=torch.float64)
    y, _ = layer(u)
    assert rel_err(y, torch.nn.functional.gelu(_dense_zoh_output(layer, u), approximate="tanh")) < 1e-10


def test_hippo_n_blocks_are_block_diagonal_hippo_n():
    Lam, V = hippo.hippo_n_blocks(16, 4)
    small = hippo.nplr("legs", 4)
    assert torch.allclose(Lam, small.Lambda.repeat(4))
    Vf = torch.cat([V, V.conj()], dim=1)
    assert torch.allclose(Vf.conj().T @ Vf, torch.eye(16, dtype=torch.complex128), atol=1e-12)
    assert V[4:, :2].abs().max() == 0  # off-diagonal blocks are zero


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("variable_dt", [False, True])
def test_s5_forward_step_and_chunks_agree(options, variable_dt):
    layer = ssmkit.S5(3, 16, **options).double().eval()
    u = torch.randn(2, 37, 3, dtype=torch.float64)
    scale = torch.rand(2, 37, dtype=torch.float64) + 0.5
    per_position = (lambda a, b: {"dt_scale": scale[:, a:b]}) if variable_dt else None
    y, y_step, y_chunk = three_views(layer, u, per_position=per_position)
    assert rel_err(y_step, y) < 1e-9 and rel_err(y_chunk, y) < 1e-9


def test_variable_dt_of_ones_is_the_fixed_step_and_scales_time():
    layer = ssmkit.S5(3, 8).double()
    u = torch.randn(1, 20, 3, dtype=torch.float64)
    assert rel_err(layer(u, dt_scale=torch.ones(1, 20, dtype=torch.float64))[0], layer(u)[0]) < 1e-14
    assert rel_err(layer(u, dt_scale=torch.full((1, 20), 0.5, dtype=torch.float64))[0], layer(u, rate=0.5)[0]) < 1e-14


def test_bidirectional_s5_adds_a_reversed_scan_read_by_its_own_C():
    layer = ssmkit.S5(2, 8, bidirectional=True, activation="gelu").double()
    u = torch.randn(1, 12, 2, dtype=torch.float64)
    dA, q = layer.discrete()
    Bu = q * (u.to(torch.complex128) @ torch.view_as_complex(layer.B).T)
    a = dA.expand(1, 12, -1)
    C = torch.view_as_complex(layer.C)
    fwd = 2 * (scan(a, Bu) @ C[0].T).real
    bwd = 2 * (scan(a, Bu.flip(1)).flip(1) @ C[1].T).real
    expected = torch.nn.functional.gelu(fwd + bwd + layer.D * u, approximate="tanh")
    assert rel_err(layer(u)[0], expected) < 1e-12
    for call in (lambda: layer.default_state(1), lambda: layer.step(u[:, 0], torch.zeros(1, 4, dtype=torch.complex128))):
        with pytest.raises(ValueError, match="bidirectional"):
            call()


def test_s5_gradients_reach_every_parameter_and_ssm_group_is_tagged():
    layer = ssmkit.S5(4, 8, activation="full_glu", bidirectional=True)
    layer(torch.randn(2, 16, 4))[0].square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert set(optim_settings(layer)) == {"A_real", "A_imag", "B", "log_dt"}


@pytest.mark.parametrize("make, match", [
    (lambda: ssmkit.S5(4, 10, blocks=2), "blocks"),
    (lambda: ssmkit.S5(4, 8, disc="euler"), "disc"),
    (lambda: ssmkit.S5(4, 8, C_init="zeros"), "C_init"),
    (lambda: ssmkit.S5(4, 8, activation="relu"), "activation"),
    (lambda: ssmkit.S5(4, 8, opt_config="fast"), "opt_config: expected one of"),
    (lambda: ssmkit.S5(4, 7), r"d_state: expected an even integer >= 2 \(P/2 conjugate pairs\), got 7"),
    (lambda: ssmkit.S5(4, 0), "d_state: expected an even integer"),
])
def test_bad_s5_options_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_s5_inputs_are_named():
    layer = ssmkit.S5(4, 8, l_max=10)
    with pytest.raises(ValueError, match=r"u: expected shape \(B, L, H=4\)"):
        layer(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="exceeds l_max=10"):
        layer(torch.randn(2, 11, 4))
    with pytest.raises(ValueError, match=r"dt_scale: expected a tensor of shape \(2, 5\)"):
        layer(torch.randn(2, 5, 4), dt_scale=torch.ones(5))
    with pytest.raises(ValueError, match=r"state: expected a complex tensor of shape \(2, 4\)"):
        layer.step(torch.randn(2, 4), torch.zeros(2, 8, dtype=torch.complex64))


def test_s5_starts_as_the_official_init():
    """lindermanlab/S5 defaults: 8 HiPPO-N blocks, B₀ LeCun over its fan-in P, C₀ complex LeCun over P
    ('trunc_standard_normal'), half_glu1 with a LeCun Dense."""
    torch.manual_seed(0)
    layer = ssmkit.S5(128, 256)
    Lam, _ = hippo.hippo_n_blocks(256, 8)
    assert torch.allclose(layer.Lambda().to(torch.complex128), Lam, atol=1e-5)
    B, C = torch.view_as_complex(layer.B), torch.view_as_complex(layer.C)
    assert B.abs().square().mean().item() == pytest.approx(1 / 256, rel=0.03)  # E|B̃|² = 1/P
    assert C.abs().square().mean().item() == pytest.approx(2 / 256, rel=0.03)  # E|C̃|² = 2/P
    assert layer.activation == "half_glu" and layer.out2 is None and not layer.out1.bias.any()
    assert layer.out1.weight.std().item() == pytest.approx(128 ** -0.5, rel=0.03)
    direct = torch.view_as_complex(ssmkit.S5(128, 256, C_init="complex_normal").C)
    assert direct.abs().square().mean().item() == pytest.approx(1.0, rel=0.03)  # complex_normal: E|C̃|² = 1
    assert [default_blocks(n) for n in (256, 64, 8, 24, 2)] == [8, 8, 4, 6, 1]


def test_output_activations_and_dropout_sites_are_the_official_sequence_layers():
    """g = Drop(GELU(y)); half_glu Drop(g ⊙ σ(W g)), half_glu2 Drop(y ⊙ σ(W g)), full_glu Drop(W₁g ⊙ σ(W₂g)), gelu g,
    with the dropout tied across positions by default (s5/layers.py, nn.Dropout(broadcast_dims=[0])). GELU is flax's
    nn.gelu, whose default is the tanh approximation, 0.5·y·(1 + tanh(√(2/π)(y + 0.044715 y³))); the exact (erf)
    GELU differs from it by up to 4.7e-4 (near |y| = 2.7), 2e-5 to 1e-4 of the block output with copied weights
    (benchmarks/versus_official.py)."""
    y = torch.randn(2, 9, 4, dtype=torch.float64)
    y[0, 0] = torch.tensor([-2.7, -1.0, 1.0, 2.7])

    def gelu(v):
        return 0.5 * v * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (v + 0.044715 * v ** 3)))
    for activation, expected in (("half_glu", lambda l: gelu(y) * torch.sigmoid(l.out1(gelu(y)))),
                                 ("half_glu2", lambda l: y * torch.sigmoid(l.out1(gelu(y)))),
                                 ("full_glu", lambda l: l.out1(gelu(y)) * torch.sigmoid(l.out2(gelu(y)))),
                                 ("gelu", lambda l: gelu(y))):
        layer = ssmkit.S5(4, 8, activation=activation).double().eval()
        assert rel_err(layer._output(y), expected(layer)) < 1e-15, activation
    from ssmkit.layers.dropout import TiedDropout
    layer = ssmkit.S5(4, 8, activation="half_glu2", dropout=0.5).double().train()
    assert isinstance(layer.dropout, TiedDropout)
    calls = []
    layer.dropout.register_forward_hook(lambda m, args, out: calls.append(out))
    layer._output(y)
    assert len(calls) == 2  # after the GELU and after the gate
    assert isinstance(ssmkit.S5(4, 8, dropout=0.5, tie_dropout=False).dropout, torch.nn.Dropout)


@pytest.mark.parametrize("opt_config, dt_global, groups", [
    ("standard", False, {"B": "ssm", "log_dt": "ssm", "C": "model", "D": "model, no decay"}),
    ("standard", True, {"B": "ssm", "log_dt": "model, no decay", "C": "model"}),
    ("BandCdecay", False, {"B": "ssm lr, decayed", "C": "model"}),
    ("BfastandCdecay", False, {"B": "model", "A_real": "ssm"}),
    ("noBCdecay", False, {"B": "ssm", "C": "ssm", "D": "ssm", "log_dt": "ssm"}),
])
def test_opt_config_groups_the_parameters_as_the_official_train_helpers(opt_config, dt_global, groups):
    from ssmkit.train import param_groups
    layer = ssmkit.S5(4, 8, opt_config=opt_config, dt_global=dt_global, ssm_lr=1e-3)
    settings = {}
    for g in param_groups(layer, lr=1e-2, weight_decay=0.1):
        for name, p in layer.named_parameters():
            if any(p is q for q in g["params"]):
                settings[name] = (g["lr"], g["weight_decay"])
    kinds = {"ssm": (1e-3, 0.0), "model": (1e-2, 0.1), "model, no decay": (1e-2, 0.0), "ssm lr, decayed": (1e-3, 0.1)}
    for name, kind in groups.items():
        assert settings[name] == kinds[kind], (name, settings[name])
