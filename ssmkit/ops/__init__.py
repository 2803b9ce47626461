"""Compute primitives with one signature and several backends (see dispatch.py).

cauchy, vandermonde: the kernel sums of DPLR and diagonal SSMs (chunked, bounded memory, custom backward).
fftconv: the long causal / two-sided convolution.
"""
from .cauchy import cauchy
from .dispatch import available, implementation, register
from .fftconv import fftconv
from .vandermonde import vandermonde

__all__ = ["cauchy", "vandermonde", "fftconv", "register", "implementation", "available"]
