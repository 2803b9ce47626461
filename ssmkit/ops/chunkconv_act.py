"""An SSM layer's convolution and activation in one op, batch-first: act(Σ_parts K_part ∗ u), u and output (B, L, H).

Each part is a causal SSM in chunked form (kernels/chunked.py) given as the three matrices of its chunk products,
    ToepT (H, T, T): Toep(Kt + D δ)ᵀ,  Win (H, T, S),  WoutT (H, S, T),  and A (H, S, S) real or (H, S/2) complex,
and a ``reverse`` flag: a reversed part reads u backwards and writes its output backwards (the anti-causal half of a
bidirectional layer, whose kernel then has K_0 = 0). The parts are summed before the activation. Every part cuts the
sequence into the same chunks, whole chunks ending at its last step (the input padded in front): the output does not
depend on where the chunks fall, but the gradients of the chunk matrices, which over-parameterize the kernel, do.

The torch reference composes ops.chunkconv's products (channel-major) with transposes; the Triton version
(ops/triton_chunkconv.py) fuses the chunk products with the activation and its derivative. Activations: gelu (erf),
silu, relu, id. precision "float32" (the default) multiplies in float32 accuracy; "tf32" lets the Triton version's
products within chunks and the chunk matrices' gradients run on TF32 tensor cores (10-bit mantissas, ~5e-4 relative;
the SSM layers ask for it under bf16/fp16 autocast, whose own products round to 8 bits). The state passed between
chunks stays float32 either way, and the torch reference is float32 (or float64) whatever the precision.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .chunkconv import products
from .dispatch import implementation, register

ACTIVATIONS = ("gelu", "silu", "relu", "id")
PRECISIONS = ("float32", "tf32")


@dataclass
class ChunkPart:
    ToepT: torch.Tensor
    Win: torch.Tensor
    WoutT: torch.Tensor
    A: torch.Tensor
    reverse: bool = False


def activate(y: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "gelu":
        return F.gelu(y)
    if activation == "silu":
        return F.silu(y)
    if activation == "relu":
        return torch.relu(y)
    return y


def activation_grad(y: torch.Tensor, activation: str) -> torch.Tensor:
    """act'(y), elementwise."""
    if activation == "gelu":
        return 0.5 * (1 + torch.erf(y * 0.5 ** 0.5)) + y * torch.exp(-0.5 * y * y) * (2 * torch.pi) ** -0.5
    if activation == "silu":
        s = torch.sigmoid(y)
        return s * (1 + y * (1 - s))
    if activation == "relu":
        return (y > 0).to(y.dtype)
    return torch.ones_like(y)


@register("chunkconv_act", "torch")
def chunkconv_act_torch(u: torch.Tensor, parts: list[ChunkPart], activation: str, precision: str = "float32",
                        out_dtype: torch.dtype | None = None) -> torch.Tensor:
    x = u.permute(2, 0, 1).to(parts[0].Win.dtype)  # (H, B, L)
    pad = (-x.shape[-1]) % parts[0].Win.shape[1]
    y = 0
    for p in parts:
        if p.reverse:  # chunks aligned as the forward part's (the padding at the end of the reversed sequence)
            y_p = products(F.pad(x, (pad, 0)).flip(-1), p.ToepT, p.Win, p.WoutT, p.A)[..., 0].flip(-1)[..., pad:]
        else:
            y_p = products(x, p.ToepT, p.Win, p.WoutT, p.A)[..., 0]
        y = y + y_p
    y = activate(y.permute(1, 2, 0), activation)
    return y if out_dtype is None else y.to(out_dtype)


def chunkconv_act(u: torch.Tensor, parts: list[ChunkPart], activation: str = "gelu", precision: str = "float32",
                  out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """u (B, L, H) -> act(Σ_parts K_part ∗ u) (B, L, H), in the parts' dtype (float32 or float64), or rounded once to
    ``out_dtype`` (under autocast, the dtype the next GEMM reads: the Triton version writes it directly)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if u.dim() != 3 or u.shape[-1] != parts[0].Win.shape[0]:
        raise ValueError(f"u: expected shape (B, L, H={parts[0].Win.shape[0]}), got {tuple(u.shape)}")
    return implementation("chunkconv_act", u.device)(u, parts, activation, precision, out_dtype)
