"""How a dataset is scored: the loss the trainer minimizes and the metric it reports and selects checkpoints by."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.registry import IGNORE


class Task:
    """How a dataset is scored. classify / lm: cross-entropy, accuracy (higher is better); regress: squared error,
    RMSE (lower is better). Sums are over targets (a sample's label, a position's token, or a regression value);
    lm targets equal to IGNORE are left out of the loss, the metric and the count."""

    def __init__(self, dataset):
        self.kind = getattr(dataset, "task", "classify")
        self.metric = "rmse" if self.kind == "regress" else "acc"
        self.label = "RMSE" if self.kind == "regress" else "accuracy"

    def sums(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(summed loss, summed metric numerator, number of scored targets); the numerator counts correct
        predictions, or sums squared errors."""
        if self.kind == "regress":
            sse = (out.float() - y.float()).square().sum()
            return sse, sse.detach(), torch.tensor(y.numel())
        logits, y = out.float().reshape(-1, out.shape[-1]), y.reshape(-1)
        scored = y != IGNORE
        loss = F.cross_entropy(logits, y, reduction="sum", ignore_index=IGNORE)
        return loss, ((logits.argmax(-1) == y) & scored).sum(), scored.sum()

    def value(self, metric_sum: float, n: float) -> float:
        return math.sqrt(metric_sum / n) if self.metric == "rmse" else metric_sum / n

    def better(self, a: float, b: float | None) -> bool:
        return b is None or (a < b if self.metric == "rmse" else a > b)

    def format(self, v: float) -> str:
        return f"{v:.4f}" if self.metric == "rmse" else f"{v:6.1%}"
