"""The SGConv layer: the multi-scale decaying kernel of kernels.sgconv inside SSMConv (FFT convolution, D skip,
activation, output map). Convolutional view only."""
from __future__ import annotations

from ..kernels.sgconv import SGConvKernel
from .conv import SSMConv, block_options, kernel_channels
from .factory import factory_kwargs
from .registry import register_layer


@register_layer("sgconv")
class SGConv(SSMConv):
    """SGConv: multi-scale kernel with parameters O(kernel_dim · log l_max); l_max required; decay α (or [first,
    last]: per channel, as the official decay_min..decay_max, kernels/sgconv.py); kernel_lr (the
    sub-kernels' learning rate, None: the model's); causal or bidirectional. The official GConv's other modes:
    combine 'sum', interpolation 'nearest', init 'cos', init_scale, and power_decay (with decay=None; train_power
    False for its 'fixed' mode). Output map Linear by default, as the official GConv. It has no step(): the kernel is
    not a state space model's."""

    @factory_kwargs
    @block_options(output="linear")
    def __init__(self, d_model: int, l_max: int, *, kernel_dim: int = 64, decay: float | list[float] | None = 0.5,
                 kernel_lr: float | None = 1e-3, channels: int = 1, bidirectional: bool = False,
                 combine: str = "cat", interpolation: str = "linear", init: str = "randn", init_scale: int = 0,
                 power_decay: float | list[float] | None = None, train_power: bool = True, **block):
        kernel = SGConvKernel(d_model, l_max, kernel_channels(channels, bidirectional), kernel_dim, decay, kernel_lr,
                              combine, interpolation, init, init_scale, power_decay, train_power)
        super().__init__(kernel, channels=channels, bidirectional=bidirectional, l_max=l_max, **block)
