"""SSM parameters -> convolution kernel K (C, H, L) and the matching discrete recurrence. One file per family."""
from .base import SSMKernel
from .diag import DiagonalSystem, S4DKernel, diag_kernel
from .dlr import DLRKernel
from .dplr import DPLRKernel, dplr_kernel
from .dss import DSSKernel

__all__ = ["SSMKernel", "DiagonalSystem", "S4DKernel", "DSSKernel", "DLRKernel", "DPLRKernel", "diag_kernel",
           "dplr_kernel"]
