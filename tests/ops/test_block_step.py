"""ops.block_step: a stack of residual SSM (+ FF) blocks in one step. The structured step equals each recurrence's
own; the reference op equals SaShiMi's blocks stepped one by one (float64); the Triton version equals the reference
(float32, on the GPU or in Triton's CPU interpreter); SaShiMi's fused levels give the plain loop's outputs."""
import pytest
import torch

from conftest import rel_err
from ssmkit.layers import layer as build_layer
from ssmkit.layers.norms import ScalarLayerNorm
from ssmkit.models import Sashimi
from ssmkit.models import sashimi as sashimi_module
from ssmkit.models.fused_levels import FusedStack
from ssmkit.ops import BlockWeights, block_step
from ssmkit.ops.block_step import block_step_torch


@pytest.mark.parametrize("kind,options", [("s4", {"n_ssm": 1}), ("s4", {"init": "legt"}), ("s4d", {}),
                                          ("s4", {"l_max": None}), ("s4", {"share_lambda": True, "tie_pq": False}),
                                          ("s4", {"init": "legt", "tie_pq": False})])
def test_structured_step_equals_the_recurrence_float64(kind, options):
    """a ⊙ x − Σ E_r 2Re(V_r x) + b u (O(N·R)) is the dense DPLR step (rank 1 and 2, Q = P or not) and the diagonal
    step."""
    layer = build_layer(kind, d_model=6, d_state=16, **{"l_max": 100, **options}).double()
    if not options.get("tie_pq", True):
        with torch.no_grad():
            layer.kernel.Q.add_(0.3 * torch.randn_like(layer.kernel.Q))
    rec = layer.kernel.recurrence(0.5)
    x, u = torch.randn(3, 6, 8, dtype=torch.complex128), torch.randn(3, 6, dtype=torch.float64)
    y, x2 = rec.lowrank_step_form().step(x, u)
    y_ref, x_ref = rec.step(x, u)
    assert rel_err(x2, x_ref) < 1e-13 and rel_err(y, y_ref[:, 0]) < 1e-13


def sashimi(layer="s4", ff=2, output="glu", activation="gelu", dtype=torch.float64, norm="scalar",
            unet=False) -> Sashimi:
    model = Sashimi(1, 256, vocab_size=256, d_model=8, n_layers=3, pool=[2], ff=ff, layer=layer, norm=norm, unet=unet,
                    layer_options={"d_state": 8, "output": output, "activation": activation}).to(dtype).eval()
    with torch.no_grad():  # the norms away from their initial (1, 0), so that every packed number counts
        for p in (p for m in model.modules() if isinstance(m, (ScalarLayerNorm, torch.nn.LayerNorm))
                  for p in m.parameters()):
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("layer,ff,output,activation,norm", [("s4", 2, "glu", "gelu", "scalar"),
                                                             ("s4d", 0, "linear", "silu", "layer"),
                                                             ("s4", 1, "none", "relu", "scalar")])
def test_reference_equals_the_blocks_stepped_one_by_one_float64(layer, ff, output, activation, norm):
    model = sashimi(layer, ff, output, activation, norm=norm)
    for name, blocks, H in [("center", model.center, 16), ("up", model.up[0]["blocks"], 8)]:
        stack = FusedStack(blocks, with_ff=ff > 0)
        h = torch.randn(2, H, dtype=torch.float64)
        states = [torch.randn(2, H, 4, dtype=torch.complex128) for _ in stack.layers()]
        with torch.no_grad():
            y, new = block_step(h, states, stack.weights(), outer=True)
            ref, ref_states = h, []
            for block, state in zip(blocks, [s for x in states for s in ([x, None] if ff else [x])]):
                ref, state = block.step(ref, state)
                ref_states.append(state)
        assert rel_err(y, ref + h) < 1e-12, name
        assert all(rel_err(a, b) < 1e-12 for a, b in zip(new, ref_states[::2 if ff else 1]))


