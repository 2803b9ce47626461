"""The backward of a custom autograd Function whose forward runs in float32 outside autocast (the SSM math: the
layers leave autocast before it, layers/conv.py), run without autocast too.

Autocast applies to whatever runs inside its context, a backward included: ``loss.backward()`` called inside
``torch.autocast`` (or a CUDA graph whose backward was captured there) would run such a backward's float32 products
(matmul, baddbmm) in bf16 or fp16, where the forward ran them in float32. S4's chunk matrices are formed by products
of powers of the transition (kernels/chunked.py), whose backward in bf16 moved the log Δ gradient several times
further from float32's than the eager bf16 step's.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable

import torch


def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """torch.autocast(device_type, enabled=False) where autocast is on there now, else nothing. Entering and leaving
    an autocast context costs ~5 µs of the host's time (2 CPU cores here), about a kernel launch's, and a training
    step at L = 1k waits on its host; most backwards and float32 forwards run with autocast already off."""
    return torch.autocast(device_type, enabled=False) if torch.is_autocast_enabled(device_type) else \
        contextlib.nullcontext()


def float32_backward(backward: Callable) -> Callable:
    """``backward(ctx, *grads)`` with autocast off on the CUDA and CPU devices, whatever context it is called in."""
    @functools.wraps(backward)
    def run(ctx, *grads):
        with autocast_off("cuda"), autocast_off("cpu"):
            return backward(ctx, *grads)
    return run
