"""The sums of each training step (loss, metric, scored targets), read from the device without waiting for it.

``.item()`` on a CUDA tensor waits for every kernel queued before it. Reading each micro-batch's loss (and testing it)
made the host wait for the GPU twice per step, and the GPU wait for the host while it queued the next step's
kernels, so a short step (ListOps, L = 1k) took the host's time plus the GPU's. Here a step's sums stay on the device,
are copied behind the step's kernels into pinned host memory (non_blocking, with an event recorded after the copy)
and read ``lag`` steps later, while the host queues the steps after it. A non-finite loss still stops the run with
one line, ``lag`` steps after the step that made it (the parameters may have taken those steps; the checkpoints on
disk predate them).
"""
from __future__ import annotations

import math
from collections import deque

import torch


def sums_dtype(device: torch.device) -> torch.dtype:
    """The dtype the sums are kept in on ``device``: float64, or float32 where the device has no float64 (MPS)."""
    return torch.float32 if device.type == "mps" else torch.float64


def step_sums(loss: torch.Tensor, metric: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Task.sums' (loss, metric numerator, scored targets) as one (3,) tensor on their device, in sums_dtype."""
    dtype = sums_dtype(loss.device)
    return torch.stack([t.detach().to(dtype) for t in (loss, metric, count)])


class StepSums:
    """push each step's sums (a (3,) tensor: loss, metric numerator, scored targets) with its info (step, epoch, lr);
    push returns the steps that are now ``lag`` behind and finish the rest, as (info, [loss, metric, targets]) in
    order. Each step is read exactly ``lag`` pushes after its own, never earlier, so that every process of a
    distributed run reads (and stops at) the same step."""

    def __init__(self, lag: int = 2):
        self.lag, self.pending = lag, deque()

    def push(self, info, sums: torch.Tensor) -> list:
        if sums.is_cuda:
            with torch.cuda.device(sums.device):  # the copy and its event on the stream of the sums' own GPU
                host = torch.empty(sums.shape, dtype=sums.dtype, pin_memory=True)
                host.copy_(sums, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
        else:
            host, done = sums.to("cpu"), None  # a CPU tensor as is; another device's (MPS) read now
        self.pending.append((info, host, done))
        return self._read(keep=self.lag)

    def finish(self) -> list:
        """Every step not read yet (waits for the device)."""
        return self._read(keep=0)

    def _read(self, keep: int) -> list:
        """Read the oldest steps until ``keep`` are pending, waiting for each one's copy."""
        out = []
        while len(self.pending) > keep:
            info, host, done = self.pending.popleft()
            if done is not None:
                done.synchronize()
            loss, metric, count = host.tolist()
            if not math.isfinite(loss):
                step, epoch = info[:2]
                raise FloatingPointError(f"epoch {epoch}: the loss became {loss} (step {step}); lower lr or ssm_lr")
            out.append((info, [loss, metric, count]))
        return out