def random_weights(n, H, N2, R, Fh, output) -> BlockWeights:
    O = {"glu": 2 * H, "linear": H, "none": 0}[output]
    scaled = lambda *shape: torch.randn(*shape) / shape[-1] ** 0.5  # noqa: E731
    maybe = lambda cond, *shape: (scaled if len(shape) == 3 else torch.randn)(*shape) if cond else None  # noqa: E731
    return BlockWeights(norm1=torch.randn(n, 3, H), ssm=0.5 * torch.randn(n, 3 + 2 * R, H, N2, 2), D=torch.randn(n, H),
                        out_w=maybe(O, n, O, H), out_b=maybe(O, n, O), norm2=maybe(Fh, n, 3, H),
                        ff1_w=maybe(Fh, n, Fh, H), ff1_b=maybe(Fh, n, Fh), ff2_w=maybe(Fh, n, H, Fh),
                        ff2_b=maybe(Fh, n, H), activation="gelu", output=output, eps=1e-5)


def check_triton_against_the_reference(triton_block_step, B, n, H, N2, R, Fh, output, outer):
    """block_step_triton (as the thresholds set: one program per row or four kernels per layer) against the reference:
    float32, rel < 1e-5, in place (out = states) as generation runs it. With ``outer`` the input comes as SaShiMi's
    step gives it: h a slice of the pending outputs (rows 3H apart) plus ``add``."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    w = random_weights(n, H, N2, R, Fh, output)
    w = BlockWeights(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(w).items()})
    h = torch.randn(B, 3, H, device=device)[:, 1] if outer else torch.randn(B, H, device=device)
    add = torch.randn(B, H, device=device) if outer else None
    states = [torch.randn(B, H, N2, dtype=torch.complex64, device=device) for _ in range(n)]
    ref_states = [torch.empty_like(x) for x in states]
    ref = block_step_torch(h, states, ref_states, w, outer, add)
    y = triton_block_step.block_step_triton(h, states, states, w, outer, add)
    assert rel_err(y, ref) < 1e-5
    assert all(rel_err(a, b) < 1e-5 for a, b in zip(states, ref_states))


@pytest.mark.triton
def test_triton_takes_the_reference_for_states_off_16_byte_alignment(monkeypatch):
    """The kernel takes the states' addresses as 16-byte aligned; a state that is a view 8 bytes in (one complex64
    further) gives the reference's result, not a misaligned read."""
    triton_block_step = pytest.importorskip("ssmkit.ops.triton_block_step")
    monkeypatch.setattr(triton_block_step, "WIDE_ROWS", 0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    w = random_weights(2, 16, 4, 1, 32, "glu")
    w = BlockWeights(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(w).items()})
    h = torch.randn(2, 16, device=device)
    buffers = [torch.randn(2 * 16 * 4 + 1, dtype=torch.complex64, device=device) for _ in range(2)]
    states = [b[1:].view(2, 16, 4) for b in buffers]
    assert all(x.data_ptr() % 16 == 8 for x in states)
    ref_states = [torch.empty_like(x) for x in states]
    ref = block_step_torch(h, states, ref_states, w, False)
    y = triton_block_step.block_step_triton(h, states, states, w, False)
    assert rel_err(y, ref) < 1e-6 and all(rel_err(a, b) < 1e-6 for a, b in zip(states, ref_states))


@pytest.mark.parametrize("blocks", ["one", "several"])
@pytest.mark.parametrize("B,n,H,N2,R,Fh,output,outer", [(1, 2, 16, 8, 1, 32, "glu", True),
                                                        (3, 3, 12, 5, 2, 24, "linear", False),
                                                        (2, 1, 20, 4, 0, 0, "none", True),
                                                        (1, 1, 130, 4, 1, 16, "glu", False)])  # norms as one vector
