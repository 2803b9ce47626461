"""Diagonal SSM layers: S4D, DSS and DLR kernels inside SSMConv."""
from __future__ import annotations

from ..kernels.diag import S4DKernel
from ..kernels.dlr import DLRKernel
from ..kernels.dss import DSSKernel
from ..kernels.ema import EMAKernel
from .conv import SSMConv, block_options, kernel_channels
from .factory import factory_kwargs
from .registry import register_layer


@register_layer("s4d")
class S4D(SSMConv):
    """S4D: diagonal A, Vandermonde kernel. init lin (the default, as the official S4D code) | inv | legs | real |
    random; disc zoh | bilinear; real_transform exp | relu | softplus | sigmoid | none; B_clip (legs init: Im B̃
    clipped, 2 as the official code); n_ssm, bandlimit, dt_transform, dt_lr and C_lr as S4. Block options as SSMConv."""

    @factory_kwargs
    @block_options()
    def __init__(self, d_model: int, d_state: int = 64, *, channels: int = 1, bidirectional: bool = False,
                 init: str = "lin", disc: str = "zoh", real_transform: str = "exp", l_max: int | None = None,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, ssm_lr: float | None = 1e-3, B_clip: float | None = 2.0,
                 n_ssm: int | None = None, bandlimit: float | None = None, dt_transform: str = "exp",
                 dt_lr: float | None | str = "ssm", C_lr: float | None = None, **block):
        kernel = S4DKernel(d_model, d_state, kernel_channels(channels, bidirectional), init, disc, real_transform,
                           dt_min, dt_max, ssm_lr, B_clip, n_ssm, bandlimit, dt_transform, dt_lr, C_lr)
        super().__init__(kernel, channels=channels, bidirectional=bidirectional, l_max=l_max, **block)


@register_layer("dss")
class DSS(SSMConv):
    """DSS: diagonal state spaces with d_state complex modes, variant softmax | exp (softmax normalizes over l_max,
    or over the input length when l_max is None; its recurrent views need l_max). learn_dt=False keeps Δ at its
    initial value; sep_dt: separate Δ for Re and Im of λ; n_ssm: Λ shared by the channels (1) or not (None);
    dt_lr: Δ's learning rate ("ssm": ssm_lr, None: the model's, or a number; the official LRA commands set 0.02 for
    ListOps and IMDB and 1e-4 for Path-X, model.layer.lr.log_dt); epsilon: softmax's regularizer of 1/(λ·S), 1e-7
    as the official (0: the plain formula). Defaults and output map (Linear) as the official DSS."""

    @factory_kwargs
    @block_options(output="linear")
    def __init__(self, d_model: int, d_state: int = 64, *, channels: int = 1, bidirectional: bool = False,
                 variant: str = "softmax", l_max: int | None = None, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 learn_dt: bool = True, sep_dt: bool = True, n_ssm: int | None = 1, ssm_lr: float | None = 1e-3,
                 dt_lr: float | None | str = "ssm", epsilon: float = 1e-7, **block):
        kernel = DSSKernel(d_model, d_state, kernel_channels(channels, bidirectional), variant, l_max, dt_min,
                           dt_max, ssm_lr, learn_dt, sep_dt, n_ssm, dt_lr, epsilon)
        super().__init__(kernel, channels=channels, bidirectional=bidirectional, l_max=l_max, **block)


@register_layer("dlr")
class DLR(SSMConv):
    """DLR: diagonal linear RNN x_k = Λ x_{k−1} + u_k with |Λ| <= 1 parameterized directly (no Δ); d_state complex
    modes; n_ssm: Λ shared by the channels (1) or not (None). Defaults and output map (Linear) as the official DLR."""

    @factory_kwargs
    @block_options(output="linear")
    def __init__(self, d_model: int, d_state: int = 1024, *, channels: int = 1, bidirectional: bool = False,
                 l_max: int | None = None, dt_min: float = 1e-4, dt_max: float = 1e-1, n_ssm: int | None = 1,
                 ssm_lr: float | None = 1e-4, **block):
        kernel = DLRKernel(d_model, d_state, kernel_channels(channels, bidirectional), dt_min, dt_max, ssm_lr, n_ssm)
        super().__init__(kernel, channels=channels, bidirectional=bidirectional, l_max=l_max, **block)


@register_layer("ema")
class EMA(SSMConv):
    """Mega's damped EMA alone: y = act(EMA(u) + ω ⊙ u) with ω = D; defaults give Mega's X' = SiLU(EMA(X) + ωX).
    ndim: the EMA expansion h; bidirectional adds a second EMA, with its own parameters, read backwards from lag 0;
    truncation (bidirectional only): the kernels' first lags kept, the rest zero (kernels/ema.py)."""

    @factory_kwargs
    @block_options(activation="silu", output="none")
    def __init__(self, d_model: int, ndim: int = 16, *, bidirectional: bool = False, l_max: int | None = None,
                 ssm_lr: float | None = None, truncation: int | None = None, **block):
        kernel = EMAKernel(d_model, ndim, bidirectional, ssm_lr, truncation)
        super().__init__(kernel, channels=1, bidirectional=bidirectional, l_max=l_max, **block)
