"""Compute primitives with one signature and several backends (see dispatch.py).

cauchy, vandermonde: the kernel sums of DPLR and diagonal SSMs (chunked, bounded memory, custom backward).
fftconv: the long causal / two-sided convolution.
scan: the linear recurrence x_k = a_k x_{k−1} + b_k by a parallel associative scan (S5).
"""
from .cauchy import cauchy
from .dispatch import available, implementation, register
from .fftconv import fftconv
from .scan import scan
from .vandermonde import vandermonde

__all__ = ["cauchy", "vandermonde", "fftconv", "scan", "register", "implementation", "available"]
