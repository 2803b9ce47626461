"""Like SSM layers forming their chunk matrices as one group (layers/stack_parts.py): the same matrices and gradients
as each layer's own build, groups only of like layers, and a model that trains the same with and without it."""
import copy

import pytest
import torch

import ssmkit
from ssmkit.layers import stack_parts as sp
from ssmkit.layers.chunk_parts import build_parts
from tests.conftest import rel_err

LIKE = [
    ("s4", dict(d_state=8, l_max=96, bidirectional=True)),
    ("s4", dict(d_state=8, n_ssm=2)),
    ("s4", dict(d_state=8, l_max=96, tie_pq=False, share_lambda=True, bandlimit=0.5)),
    ("s4d", dict(d_state=8, disc="bilinear", dt_transform="softplus", bidirectional=True)),
    ("s4d", dict(d_state=8)),
    ("dss", dict(d_state=8, variant="exp", bidirectional=True)),
    ("dlr", dict(d_state=8)),
    ("ema", dict(ndim=4)),
]


def _real(t):
    return torch.view_as_real(t) if t.is_complex() else t


@pytest.mark.parametrize("name,options", LIKE)
def test_a_group_build_equals_each_layers_own(name, options):
    torch.manual_seed(0)
    layers = [ssmkit.layer(name, d_model=6, **options).double() for _ in range(3)]
    stacked = sp.StackBuilder(layers, 1.0)(torch.zeros(1))
    own = [build_parts(l.kernel, l.D, l.bidirectional, 1.0) for l in layers]
    weights = [torch.randn_like(_real(t)) for t in stacked]
    params = [p for l in layers for p in [*l.kernel.parameters(), l.D]]
    grads = torch.autograd.grad(sum((_real(t) * w).sum() for t, w in zip(stacked, weights)), params)
    own_grads = torch.autograd.grad(sum((_real(t) * w[i]).sum() for i, parts in enumerate(own)
                                        for t, w in zip(parts, weights)), params)
    for i, parts in enumerate(own):
        for t, mine in zip(stacked, parts):
            assert rel_err(t[i], mine) < 1e-14
    for g, h in zip(grads, own_grads):
        assert rel_err(g, h) < 1e-14


def _cpu_chunked(monkeypatch):
    """Let CPU layers take the chunked path and group as they would in CUDA training."""
    monkeypatch.setattr(ssmkit.SSMConv, "_chunked_on", lambda self, device: True)
    monkeypatch.setattr(sp, "eligible", lambda layer: layer._fused_chunks() and not layer.cuda_graph)


def test_groups_hold_only_like_layers(monkeypatch):
    _cpu_chunked(monkeypatch)
    a, b = (ssmkit.layer("s4", d_model=8, d_state=8, l_max=64) for _ in range(2))
    other_length = ssmkit.layer("s4", d_model=8, d_state=8, l_max=32)
    other_state = ssmkit.layer("s4", d_model=8, d_state=4, l_max=64)
    two_way = [ssmkit.layer("s4", d_model=8, d_state=8, l_max=64, bidirectional=True) for _ in range(2)]
    diagonal = [ssmkit.layer("s4d", d_model=8, d_state=8) for _ in range(2)]
    alone = ssmkit.layer("s4d", d_model=8, d_state=8, disc="bilinear")
    whole = ssmkit.layer("s4d", d_model=8, d_state=8, cuda_graph=True)
    model = torch.nn.ModuleList([a, other_length, b, other_state, *two_way, *diagonal, alone, whole])
    diagonal.append(ssmkit.layer("s4d", d_model=8, d_state=8, init="legs"))  # another start, the same function
    model.append(diagonal[-1])
    groups = {tuple(id(l) for l in g) for g in sp._groups(model).values()}
    assert groups == {(id(a), id(b)), tuple(map(id, two_way)), tuple(map(id, diagonal))}


def test_the_context_is_needed_and_can_be_turned_off(monkeypatch):
    _cpu_chunked(monkeypatch)
    layers = torch.nn.ModuleList(ssmkit.layer("s4d", d_model=4, d_state=4) for _ in range(2))
    assert sp.group_parts(layers[0], 1.0) is None
    with sp.stacked_parts(layers, enabled=False):
        with sp.stacked_parts(layers):  # the outer context holds
            assert sp.group_parts(layers[0], 1.0) is None
    with sp.stacked_parts(layers):
        parts = sp.group_parts(layers[1], 1.0)
        assert sp.group_parts(layers[1], 1.0)[0] is parts[0]  # built once per forward
    assert len(parts) == 4 and rel_err(parts[0], build_parts(layers[1].kernel, layers[1].D, False, 1.0)[0]) < 1e-6


