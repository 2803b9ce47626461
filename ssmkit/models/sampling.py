"""Choosing the next token on the device, with no host synchronization (so a whole token step fits a CUDA graph).

A token is drawn by inverse-CDF sampling with one uniform number per row, all drawn before generation starts:

    p = softmax(filter(logits) / T),   token = min{ i : Σ_{j<=i} p_j > U · Σ_j p_j },   U ~ Uniform[0, 1)

which is an exact draw from p. Filters: top-k (keep the k largest), top-p (keep the smallest head of the sorted
distribution whose mass reaches p), and the CTRL repetition penalty (a logit of a token already seen is divided by
the penalty when positive, multiplied when negative). Temperature 0 is greedy. A row that has emitted ``eos`` emits
``eos`` from then on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


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
    """Draws tokens for a batch, keeping the seen-token mask and the finished rows as device tensors."""

    def __init__(self, options: SamplingOptions, batch: int, vocab: int, device, prompt: torch.Tensor):
        options.check(vocab)
        self.options = options
        self.seen = None
        if options.repetition_penalty != 1.0:
            self.seen = torch.zeros(batch, vocab, dtype=torch.bool, device=device)
            self.seen.scatter_(1, prompt, True)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)

    def __call__(self, logits: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        """logits (B, V), uniform (B,) in [0, 1) -> token ids (B,)."""
        if self.options.temperature == 0:
            token = logits.argmax(-1)
        else:
            p = filter_logits(logits, self.options, self.seen).softmax(-1)
            cdf = p.cumsum(-1)
            token = torch.searchsorted(cdf, (uniform * cdf[:, -1])[:, None], right=True)[:, 0]
            token = token.clamp(max=logits.shape[-1] - 1)
        if self.options.eos is not None:
            token = torch.where(self.finished, torch.full_like(token, self.options.eos), token)
            self.finished |= token == self.options.eos
        if self.seen is not None:
            self.seen.scatter_(1, token[:, None], True)
        return token

    def buffers(self) -> list[torch.Tensor]:
        return [t for t in (self.seen, self.finished) if t is not None]
