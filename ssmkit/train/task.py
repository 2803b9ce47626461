"""How a dataset is scored: the loss the trainer minimizes and the metric it reports and selects checkpoints by."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.registry import IGNORE


class Task:
    """How a dataset is scored. classify / lm: cross-entropy, accuracy (higher is better); regress: squared error,
    RMSE (lower is better); impute: the model returns its per-entry error (a diffusion model's noise prediction
    error) and y is the observation mask: squared error on the missing entries (y = 0), MSE (lower is better). An lm
    dataset with ``metric = "bits"`` (audio) is scored by its negative log-likelihood in bits per sample, loss / ln 2
    (lower is better), as audio models are compared. Sums are over targets (a sample's label, a position's token, a
    regression value, or a missing entry); lm targets equal to IGNORE are left out of the loss, the metric and the
    count."""

    def __init__(self, dataset):
        self.kind = getattr(dataset, "task", "classify")
        self.metric = {"regress": "rmse", "impute": "mse"}.get(self.kind) or getattr(dataset, "metric", "acc")
        if self.metric not in ("acc", "rmse", "mse", "bits") or (self.metric == "bits" and self.kind != "lm"):
            raise ValueError(f"metric: a {self.kind} dataset is scored by acc (or bits for lm), got {self.metric!r}")
        self.label = {"rmse": "RMSE", "acc": "accuracy", "bits": "NLL (bits per sample)", "mse": "MSE"}[self.metric]
        self.maximize = self.metric == "acc"  # accuracy up; the errors and the NLL down

    def sums(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(summed loss, summed metric numerator, number of scored targets); the numerator counts correct
        predictions, or sums squared errors."""
        if self.kind == "regress":
            sse = (out.float() - y.float()).square().sum()
            return sse, sse.detach(), torch.full((), y.numel(), device=y.device)  # made on the device: no copy
        if self.kind == "impute":
            missing = 1 - y.float()
            sse = (out.float().square() * missing).sum()
            return sse, sse.detach(), missing.sum()
        logits, y = out.float().reshape(-1, out.shape[-1]), y.reshape(-1)
        scored = y != IGNORE
        loss = F.cross_entropy(logits, y, reduction="sum", ignore_index=IGNORE)
        if self.metric == "bits":
            return loss, loss.detach() / math.log(2), scored.sum()
        return loss, ((logits.argmax(-1) == y) & scored).sum(), scored.sum()

    def value(self, metric_sum: float, n: float) -> float:
        return math.sqrt(metric_sum / n) if self.metric == "rmse" else metric_sum / n

    def better(self, a: float, b: float | None) -> bool:
        return b is None or (a > b if self.maximize else a < b)

    def format(self, v: float) -> str:
        return f"{v:6.1%}" if self.metric == "acc" else f"{v:.4f}"