@pytest.mark.triton
def test_triton_matches_the_reference(monkeypatch, blocks, B, n, H, N2, R, Fh, output, outer):
    """float32, rel < 1e-5, ragged H and N2, in place (out = states) as generation runs it; with every matrix in one
    block, and with blocks of few rows and channels (several blocks per product and per SSM stage)."""
    triton_block_step = pytest.importorskip("ssmkit.ops.triton_block_step")
    sizes = (4, 64, 8) if blocks == "one" else (4, 2, 1)
    for name, value in zip(("WARPS", "ROW_ELEMS", "SSM_ELEMS"), sizes):
        monkeypatch.setattr(triton_block_step, name, value)
    monkeypatch.setattr(triton_block_step, "WIDE_ROWS", 0)  # one program per row, whatever the width
    check_triton_against_the_reference(triton_block_step, B, n, H, N2, R, Fh, output, outer)


@pytest.mark.triton
@pytest.mark.parametrize("wide", [False, True])
def test_triton_layer_norm_holds_a_mean_far_above_the_spread(monkeypatch, wide):
    """h = 1000 + N(0, 1), where float32 rounds h itself to 6e-5: the kernels' one-pass LayerNorm statistics (shifted
    by h's first entry) are as close to float64 as PyTorch's float32 LayerNorm (unshifted, they were 2e-2 off)."""
    triton_block_step = pytest.importorskip("ssmkit.ops.triton_block_step")
    monkeypatch.setattr(triton_block_step, "WIDE_ROWS", 2 if wide else 0)
    monkeypatch.setattr(triton_block_step, "WIDE_WIDTH", 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    w = random_weights(2, 16, 4, 1, 32, "glu")
    h = torch.randn(2, 16) + 1000
    states = [torch.randn(2, 16, 4, dtype=torch.complex64) for _ in range(2)]
    w64 = BlockWeights(**{k: v.double() if isinstance(v, torch.Tensor) else v for k, v in vars(w).items()})
    exact = [torch.empty(2, 16, 4, dtype=torch.complex128) for _ in states]
    block_step_torch(h.double(), [x.to(torch.complex128) for x in states], exact, w64, False)
    torch32 = [torch.empty_like(x) for x in states]
    block_step_torch(h, states, torch32, w, False)
    w = BlockWeights(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(w).items()})
    ours = [x.to(device) for x in states]
    triton_block_step.block_step_triton(h.to(device), ours, ours, w, False)
    bound = 2 * max(rel_err(a, b) for a, b in zip(torch32, exact))
    assert max(rel_err(a.cpu(), b) for a, b in zip(ours, exact)) < bound


@pytest.mark.parametrize("blocks", ["one", "several"])
@pytest.mark.parametrize("B,n,H,N2,R,Fh,output,outer", [(1, 2, 16, 8, 1, 32, "glu", True),
                                                        (3, 3, 12, 5, 2, 24, "linear", False),
                                                        (2, 1, 20, 4, 0, 0, "none", True),
                                                        (1, 1, 16, 4, 1, 16, "glu", False)])
@pytest.mark.triton
def test_wide_triton_matches_the_reference(monkeypatch, blocks, B, n, H, N2, R, Fh, output, outer):
    """The four-kernels-per-layer version for few rows of a wide stack (taken here at every width and batch):
    float32, rel < 1e-5, in place, with every product in one block and in blocks of a few outputs and channels."""
    wide = pytest.importorskip("ssmkit.ops.triton_block_step_wide")
    from ssmkit.ops import triton_block_step
    sizes = (4096, 1024) if blocks == "one" else (64, 32)
    for name, value in zip(("WIDE_ELEMS", "WIDE_SSM_ELEMS"), sizes):
        monkeypatch.setattr(wide, name, value)
    monkeypatch.setattr(triton_block_step, "WIDE_ROWS", B)
    monkeypatch.setattr(triton_block_step, "WIDE_WIDTH", 1)
    check_triton_against_the_reference(triton_block_step, B, n, H, N2, R, Fh, output, outer)


