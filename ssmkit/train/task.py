"""How a dataset is scored: the loss the trainer minimizes and the metric it reports and selects checkpoints by."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.registry import IGNORE


class Task:
    """How a dataset is scored. classify / lm: cross-entropy, accuracy (higher is better); regress: squared error,
    RMSE (lower is better). An lm dataset with ``metric = "bits"`` (audio) is scored by its negative log-likelihood in
    bits per token, loss / ln 2 (lower is better), as audio models are compared. Sums are over targets (a sample's
    label, a position's token, or a regression value); lm targets equal to IGNORE are left out of the loss, the metric
    and the count."""

    def __init__(self, dataset):
        self.kind = getattr(dataset, "task", "classify")
        self.metric = "rmse" if self.kind == "regress" else getattr(dataset, "metric", "acc")
        if self.metric not in ("acc", "rmse", "bits") or (self.metric == "bits" and self.kind != "lm"):
            raise ValueError(f"metric: a {self.kind} dataset is scored by acc (or bits for lm), got {self.metric!r}")
        self.label = {"rmse": "RMSE", "acc": "accuracy", "bits": "NLL (bits per token)"}[self.metric]

    def sums(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(summed loss, summed metric numerator, number of scored targets); the numerator counts correct
        predictions, or sums squared errors."""
        if self.kind == "regress":
            sse = (out.float() - y.float()).square().sum()
            return sse, sse.detach(), torch.tensor(y.numel())
        logits, y = out.float().reshape(-1, out.shape[-1]), y.reshape(-1)
        scored = y != IGNORE
        loss = F.cross_entropy(logits, y, reduction="sum", ignore_index=IGNORE)
        if self.metric == "bits":
            return loss, loss.detach() / math.log(2), scored.sum()
        return loss, ((logits.argmax(-1) == y) & scored).sum(), scored.sum()

    def value(self, metric_sum: float, n: float) -> float:
        return math.sqrt(metric_sum / n) if self.metric == "rmse" else metric_sum / n

    def better(self, a: float, b: float | None) -> bool:
        return b is None or (a > b if self.metric == "acc" else a < b)

    def format(self, v: float) -> str:
        return f"{v:6.1%}" if self.metric == "acc" else f"{v:.4f}"
