"""ssmkit: structured state space sequence models (S4 and its 2022 family) for PyTorch.

Layers take u (B, L, H) and return (y (B, L, H), next_state); see ssmkit.layers.SSMConv for the contract. S4ND takes
images and other N-D inputs channels last, (B, *spatial, H).
"""
from . import export, functional, hippo, kernels, ops
from .layers import (DLR, DSS, EMA, GSS, LAYERS, S4, S4D, S4ND, S5, CKConv, LiquidS4, Mega, MultiHeadAttention,
                     OutputOnly, SGConv, SSMConv, layer, register_layer, stacked_parts)
from .train import ModelGraphs
from .train import load_model as load

__version__ = "0.1.0"
__all__ = ["S4", "S4D", "S4ND", "DSS", "DLR", "S5", "GSS", "MultiHeadAttention", "SGConv", "EMA", "Mega", "LiquidS4",
           "SSMConv", "CKConv", "OutputOnly", "layer", "register_layer", "LAYERS", "load", "export", "functional",
           "hippo", "kernels", "ops", "stacked_parts", "ModelGraphs"]
