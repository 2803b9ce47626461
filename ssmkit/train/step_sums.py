"""The sums of each training step (loss, metric, scored targets), read from the device without waiting for it.

``.item()`` on a CUDA tensor waits for every kernel queued before it. Reading each micro-batch's loss (and testing it)
made the host wait for the GPU twice per step, and the GPU wait for the host while it queued the next step's
kernels, so a short step (ListOps, L = 1k) took the host's time plus the GPU's. Here a step's sums stay on the device,
are copied behind the step's kernels into pinned host memory (non_blocking, with an event recorded after the copy)
and read once that copy is done, at most ``lag`` steps later, while the host queues the steps after it. A non-finite
loss still stops the run with one line, within ``lag`` steps of the step that made it (the parameters may have taken
those steps; the checkpoints on disk predate them).
"""
from __future__ import annotations

import math
from collections import deque

import torch


class StepSums:
    """push each step's sums (a (3,) float64 tensor: loss, metric numerator, scored targets) with its info (step,
    epoch, lr); push and finish return the (info, [loss, metric, targets]) of the steps read so far, in order."""

    def __init__(self, lag: int = 2):
        self.lag, self.pending = lag, deque()

    def push(self, info, sums: torch.Tensor) -> list:
        if sums.is_cuda:
            host = torch.empty(sums.shape, dtype=sums.dtype, pin_memory=True)
            host.copy_(sums, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
        else:
            host, done = sums, None
        self.pending.append((info, host, done))
        return self._read(keep=self.lag)

    def finish(self) -> list:
        """Every step not read yet (waits for the device)."""
        return self._read(keep=0)

    def _read(self, keep: int) -> list:
        """Read the oldest steps while more than ``keep`` are pending (waiting for them) or their copy is done."""
        out = []
        while self.pending:
            info, host, done = self.pending[0]
            if len(self.pending) <= keep and done is not None and not done.query():
                break
            if done is not None:
                done.synchronize()
            self.pending.popleft()
            loss, metric, count = host.tolist()
            if not math.isfinite(loss):
                step, epoch = info[:2]
                raise FloatingPointError(f"epoch {epoch}: the loss became {loss} (step {step}); lower lr or ssm_lr")
            out.append((info, [loss, metric, count]))
        return out
