"""Drawing the next token of every row and writing it where a generation loop keeps it — one op per token step.

    p = softmax(logits / temperature),  token = #{ i : Σ_{j<=i} p_j <= U_t · Σ_j p_j }   (inverse CDF; argmax if greedy)

then, for each row b: x[b] = token, tokens[t, b] = token, logits_out[t, b] = logits[b], and with ``eos`` a finished row
emits eos (finished[b] |= token == eos). t = T + offset: T is a one-element device tensor (the step), so the op runs
without a host synchronization inside a CUDA graph, and offset a Python int (the step within a graph's cycle, so that
T need not be advanced at every step). uniforms (n, B) were drawn before the loop. The filters (top-k, top-p, repetition
penalty) live in models/sampling.py, which calls this op only without them.

draw_head is the same draw from a model's last features h (B, D) through its head, a LayerNorm and a Linear:

    logits = W ((h − μ) / √(σ² + ε) ⊙ γ + β) + b          (μ, σ² over the D features of each row)

one op for the three (on the GPU one kernel: a token step's last two launches fewer).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import implementation, register


@register("draw", "torch")
def draw_torch(logits, uniforms, t, x, tokens, logits_out, finished, temperature: float, eos: int | None,
               offset: int = 0):
    t = t + offset if offset else t
    if temperature == 0:
        token = logits.argmax(-1)
    else:
        p = (logits.float() / temperature).softmax(-1)
        cdf = p.cumsum(-1)
        u = uniforms.index_select(0, t)[0]
        token = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)[:, 0].clamp(max=logits.shape[-1] - 1)
    if eos is not None:
        token = torch.where(finished, torch.full_like(token, eos), token)
        finished |= token == eos
    x.copy_(token)
    tokens.index_copy_(0, t, token[None])
    logits_out.index_copy_(0, t, logits[None].to(logits_out.dtype))


def draw(logits: torch.Tensor, uniforms: torch.Tensor, t: torch.Tensor, x: torch.Tensor, tokens: torch.Tensor,
         logits_out: torch.Tensor, finished: torch.Tensor, temperature: float, eos: int | None,
         offset: int = 0) -> None:
    """logits (B, V); uniforms (n, B); t (1,) long; x (B,) long; tokens (n, B) long; logits_out (n, B, V);
    finished (B,) bool; offset an int >= 0. Writes x, tokens[t + offset], logits_out[t + offset] (and finished)."""
    implementation("draw", logits.device)(logits, uniforms, t, x, tokens, logits_out, finished, temperature, eos,
                                          offset)


@register("draw_head", "torch")
def draw_head_torch(h, norm_weight, norm_bias, eps: float, weight, bias, uniforms, t, x, tokens, logits_out, finished,
                    temperature: float, eos: int | None, offset: int = 0):
    logits = F.linear(F.layer_norm(h, h.shape[-1:], norm_weight, norm_bias, eps), weight, bias)
    draw_torch(logits, uniforms, t, x, tokens, logits_out, finished, temperature, eos, offset)


def draw_head(h: torch.Tensor, norm: torch.nn.LayerNorm, linear: torch.nn.Linear, uniforms: torch.Tensor,
              t: torch.Tensor, x: torch.Tensor, tokens: torch.Tensor, logits_out: torch.Tensor, finished: torch.Tensor,
              temperature: float, eos: int | None, offset: int = 0) -> None:
    """draw(linear(norm(h)), …) for h (B, D) (module docstring); the other arguments as draw's."""
    implementation("draw_head", h.device)(h, norm.weight, norm.bias, norm.eps, linear.weight, linear.bias, uniforms,
                                          t, x, tokens, logits_out, finished, temperature, eos, offset)