@pytest.mark.parametrize("ff", [2, 0])
def test_trace_and_skips_are_the_unet_levels_blocks_stepped_one_by_one_float64(ff):
    """trace[k] is the input of residual block k and trace[K] the result (a U-Net's down path), and skips[K − 1 − j]
    is added after block j (its up path): against a U-Net SaShiMi's blocks stepped one by one."""
    model = Sashimi(1, 256, vocab_size=256, d_model=8, n_layers=2, pool=[2], ff=ff, unet=True,
                    layer_options={"d_state": 8}).double().eval()
    blocks = model.down[0]["blocks"]
    stack = FusedStack(blocks, with_ff=ff > 0)
    K = len(blocks)
    h, states = torch.randn(2, 8, dtype=torch.float64), [torch.randn(2, 8, 4, dtype=torch.complex128)
                                                         for _ in stack.layers()]
    skips = torch.randn(K, 2, 8, dtype=torch.float64)
    trace = torch.empty(K + 1, 2, 8, dtype=torch.float64)
    with torch.no_grad():
        y, new = block_step(h, states, stack.weights(), trace=trace, skips=skips)
        ref, inputs, ref_states = h, [], []
        for j, (block, state) in enumerate(zip(blocks, [s for x in states for s in ([x, None] if ff else [x])])):
            inputs.append(ref)
            ref, state = block.step(ref, state)
            ref = ref + skips[K - 1 - j]
            ref_states.append(state)
    assert rel_err(y, ref) < 1e-12 and rel_err(trace[K], ref) < 1e-12
    assert all(rel_err(trace[k], x) < 1e-12 for k, x in enumerate(inputs))
    assert all(rel_err(a, b) < 1e-12 for a, b in zip(new, ref_states[::2 if ff else 1]))


@pytest.mark.triton
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("Fh,outer", [(32, False), (0, True)])
def test_triton_trace_and_skips_match_the_reference(monkeypatch, wide, Fh, outer):
    """Both Triton versions (one program per row; four kernels per layer) against the reference with a trace and
    skips: float32, rel < 1e-5, in place."""
    triton_block_step = pytest.importorskip("ssmkit.ops.triton_block_step")
    monkeypatch.setattr(triton_block_step, "WIDE_ROWS", 2 if wide else 0)
    monkeypatch.setattr(triton_block_step, "WIDE_WIDTH", 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    w = random_weights(3, 12, 4, 1, Fh, "glu")
    w = BlockWeights(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(w).items()})
    K = 3 * (2 if Fh else 1)
    h, skips = torch.randn(2, 12, device=device), torch.randn(K, 2, 12, device=device)
    states = [torch.randn(2, 12, 4, dtype=torch.complex64, device=device) for _ in range(3)]
    ref_states, ref_trace = [torch.empty_like(x, device="cpu") for x in states], torch.empty(K + 1, 2, 12)
    trace = torch.empty(K + 1, 2, 12, device=device)
    ref = block_step_torch(h.cpu(), [x.cpu() for x in states], ref_states, _cpu(w), outer, None, ref_trace,
                           skips.cpu())
    y = triton_block_step.block_step_triton(h, states, states, w, outer, None, trace, skips)
    assert rel_err(y.cpu(), ref) < 1e-5 and rel_err(trace.cpu(), ref_trace) < 1e-5
    assert all(rel_err(a.cpu(), b) < 1e-5 for a, b in zip(states, ref_states))


def _cpu(w: BlockWeights) -> BlockWeights:
    return BlockWeights(**{k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in vars(w).items()})


def test_add_is_summed_into_the_input_float64():
    """block_step(h, add=a) is block_step(h + a): the stack's output and states, with and without ``outer``."""
    w = random_weights(2, 8, 4, 1, 16, "glu")
    w = BlockWeights(**{k: v.double() if isinstance(v, torch.Tensor) else v for k, v in vars(w).items()})
    h, a = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    states = [torch.randn(3, 8, 4, dtype=torch.complex128) for _ in range(2)]
    for outer in (False, True):
        y, new = block_step(h, states, w, outer=outer, add=a)
        ref, ref_new = block_step(h + a, states, w, outer=outer)
        assert torch.equal(y, ref) and all(torch.equal(x, r) for x, r in zip(new, ref_new))


