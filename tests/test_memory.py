"""Kernels of long sequences are computed in bounded memory, forward and backward.

Each measurement runs in a fresh process (a clean peak RSS). Going from L to 4L, a kernel that kept the (H, N/2, L)
intermediate would grow by 3/4 of its 4L size; ours grows only by O(H·L) (the kernel, its FFTs and Woodbury terms).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "kernel_memory.py"


def _measure(kind: str, H: int, N: int, L: int) -> tuple[float, float]:
    # a fixed mmap threshold: freed large blocks go back to the OS, so the peak RSS is the peak of live memory
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, str(SCRIPT), kind, str(H), str(N), str(L)], capture_output=True, text=True,
                         check=True, env=env).stdout
    growth, naive = re.search(r"peak growth (\d+) MiB, naive .* intermediate (\d+) MiB", out).groups()
    return float(growth), float(naive)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["s4d", "s4"])
def test_kernel_memory_does_not_grow_with_N_times_L(kind):
    short, naive_short = _measure(kind, 8, 256, 8192)
    long, naive_long = _measure(kind, 8, 256, 32768)
    assert long - short < (naive_long - naive_short) / 2, (short, long, naive_short, naive_long)
