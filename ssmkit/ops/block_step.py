"""One recurrent step of a whole stack of residual SSM blocks in one op: a SaShiMi level at small batch, where a token
step is bound by kernel launches (about eight per block on the plain path) rather than by the weights it reads.

For l = 0 … n−1 (prenorm residual blocks, as models/sashimi.py), h (B, H):

    v = γ_l ⊙ (h − mean h + m_l) / √(var h + ε) + β_l                     the norm: LayerNorm (m = 0) or the scalar one
    x_l ← a_l ⊙ x_l − Σ_r E_l,r · 2Re(V_l,r · x_l) + b_l v            the SSM's structured step (kernels/step_form.py)
    h ← h + out_l(act(Re(c_l · x_l) + D_l ⊙ v))                        out: GLU(W v + β) | W v + β | v
    h ← h + W2_l GELU(W1_l LN(h; γ'_l, β'_l) + β1_l) + β2_l           the FF block, when the stack has them

and h + h_in at the end with ``outer`` (the residual around a SaShiMi level). With ``add`` the stack's input is
h_in = h + add, summed inside the op (SaShiMi's level input, its pending output plus the skip, without a kernel of
its own in a generation step). A U-Net level keeps or adds the values between its blocks: ``trace`` (K + 1, B, H)
receives the input of each of the K residual blocks (K = n, or 2n with the FF blocks) and the result; ``skips``
(K, B, H) is added after the blocks, h ← h + skips[K − 1 − j] after block j (the down path's trace in reverse, as
the official SequenceUNet adds each down module's input after the matching up module). The weights come packed per
stack (BlockWeights, built by models/fused_levels.py);
the states are the layers' own (B, H, N2) complex tensors. The torch reference is the truth in tests; the Triton
version (ops/triton_block_step.py) runs the whole stack in one program per batch row.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..kernels.step_form import LowRankStep
from .chunkconv_act import ACTIVATIONS, activate
from .dispatch import implementation, register

OUTPUTS = ("glu", "linear", "none")


@dataclass
class BlockWeights:
    """A stack's weights, stacked over its n layers, all real of one dtype.

    norm1 (n, 3, H) the SSM blocks' norms (γ; β; m) (a LayerNorm has m = 0, layers/norms.py ScalarLayerNorm γ = s,
    β = 0 and m = m, each broadcast); ssm (n, 3 + 2R, H, N2, 2) LowRankStep.planes(); D (n, H);
    out_w (n, O, H), out_b (n, O) with O = 2H (glu) or H (linear), None for none; the FF blocks' norm2 (n, 3, H),
    ff1_w (n, F, H), ff1_b (n, F), ff2_w (n, H, F), ff2_b (n, H), or None each without FF blocks."""

    norm1: torch.Tensor
    ssm: torch.Tensor
    D: torch.Tensor
    out_w: torch.Tensor | None
    out_b: torch.Tensor | None
    norm2: torch.Tensor | None
    ff1_w: torch.Tensor | None
    ff1_b: torch.Tensor | None
    ff2_w: torch.Tensor | None
    ff2_b: torch.Tensor | None
    activation: str
    output: str
    eps: float

    @property
    def rank(self) -> int:
        return (self.ssm.shape[1] - 3) // 2

    @property
    def has_ff(self) -> bool:
        return self.ff1_w is not None

    def check(self) -> None:
        if self.ssm.dim() != 5 or self.ssm.shape[1] < 3 or (self.ssm.shape[1] - 3) % 2 or self.ssm.shape[4] != 2:
            raise ValueError(f"ssm: expected (n, 3 + 2R, H, N2, 2) planes, got {tuple(self.ssm.shape)}")
        n, _, H, N2, _ = self.ssm.shape
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {self.activation!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output: expected one of {OUTPUTS}, got {self.output!r}")
        O = {"glu": 2 * H, "linear": H, "none": 0}[self.output]
        shapes = {"norm1": (n, 3, H), "D": (n, H)}
        if O:
            shapes.update(out_w=(n, O, H), out_b=(n, O))
        if self.has_ff:
            Fh = self.ff1_w.shape[1]
            shapes.update(norm2=(n, 3, H), ff1_w=(n, Fh, H), ff1_b=(n, Fh), ff2_w=(n, H, Fh), ff2_b=(n, H))
        for name, shape in shapes.items():
            t = getattr(self, name)
            if t is None or tuple(t.shape) != shape or t.dtype != self.ssm.dtype:
                got = "None" if t is None else f"{tuple(t.shape)} {t.dtype}"
                raise ValueError(f"{name}: expected {shape} {self.ssm.dtype}, got {got}")


def _layers(w: BlockWeights):
    """Per layer: its LowRankStep (complex, from the planes)."""
    for planes in w.ssm:
        z = torch.view_as_complex(planes.contiguous())  # (3 + 2R, H, N2): a, b, c, then E_r, V_r
        yield LowRankStep(z[0], z[1], z[2], z[3::2], z[4::2])


def _normed(h: torch.Tensor, norm: torch.Tensor, eps: float) -> torch.Tensor:
    """γ ⊙ (h − mean + m) / √(var + ε) + β over the channels of h (B, H), norm = (γ; β; m) (3, H)."""
    var, mean = torch.var_mean(h, dim=-1, unbiased=False, keepdim=True)
    return norm[0] * (h - mean + norm[2]) * torch.rsqrt(var + eps) + norm[1]


def blocks(w: BlockWeights) -> int:
    """K, the residual blocks of a stack: its n SSM blocks, and as many FF blocks when it has them."""
    return w.ssm.shape[0] * (2 if w.has_ff else 1)


@register("block_step", "torch")
def block_step_torch(h, states, out_states, w: BlockWeights, outer: bool, add=None, trace=None, skips=None):
    h = h if add is None else h + add
    h_in, K, k = h, blocks(w), 0

    def residual(h: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Residual block k: h + delta, its input kept in trace[k], skips[K − 1 − k] added."""
        nonlocal k
        if trace is not None:
            trace[k].copy_(h)
        h = h + delta if skips is None else h + delta + skips[K - 1 - k]
        k += 1
        return h

    for l, (form, x, x_out) in enumerate(zip(_layers(w), states, out_states)):
        v = _normed(h, w.norm1[l], w.eps)
        y, x = form.step(x, v)
        x_out.copy_(x)
        y = activate(y + w.D[l] * v, w.activation)
        if w.output != "none":
            y = F.linear(y, w.out_w[l], w.out_b[l])
            y = F.glu(y, dim=-1) if w.output == "glu" else y
        h = residual(h, y)
        if w.has_ff:
            g = F.gelu(F.linear(_normed(h, w.norm2[l], w.eps), w.ff1_w[l], w.ff1_b[l]))
            h = residual(h, F.linear(g, w.ff2_w[l], w.ff2_b[l]))
    h = h + h_in if outer else h
    if trace is not None:
        trace[K].copy_(h)
    return h


