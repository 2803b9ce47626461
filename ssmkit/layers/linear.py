"""Linear maps through ops.linear (on the GPU the bias gradient is summed in one read of the output gradient) while
the modules stay torch's own nn.Linear: tools that find Linears by their exact type (torch.ao's quantize_dynamic,
say) still find them, and a module that replaces one runs as itself."""
from __future__ import annotations

import torch
from torch import nn

from ..ops import linear


def forward_linear(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x): by ops.linear over the module's weight and bias where the module is an nn.Linear that computes as
    nn.Linear does (its forward not overridden, weight_norm's parametrization allowed) and has no forward hooks; any
    other module (quantized, quantization-aware, hooked, not a Linear) runs as itself."""
    if (isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward and not module._forward_hooks
            and not module._forward_pre_hooks):
        return linear(x, module.weight, module.bias)
    return module(x)


def sequential(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """net(x), its Linears by forward_linear."""
    for module in net:
        x = forward_linear(module, x)
    return x
