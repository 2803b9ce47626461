"""A SaShiMi level's residual blocks stepped as one op (ops.block_step): the weights packed once per parameter
version, and the test of whether a stack can take that path.

A stack fuses when its blocks are n × [Residual(SSMConv)] or n × [Residual(SSMConv), Residual(FeedForward)], every
SSM layer has one output channel, a fused activation, a GLU / linear / no output map and a recurrence with a
structured step (S4's DPLR, S4D's and the other diagonal systems: kernels/step_form.py), and the step runs in float32
without gradients or dropout, on CUDA by the op's Triton backend, or on a CPU by its torch reference: there the
stack's O(N) step forms in a few batched ops beat each block's own step (SaShiMi SC09-size generation on 2 cores,
`benchmarks/sashimi_generation.py --cpu`: 243-272 against 109-143 samples/s at batch 1, 1,984-2,305 against
1,114-1,155 at batch 16, 2026-12-06).
Anything else takes the blocks' own step, with the same result.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers.conv import SSMConv
from ..layers.norms import ScalarLayerNorm
from ..layers.param_versions import Derived, values_key
from ..ops import BlockWeights, backend
from ..ops.block_step import OUTPUTS
from ..ops.chunkconv_act import ACTIVATIONS as FUSED_ACTIVATIONS


def _ssm_layer_fuses(layer: nn.Module) -> bool:
    return (isinstance(layer, SSMConv) and layer.channels == 1 and not layer.bidirectional
            and layer.activation_name in FUSED_ACTIVATIONS and layer.output_name in OUTPUTS
            and layer.kernel.real_dtype == torch.float32 and hasattr(layer._recurrence(1.0), "lowrank_step_form"))


def _ff_fuses(net: nn.Sequential) -> bool:
    kinds = [type(m) for m in net]
    return (kinds in ([nn.Linear, nn.GELU, nn.Identity, nn.Linear], [nn.Linear, nn.GELU, nn.Dropout, nn.Linear])
            and net[1].approximate == "none")


def _norm(norm: nn.Module) -> torch.Tensor:
    """(γ; β; m) (3, H) of ops.block_step for a LayerNorm (m = 0) or a ScalarLayerNorm (γ = s, β = 0)."""
    if isinstance(norm, ScalarLayerNorm):
        return torch.stack([norm.s.expand(norm.d), norm.s.new_zeros(norm.d), norm.m.expand(norm.d)])
    return torch.stack([norm.weight, norm.bias, torch.zeros_like(norm.bias)])


def _norms_fuse(norms: list[nn.Module]) -> bool:
    """One kind of norm for the whole stack, one ε: affine LayerNorms with a bias, or ScalarLayerNorms."""
    def kind(n):
        if isinstance(n, ScalarLayerNorm):
            return "scalar", n.eps
        if isinstance(n, nn.LayerNorm) and n.elementwise_affine and n.bias is not None:
            return "layer", n.eps
        return None
    kinds = {kind(n) for n in norms}
    return len(kinds) == 1 and None not in kinds


def _output(layer: SSMConv) -> nn.Linear | None:
    return None if layer.output_name == "none" else layer.output[0] if layer.output_name == "glu" else layer.output


class FusedStack:
    """One stack of residual blocks (a ModuleList of models.sashimi.Residual): whether a step can take the fused op
    (``fuses``), and its packed weights (``weights``), packed again when a parameter or buffer changes."""

    def __init__(self, blocks: nn.ModuleList, with_ff: bool):
        self.blocks, self.with_ff = blocks, with_ff
        self._weights = Derived()  # the packed weights, packed again when a parameter or buffer changes

    def layers(self) -> list[nn.Module]:
        return [b.layer for b in self.blocks][::2 if self.with_ff else 1]

    def fuses(self, h: torch.Tensor) -> bool:
        """Whether a step of h (B, H) takes the fused op (it changes only with the module's mode and settings)."""
        if (torch.is_grad_enabled() or self.blocks.training or h.dtype != torch.float32 or len(self.blocks) == 0
                or not (h.device.type == "cpu" or backend("block_step", h.device) == "triton")):
            return False
        norms = [b.norm for b in self.blocks]
        ffs = [b.layer for b in self.blocks][1::2] if self.with_ff else []
        layers = self.layers()
        return (all(_ssm_layer_fuses(layer) for layer in layers) and all(_ff_fuses(f.net) for f in ffs)
                and len({(layer.activation_name, layer.output_name) for layer in layers}) == 1
                and _norms_fuse(norms))

    def weights(self) -> BlockWeights:
        return self._weights.get(lambda: values_key([*self.blocks.parameters(), *self.blocks.buffers()]), self._pack)

    @torch.no_grad()
    def _pack(self) -> BlockWeights:
        blocks = list(self.blocks)
        ssm_blocks = blocks[::2] if self.with_ff else blocks
        layers = [b.layer for b in ssm_blocks]
        outs = [_output(layer) for layer in layers]
        ff = {}
        if self.with_ff:
            ff_blocks = blocks[1::2]
            ff = dict(norm2=torch.stack([_norm(b.norm) for b in ff_blocks]),
                      ff1_w=torch.stack([b.layer.net[0].weight for b in ff_blocks]),
                      ff1_b=torch.stack([b.layer.net[0].bias for b in ff_blocks]),
                      ff2_w=torch.stack([b.layer.net[-1].weight for b in ff_blocks]),
                      ff2_b=torch.stack([b.layer.net[-1].bias for b in ff_blocks]))
        return BlockWeights(
            norm1=torch.stack([_norm(b.norm) for b in ssm_blocks]),
            ssm=torch.stack([layer._recurrence(1.0).lowrank_step_form().planes() for layer in layers]
                            ).to(layers[0].D.dtype),
            D=torch.stack([layer.D[0] for layer in layers]),
            out_w=None if outs[0] is None else torch.stack([o.weight for o in outs]),
            out_b=None if outs[0] is None else torch.stack([o.bias for o in outs]),
            norm2=ff.get("norm2"), ff1_w=ff.get("ff1_w"), ff1_b=ff.get("ff1_b"), ff2_w=ff.get("ff2_w"),
            ff2_b=ff.get("ff2_b"), activation=layers[0].activation_name, output=layers[0].output_name,
            eps=ssm_blocks[0].norm.eps)