def block_step(h: torch.Tensor, states: list[torch.Tensor], weights: BlockWeights, outer: bool = False,
               out: list[torch.Tensor] | None = None, add: torch.Tensor | None = None,
               trace: torch.Tensor | None = None,
               skips: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(h after the stack (B, H), the next states) for h (B, H) and the layers' states (B, H, N2) complex
    (module docstring). out: where the next states are written (``states`` itself for an update in place), else new
    tensors. add: a second input like h (B, H), the stack then runs on h + add. trace (K + 1, B, H), written, and
    skips (K, B, H), read: a U-Net level's values between its blocks (module docstring)."""
    weights.check()
    n, _, H, N2, _ = weights.ssm.shape
    cdtype = torch.complex128 if weights.ssm.dtype == torch.float64 else torch.complex64
    if h.dim() != 2 or h.shape[1] != H or h.dtype != weights.ssm.dtype:
        raise ValueError(f"h: expected (B, H={H}) {weights.ssm.dtype}, got {tuple(h.shape)} {h.dtype}")
    K = blocks(weights)
    for name, t, shape in (("add", add, tuple(h.shape)), ("trace", trace, (K + 1, *h.shape)),
                           ("skips", skips, (K, *h.shape))):
        if t is not None and (tuple(t.shape) != shape or t.dtype != h.dtype or t.device != h.device):
            raise ValueError(f"{name}: expected {shape} {h.dtype} on {h.device} (h's dtype and device), got "
                             f"{tuple(t.shape)} {t.dtype} on {t.device}")
    shape = (h.shape[0], H, N2)
    if len(states) != n or any(tuple(x.shape) != shape or x.dtype != cdtype for x in states):
        got = [f"{tuple(x.shape)} {x.dtype}" for x in states]
        raise ValueError(f"states: expected {n} tensors of shape {shape} {cdtype}, got {got}")
    if out is None:
        out = [torch.empty_like(x) for x in states]
    elif len(out) != n or any(o.shape != x.shape or o.dtype != x.dtype for o, x in zip(out, states)):
        raise ValueError("out: expected one tensor per state, of its shape and dtype")
    return implementation("block_step", h.device)(h, states, out, weights, outer, add, trace, skips), out
