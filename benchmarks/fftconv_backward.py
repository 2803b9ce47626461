"""ops.fftconv's written-out backward (real FFTs only) against autograd through rfft / irfft, forward + backward, on
whatever device is there (a CPU by default: `--device cuda` on a GPU). A benchmark, not a test.

    python benchmarks/fftconv_backward.py [--device cpu|cuda] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from ssmkit.ops import fftconv

SHAPES = [(50, 64, 784), (16, 256, 4096), (8, 128, 16384)]  # (B, H, L): smnist-small's layers, then longer


def autograd_fftconv(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """y = K ∗ u by torch.fft's rfft / irfft at 2L, differentiated by autograd, as a user would write it (its backward
    of rfft is a complex FFT of the full spectrum): the baseline here and the GPU issue's "torch.fft" in speed.py."""
    L = u.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(u, n=2 * L)[:, None] * torch.fft.rfft(k, n=2 * L), n=2 * L)[..., :L]


def ms(fn, device: torch.device, reps: int = 5) -> float:
    """The best of two timings of ``reps`` calls, after two warm-up calls."""
    best = float("inf")
    for _ in range(2):
        for _ in range(2):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / reps * 1e3)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    print("| B | H | L | autograd ms | written backward ms | speed-up |\n|---|---|---|---|---|---|")
    for B, H, L in SHAPES:
        u = torch.randn(B, H, L, device=device, requires_grad=True)
        k = torch.randn(1, H, L, device=device, requires_grad=True)
        g = torch.randn(B, 1, H, L, device=device)
        old = ms(lambda: autograd_fftconv(u, k).backward(g), device)
        new = ms(lambda: fftconv(u, k).backward(g), device)
        print(f"| {B} | {H} | {L} | {old:.1f} | {new:.1f} | {old / new:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