def test_inside_a_whole_model_capture_groups_still_build_together(monkeypatch):
    """Within cuda_graphs.layers_inline (a whole model being captured, train/model_graphs.py) the layers' own graphs
    are off, but like layers still take their matrices from one group build (run inline, into the model's graph)."""
    from ssmkit.layers import cuda_graphs
    _cpu_chunked(monkeypatch)
    layers = torch.nn.ModuleList(ssmkit.layer("s4d", d_model=4, d_state=4) for _ in range(2))
    with cuda_graphs.layers_inline(), sp.stacked_parts(layers):
        assert not cuda_graphs.layer_graphs_allowed()
        parts = sp.group_parts(layers[0], 1.0)
    assert parts is not None and rel_err(parts[0], build_parts(layers[0].kernel, layers[0].D, False, 1.0)[0]) < 1e-6


def test_a_group_built_under_functional_call_trains_every_layer(monkeypatch):
    """A model run by torch.func.functional_call over plain tensors in place of its parameters (torch.func's
    transforms, a graph capture's placeholders): the group's build reads each layer's own D, which a module then keeps
    as a plain attribute rather than a parameter, so every layer gets its own gradients."""
    _cpu_chunked(monkeypatch)
    torch.manual_seed(0)
    model = ssmkit.models.SequenceModel(d_input=3, d_model=8, d_output=5, n_layers=2, layer="s4d",
                                        layer_options=dict(d_state=4)).double()
    eager = copy.deepcopy(model)
    x = torch.randn(2, 16, 3, dtype=torch.float64)
    placeholders = {n: p.view_as(p) for n, p in model.named_parameters()}
    torch.func.functional_call(model, placeholders, (x,)).square().sum().backward()
    with sp.stacked_parts(eager, enabled=False):
        eager(x).square().sum().backward()
    for (n, p), q in zip(model.named_parameters(), eager.parameters()):
        assert p.grad is not None and rel_err(p.grad, q.grad) < 1e-12, n


def test_a_model_trains_the_same_with_grouped_matrices(monkeypatch):
    """SequenceModel enters stacked_parts itself: outputs and every gradient equal those of its layers' own builds."""
    _cpu_chunked(monkeypatch)
    torch.manual_seed(0)
    model = ssmkit.models.SequenceModel(d_input=3, d_model=8, d_output=5, n_layers=3, layer="s4",
                                        layer_options=dict(d_state=8, bidirectional=True, l_max=64)).double()
    apart = copy.deepcopy(model)
    x = torch.randn(2, 64, 3, dtype=torch.float64)
    built = []
    monkeypatch.setattr(sp.StackBuilder, "forward",
                        lambda self, token, f=sp.StackBuilder.forward: built.append(1) or f(self, token))
    model(x).square().sum().backward()
    with sp.stacked_parts(apart, enabled=False):
        apart(x).square().sum().backward()
    assert built == [1]
    assert rel_err(model(x), apart(x)) < 1e-13
    for (n, p), q in zip(model.named_parameters(), apart.parameters()):
        assert rel_err(p.grad, q.grad) < 1e-12, n


@pytest.mark.parametrize("which", ["sashimi", "sssd"])
def test_sashimi_and_sssd_group_their_layers(which, monkeypatch):
    """Both enter stacked_parts in their forward: SaShiMi one group per level, SSSD one for all its S4 layers; the
    gradients are those of the layers' own builds."""
    _cpu_chunked(monkeypatch)
    torch.manual_seed(0)
    if which == "sashimi":
        model = ssmkit.models.Sashimi(1, 16, vocab_size=16, d_model=8, n_layers=2, pool=[2, 2],
                                      layer_options=dict(d_state=8)).double()
        x = torch.randint(0, 16, (2, 32))
        run = lambda m: m(x)  # noqa: E731
    else:
        model = ssmkit.models.SSSD(3, n_blocks=3, d_model=8, d_skip=8, d_embed_in=8, d_embed=8,
                                   layer_options=dict(d_state=8)).double()
        x0, mask = torch.randn(2, 32, 3, dtype=torch.float64), (torch.rand(2, 32, 3) > 0.5).double()
        run = lambda m: m(x0, mask, torch.Generator().manual_seed(0))  # noqa: E731
        with torch.no_grad():  # its output convolution starts at zero, which would leave every other gradient zero
            model.out[-1].weight.normal_()
    apart = copy.deepcopy(model)
    sizes = []
    monkeypatch.setattr(sp.StackBuilder, "forward",
                        lambda self, token, f=sp.StackBuilder.forward: sizes.append(len(self.builders))
                        or f(self, token))
    run(model).square().sum().backward()
    with sp.stacked_parts(apart, enabled=False):
        run(apart).square().sum().backward()
    assert sizes == ([2, 2, 2] if which == "sashimi" else [6])
    for (n, p), q in zip(model.named_parameters(), apart.parameters()):
        assert (p.grad is None) == (q.grad is None) and (p.grad is None or rel_err(p.grad, q.grad) < 1e-12), n