def test_bad_inputs_are_named():
    w = random_weights(2, 8, 4, 1, 16, "glu")
    with pytest.raises(ValueError, match=r"trace: expected \(5, 1, 8\)"):
        block_step(torch.randn(1, 8), [torch.zeros(1, 8, 4, dtype=torch.complex64)] * 2, w,
                   trace=torch.empty(4, 1, 8))
    with pytest.raises(ValueError, match="add: expected"):
        block_step(torch.randn(1, 8), [torch.zeros(1, 8, 4, dtype=torch.complex64)] * 2, w, add=torch.randn(2, 8))
    with pytest.raises(ValueError, match="h: expected"):
        block_step(torch.randn(1, 9), [torch.zeros(1, 8, 4, dtype=torch.complex64)] * 2, w)
    with pytest.raises(ValueError, match="states: expected 2"):
        block_step(torch.randn(1, 8), [torch.zeros(1, 8, 4, dtype=torch.complex64)], w)
    w.ff2_b = torch.randn(2, 9)
    with pytest.raises(ValueError, match="ff2_b"):
        block_step(torch.randn(1, 8), [torch.zeros(1, 8, 4, dtype=torch.complex64)] * 2, w)


@pytest.mark.parametrize("layer,ff,unet", [("s4", 2, False), ("s4d", 0, False), ("s4", 2, True), ("s4d", 0, True)])
def test_sashimi_fused_levels_give_the_plain_steps(layer, ff, unet, monkeypatch):
    """The whole model stepped with its levels fused (the op's reference on a CPU, which a CPU now takes; Triton on the
    GPU) gives the outputs of stepping block by block (fused_step off), float32, over two pooling cycles; the states
    are written in place, which shows the fused path was taken, only when the layers ask for it (generate does). A
    U-Net's down levels keep their blocks' inputs in a trace that its up levels add (ops.block_step)."""
    model = sashimi(layer, ff, dtype=torch.float32, unet=unet)
    x = torch.randint(0, 256, (2, 12))

    def run(fused: bool, in_place: bool):
        model.fused_step = fused
        for m in model.layers:
            m.step_in_place = in_place
        state, outs = model.default_state(2), []
        with torch.no_grad():
            for t in range(x.shape[1]):
                before = [s.clone() if isinstance(s, torch.Tensor) else s for s in state]
                out, new = model.step(x[:, t], state)
                outs.append(out)
                changed = [not torch.equal(a, b) for a, b in zip(state, before)
                           if isinstance(a, torch.Tensor) and a.is_complex()]
                assert any(changed) == (fused and in_place)
                state = new
        return torch.stack(outs, 1)

    plain = run(False, False)
    assert rel_err(run(True, False), plain) < 1e-5
    calls = []  # which fused steps kept a trace or added skips
    monkeypatch.setattr(sashimi_module, "block_step",
                        lambda *a, **kw: calls.append((kw.get("trace") is not None, kw.get("skips") is not None))
                        or block_step(*a, **kw))
    assert rel_err(run(True, True), plain) < 1e-5
    assert ((True, False) in calls and (False, True) in calls) == unet  # a U-Net's down and up levels fused too


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("layer,batch,unet", [("s4", 1, False), ("s4", 3, False), ("s4d", 2, False), ("s4", 1, True),
                                              ("s4", 3, True)])
def test_fused_generation_on_the_gpu_samples_what_the_forward_pass_computes(layer, batch, unet):
    """SC09's widths (64, 128, 256; N = 64), two blocks per level: generation under its CUDA graph, with the levels
    fused (Triton) and block by block, gives the forward pass's logits of the tokens it drew (float32, rel < 1e-4);
    also for the U-Net, whose down levels' traces its up levels add."""
    from ssmkit.models import generate
    model = Sashimi(1, 256, vocab_size=256, d_model=64, n_layers=2, pool=[4, 4], layer=layer, unet=unet,
                    layer_options={"n_ssm": 1} if layer == "s4" else {}).cuda().eval()
    prompt = torch.randint(0, 256, (batch, 5), device="cuda")
    for fused in (True, False):
        model.fused_step = fused
        tokens, logits = generate(model, prompt, 60, seed=1)
        with torch.no_grad():
            full = model(tokens[:, :64])[:, 4:64]
        assert rel_err(logits, full) < 1e-4, fused
