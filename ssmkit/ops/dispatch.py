"""One signature, several backends: pick the implementation of an op for the tensors at hand.

The torch reference is registered for every op and is the truth in tests. A GPU backend registers itself under the
name "triton". Choice: ``SSMKIT_BACKEND=torch|triton`` forces one (asking for a backend that the op lacks, or that
cannot run on the tensors' device, is an error: no slow path is taken without a word); unset, an op takes "triton"
when its tensors are on CUDA and a Triton version is registered, else "torch". Triton versions register themselves
when the triton package is importable (ops/__init__.py).
"""
from __future__ import annotations

import os
from typing import Callable

import torch

BACKENDS = ("torch", "triton")
_registry: dict[str, dict[str, Callable]] = {}


def recording() -> bool:
    """Whether torch.compile, torch.export, ONNX export or the JIT tracer is recording the call: then only torch ops,
    and nothing that reads tensor values on the host."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def host_reads(t: torch.Tensor) -> bool:
    """Whether a check may read t's values on the host: t on a CPU (on a GPU the read would wait for the device at
    every call, and a CUDA graph's capture refuses it) and torch.compile not tracing (a value read is not traced)."""
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def register(op: str, backend: str) -> Callable[[Callable], Callable]:
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")

    def wrap(fn: Callable) -> Callable:
        _registry.setdefault(op, {})[backend] = fn
        return fn

    return wrap


def backend(op: str, device: torch.device) -> str:
    """The name of the backend that runs ``op`` for tensors on ``device`` (see the module docstring)."""
    impls = _registry[op]
    forced = os.environ.get("SSMKIT_BACKEND")
    if forced:
        if forced not in BACKENDS:
            raise ValueError(f"SSMKIT_BACKEND: expected one of {BACKENDS}, got {forced!r}")
        if forced not in impls:
            raise RuntimeError(f"SSMKIT_BACKEND={forced}: op {op!r} has no {forced} implementation "
                               f"(it has {sorted(impls)})")
        if forced == "triton" and device.type != "cuda":
            raise RuntimeError(f"SSMKIT_BACKEND=triton: op {op!r} got tensors on {device}, Triton needs CUDA")
        return forced
    return "triton" if device.type == "cuda" and "triton" in impls else "torch"


def implementation(op: str, device: torch.device) -> Callable:
    """The function that runs ``op`` for tensors on ``device``."""
    return _registry[op][backend(op, device)]


def reference(op: str) -> Callable:
    """The torch implementation of ``op`` (a faster backend's fallback for inputs it does not take)."""
    return _registry[op]["torch"]


def available(op: str) -> list[str]:
    return sorted(_registry.get(op, {}))