def test_a_context_over_several_steps_forms_the_matrices_again(monkeypatch):
    """Around steps with an optimizer's update between them (or a backward that used the matrices), the group's
    matrices are formed again; two forwards before one backward share them."""
    _cpu_chunked(monkeypatch)
    torch.manual_seed(0)
    model = ssmkit.models.SequenceModel(d_input=3, d_model=8, d_output=5, n_layers=2, layer="s4d",
                                        layer_options=dict(d_state=4)).double()
    apart = copy.deepcopy(model)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (model, apart)]
    x = torch.randn(2, 32, 3, dtype=torch.float64)
    with sp.stacked_parts(model):
        for step in range(3):
            for m, opt, on in ((model, opts[0], True), (apart, opts[1], False)):
                with sp.stacked_parts(m, enabled=on):
                    (m(x).square().sum() + m(2 * x).square().sum()).backward()
                    if step != 1:  # step 1: a backward without an update, then another backward
                        opt.step()
                        opt.zero_grad()
    for p, q in zip(model.parameters(), apart.parameters()):
        assert rel_err(p, q) < 1e-12
    with sp.stacked_parts(model):  # a parameter edited in place between two forwards, without a backward
        first = model(x)
        with torch.no_grad():
            next(l for l in model.modules() if isinstance(l, ssmkit.SSMConv)).D.add_(1.0)
            next(l for l in apart.modules() if isinstance(l, ssmkit.SSMConv)).D.add_(1.0)
        assert rel_err(model(x), apart(x)) < 1e-12 and rel_err(first, model(x)) > 1e-6


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("layer,options", [("s4", dict(bidirectional=True, l_max=256)), ("s4d", dict())])
def test_cuda_grouped_matrices_train_like_each_layers_own(layer, options):
    """Three AdamW steps of a 3-layer model on CUDA, its matrices from one group's CUDA graphs and from each layer's
    own: the same parameters."""
    torch.manual_seed(0)
    grouped = ssmkit.models.SequenceModel(d_input=3, d_model=32, d_output=5, n_layers=3, layer=layer,
                                          layer_options=dict(d_state=16, **options)).cuda()
    apart = copy.deepcopy(grouped)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2) for m in (grouped, apart)]
    for _ in range(3):
        x = torch.randn(4, 256, 3, device="cuda")
        for m, opt, on in zip((grouped, apart), opts, (True, False)):
            with sp.stacked_parts(m, enabled=on):
                m(x).square().mean().backward()
            opt.step()
            opt.zero_grad()
    for (n, p), q in zip(grouped.named_parameters(), apart.parameters()):
        assert rel_err(p, q) < 1e-5, n
    first = next(m for m in grouped.modules() if isinstance(m, ssmkit.SSMConv))
    assert first._stacked_parts.run is not None  # the group's graphs ran
    # a parameter replaced by a new tensor (load_state_dict(assign=True)) is read, and trains
    outputs, grads = [], []
    for m in (grouped, apart):
        layer = [l for l in m.modules() if isinstance(l, ssmkit.SSMConv)][1]
        layer.D = torch.nn.Parameter(layer.D.detach() + 1)
        with sp.stacked_parts(m, enabled=m is grouped):
            y = m(x)
            y.square().mean().backward()
        outputs.append(y.detach())
        grads.append(layer.D.grad)
    assert rel_err(*outputs) < 1e-5 and grads[0] is not None and rel_err(*grads) < 1e-5


def test_a_failing_group_build_leaves_each_layer_its_own(monkeypatch):
    _cpu_chunked(monkeypatch)
    layers = torch.nn.ModuleList(ssmkit.layer("s4d", d_model=4, d_state=4) for _ in range(2))

    def fail(self, token):
        raise NotImplementedError("no batching rule")
    monkeypatch.setattr(sp.StackBuilder, "forward", fail)
    with pytest.warns(UserWarning, match="each layer forms its own"), sp.stacked_parts(layers):
        assert sp.group_parts(layers[0], 1.0) is None
    with sp.stacked_parts(layers):  # once only
        assert sp.group_parts(layers[0], 1.0) is None


def test_without_gradients_no_group_is_formed(monkeypatch):
    _cpu_chunked(monkeypatch)
    layers = torch.nn.ModuleList(ssmkit.layer("s4d", d_model=4, d_state=4) for _ in range(2))
    with torch.no_grad(), sp.stacked_parts(layers):
        assert sp._ACTIVE.get() is None and sp.group_parts(layers[0], 1.0) is None


def test_the_context_takes_a_module():
    with pytest.raises(TypeError, match=r"stacked_parts: expected the model \(a torch.nn.Module\), got list"):
        with sp.stacked_parts([ssmkit.layer("s4d", d_model=4)]):
            pass
