"""Compute primitives with one signature and several backends (see dispatch.py).

cauchy, vandermonde: the kernel sums of DPLR and diagonal SSMs (chunked, bounded memory, custom backward; Triton
on CUDA).
fftconv: the long causal / two-sided convolution; fftconv_nd: its N-D form with a separable kernel (S4ND).
scan: the linear recurrence x_k = a_k x_{k−1} + b_k by a parallel associative scan (S5).
chunkconv, chunk_scan: the causal convolution with a state-space kernel by chunked state passing (no FFT);
chunkconv_act: the same, batch-first, with the layer's activation fused. ssm_step: one fused recurrent step;
draw: the next token, written in place (draw_head: from a model's last features, through its LayerNorm and Linear);
linear_glu: a layer's GLU output map in one op; block_step: one step of a whole stack of residual SSM blocks
(SaShiMi's levels at small batch); scalar_norm: the official S4 code's scalar LayerNorm (SaShiMi's blocks);
window_norm: BatchNorm with the statistics of each row's first positions (padded LRA batches at one length);
power_rows: the rows M^j b and c M^j of a dense system's powers (S4's chunk matrices); dplr_system (its reference
in kernels/dplr.py): S4's bilinear Ā in real form and B̄, on a GPU one program per channel.
"""
from .block_step import BlockWeights, block_step
from .cauchy import cauchy
from .chunk_scan import chunk_scan
from .chunkconv import chunkconv
from .chunkconv_act import ChunkPart, chunkconv_act
from .draw import draw, draw_head
from .dispatch import available, backend, implementation, register
from .fftconv import fftconv
from .fftconv_nd import fftconv_nd
from .linear_glu import linear_glu
from .scalar_norm import scalar_norm
from .power_rows import power_rows
from .scan import scan
from .step import ssm_step
from .vandermonde import vandermonde
from .window_norm import window_norm

try:  # the GPU kernels: optional, JIT-compiled by Triton on first use
    import triton  # noqa: F401
except ImportError:
    triton = None
if triton is not None:
    from . import (triton_block_step, triton_cauchy, triton_chunk_scan, triton_chunkconv,  # noqa: F401
                   triton_dplr_system, triton_draw, triton_linear_glu, triton_power_rows, triton_scalar_norm,
                   triton_scan, triton_step, triton_vandermonde, triton_window_norm)

__all__ = ["cauchy", "vandermonde", "fftconv", "fftconv_nd", "scan", "chunkconv", "chunk_scan", "chunkconv_act",
           "ChunkPart", "ssm_step", "block_step", "BlockWeights", "draw", "draw_head", "linear_glu", "scalar_norm",
           "window_norm", "power_rows", "register", "implementation", "backend", "available"]
