"""Choosing the next token on the device, with no host synchronization (so a whole token step fits a CUDA graph).

A token is drawn by inverse-CDF sampling with one uniform number per row, all drawn before generation starts:

    p = softmax(filter(logits) / T),   token = min{ i : Σ_{j<=i} p_j > U · Σ_j p_j },   U ~ Uniform[0, 1)

which is an exact draw from p. Filters: top-k (keep the k largest), top-p (keep the smallest head of the sorted
distribution whose mass reaches p), and the CTRL repetition penalty (a logit of a token already seen is divided by
the penalty when positive, multiplied when negative). Temperature 0 is greedy. A row that has emitted ``eos`` emits
``eos`` from then on. The draw itself, with the writes of a step, is ops.draw (one Triton kernel on the GPU).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..ops import draw, draw_head


@dataclass
class SamplingOptions:
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    eos: int | None = None

    def check(self, vocab: int | None = None) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature: expected a finite number >= 0, got {self.temperature}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 1):
            raise ValueError(f"top_k: expected None or an integer >= 1, got {self.top_k!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: expected a probability in (0, 1], got {self.top_p}")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0):
            raise ValueError(f"repetition_penalty: expected a finite number > 0, got {self.repetition_penalty}")
        if self.eos is not None and vocab is not None and not 0 <= self.eos < vocab:
            raise ValueError(f"eos: expected a token id in [0, {vocab}), got {self.eos}")


def filter_logits(logits: torch.Tensor, options: SamplingOptions, seen: torch.Tensor | None) -> torch.Tensor:
    """logits (B, V) -> float32 log-weights after the repetition penalty, temperature, top-k and top-p."""
    logits = logits.float()
    if seen is not None and options.repetition_penalty != 1.0:
        penalized = torch.where(logits > 0, logits / options.repetition_penalty, logits * options.repetition_penalty)
        logits = torch.where(seen, penalized, logits)
    logits = logits / options.temperature
    if options.top_k is not None and options.top_k < logits.shape[-1]:
        kth = logits.topk(options.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        p = sorted_logits.softmax(-1)
        drop = (p.cumsum(-1) - p) >= options.top_p  # mass before this token already reaches top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits


class Sampler:
    """Draws each step's tokens into the loop's buffers (ops.draw), keeping the seen-token mask and the finished rows
    as device tensors; the filters run first when any is set."""

    def __init__(self, options: SamplingOptions, batch: int, vocab: int, device, prompt: torch.Tensor):
        options.check(vocab)
        self.options = options
        self.seen = None
        if options.repetition_penalty != 1.0:
            self.seen = torch.zeros(batch, vocab, dtype=torch.bool, device=device)
            self.seen.scatter_(1, prompt, True)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)
        self.filtered = options.top_k is not None or options.top_p < 1.0 or self.seen is not None

    def draw(self, logits: torch.Tensor, uniforms: torch.Tensor, t: torch.Tensor, x: torch.Tensor,
             tokens: torch.Tensor, logits_out: torch.Tensor, offset: int = 0) -> None:
        """The tokens of step t + offset from logits (B, V): into x, tokens[t + offset]; the logits into
        logits_out[t + offset] (ops.draw)."""
        o = self.options
        weights, temperature = logits, o.temperature
        if self.filtered:  # the filters apply the temperature themselves (greedy: argmax of the filtered logits)
            weights = filter_logits(logits, replace(o, temperature=o.temperature or 1.0), self.seen)
            temperature = 1.0 if o.temperature else 0.0
        draw(weights, uniforms, t, x, tokens, logits_out, self.finished, temperature, o.eos, offset)
        if self.filtered:
            logits_out.index_copy_(0, t + offset if offset else t, logits[None].to(logits_out.dtype))
        if self.seen is not None:
            self.seen.scatter_(1, x[:, None], True)

    def draw_head(self, h: torch.Tensor, norm: torch.nn.LayerNorm, linear: torch.nn.Linear, uniforms: torch.Tensor,
                  t: torch.Tensor, x: torch.Tensor, tokens: torch.Tensor, logits_out: torch.Tensor,
                  offset: int = 0) -> None:
        """draw() of linear(norm(h)) in one op (ops.draw_head), for a sampler without filters (they need the logits
        first)."""
        if self.filtered:
            raise RuntimeError("Sampler.draw_head: the filters (top-k, top-p, repetition penalty) need draw()")
        draw_head(h, norm, linear, uniforms, t, x, tokens, logits_out, self.finished, self.options.temperature,
                  self.options.eos, offset)

    def buffers(self) -> list[torch.Tensor]:
        return [t for t in (self.seen, self.finished) if t is not None]
