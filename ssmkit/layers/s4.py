"""The S4 layer: a DPLR (HiPPO) SSM kernel inside SSMConv."""
from __future__ import annotations

from ..kernels.dplr import DPLRKernel
from .conv import SSMConv, block_options, kernel_channels
from .factory import factory_kwargs
from .registry import register_layer


@register_layer("s4")
class S4(SSMConv):
    """S4 (v2): DPLR state matrix from HiPPO, bilinear discretization, Cauchy + Woodbury kernel.

    d_model H; d_state N (stored as N/2 conjugate pairs; an odd N keeps (N−1)/2 and drops the real mode of the
    HiPPO matrix, as the official nplr); init legs | legt | fout | mixtures 'legs+fout';
    l_max: the length C̃ is trained for (None: the plain C is the parameter); longer inputs take the longer kernel of
    the same C̃ through the plain C, exactly as the recurrence gives it; rate (in forward/step): sample
    the continuous kernel at Δ·rate; B_clip: Im B̃ clipped at init (2 as the official code; None: exact HiPPO);
    n_ssm: independent (Λ, P, B) behind the H channels (None: one per channel; 1: shared, the official LRA configs);
    bandlimit: zero C for the modes at or above bandlimit/2 cycles per sample at the base Δ (S4ND's anti-aliasing);
    dt_transform: Δ = exp(log_dt) (default) or softplus(inv_dt) (the official configs'); dt_lr: Δ's learning rate,
    "ssm" (ssm_lr), None (the model's) or a number; length_correction: with l_max, C starts as the C̃ of a random
    plain C (True, the official default) or as the random draw itself (False, as ViS4mer's S4); share_lambda: one Λ
    for every channel, P and B still per copy; tie_pq=False: A = Λ − P Q* with Q trained apart, per channel, in the
    ordinary group (both as ViS4mer's S4, kernels/dplr.py); C_lr: C's own learning rate (None: the model's), with
    the ordinary weight decay, as the official configs whose layer lr is one number (s4-cifar, s4-pathfinder);
    basis: the phase of each mode's HiPPO eigenvector, first_positive or official (the official code's signs,
    hippo.nplr): the same kernels, B̃ and P̃ with other signs (the official Liquid-S4 form reads them).
    Block options (channels, bidirectional, activation, output, dropout, tie_dropout, conv_dropout, recompute,
    cuda_graph) as SSMConv.
    """

    @factory_kwargs
    @block_options()
    def __init__(self, d_model: int, d_state: int = 64, *, channels: int = 1, bidirectional: bool = False,
                 init: str = "legs", l_max: int | None = None, real_transform: str = "exp", dt_min: float = 1e-3,
                 dt_max: float = 1e-1, ssm_lr: float | None = 1e-3, B_clip: float | None = 2.0,
                 n_ssm: int | None = None, bandlimit: float | None = None, dt_transform: str = "exp",
                 dt_lr: float | None | str = "ssm", length_correction: bool = True, share_lambda: bool = False,
                 tie_pq: bool = True, C_lr: float | None = None, basis: str = "first_positive", **block):
        kernel = DPLRKernel(d_model, d_state, kernel_channels(channels, bidirectional), init, l_max, real_transform,
                            dt_min, dt_max, ssm_lr, B_clip, n_ssm, bandlimit, dt_transform, dt_lr, length_correction,
                            share_lambda, tie_pq, C_lr, basis)
        super().__init__(kernel, channels=channels, bidirectional=bidirectional, l_max=l_max, **block)
