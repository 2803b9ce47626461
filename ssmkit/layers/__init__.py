"""Sequence layers to drop into a model: (B, L, H) -> (B, L, H), with step() for recurrent use; S4ND for N-D inputs
(B, *spatial, H)."""
from .attention import MultiHeadAttention
from .ckconv import CKConv
from .conv import SSMConv
from .diagonal import DLR, DSS, EMA, S4D
from .gss import GSS
from .liquid import LiquidS4
from .mega import Mega
from .output_only import OutputOnly
from .pool import DownPool, UpPool
from .registry import LAYERS, layer, register_layer
from .s4 import S4
from .s4nd import S4ND
from .s5 import S5
from .sgconv import SGConv
from .stack_parts import stacked_parts

__all__ = ["SSMConv", "S4", "S4D", "S4ND", "DSS", "DLR", "S5", "GSS", "MultiHeadAttention", "SGConv", "EMA", "Mega",
           "LiquidS4", "OutputOnly", "CKConv", "DownPool", "UpPool", "LAYERS", "layer", "register_layer",
           "stacked_parts"]
