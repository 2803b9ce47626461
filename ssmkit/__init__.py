"""ssmkit: structured state space sequence models (S4 and its 2022 family) for PyTorch.

Layers take u (B, L, H) and return (y (B, L, H), next_state); see ssmkit.layers.SSMConv for the contract. S4ND takes
images and other N-D inputs channels last, (B, *spatial, H).
"""
import os
import sys

if "torch" not in sys.modules:  # read once, where torch's OpenMP runtime (libgomp) starts: only before torch loads
    # Idle OpenMP threads spin 300,000 times before they sleep: on a CPU that another torch process is using, the two
    # spin against each other. Two epochs of the main job (`python -m ssmkit train epochs=2`) took 87 s beside such a
    # process on 2 cores, and 11 s with 10,000 spins; alone the whole job takes the same 24-26 s either way (and the
    # layer tests the same 11 s). A value the user set is kept.
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from . import export, functional, hippo, kernels, ops  # noqa: E402
from .layers import (DLR, DSS, EMA, GSS, LAYERS, S4, S4D, S4ND, S5, CKConv, LiquidS4, Mega,  # noqa: E402
                     MultiHeadAttention, OutputOnly, SGConv, SSMConv, layer, register_layer, stacked_parts)
from .train import ModelGraphs  # noqa: E402
from .train import load_model as load  # noqa: E402

__version__ = "0.1.0"
__all__ = ["S4", "S4D", "S4ND", "DSS", "DLR", "S5", "GSS", "MultiHeadAttention", "SGConv", "EMA", "Mega", "LiquidS4",
           "SSMConv", "CKConv", "OutputOnly", "layer", "register_layer", "LAYERS", "load", "export", "functional",
           "hippo", "kernels", "ops", "stacked_parts", "ModelGraphs"]
