"""The integer helpers of kernel launches (grids, tile widths), in plain Python.

Triton 3.6 defines ``triton.cdiv`` and ``triton.next_power_of_2`` as constexpr functions, and a call from host code
goes through their wrapper: ~3 µs of host time each where the arithmetic takes ~0.1 (measured on this machine's CPU),
and a training step of an SSM layer computes ~25 of them, while at L = 1k that step waits on its host (docs/speed.md).
"""
from __future__ import annotations


def cdiv(x: int, y: int) -> int:
    """⌈x / y⌉ for integers, y > 0 (triton.cdiv's value)."""
    return (x + y - 1) // y


def next_power_of_2(n: int) -> int:
    """The smallest power of 2 at least n, for n ≥ 1 (triton.next_power_of_2's value; 0 for n = 0, as there)."""
    return 1 << (n - 1).bit_length() if n > 0 else 0
