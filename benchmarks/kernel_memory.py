"""Peak memory and time of an S4 / S4D kernel, forward and backward, against the naive (H, N/2, L) intermediate.

    python benchmarks/kernel_memory.py s4d 256 64 65536 [cpu|cuda]

Prints one line: kind, sizes, seconds, peak memory growth (host RSS on CPU, allocator peak on CUDA), naive size.
"""
import resource
import sys
import time

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit


def main(kind: str, H: int, N: int, L: int, device: str = "cpu") -> None:
    if device == "cuda":
        require_cuda()
    torch.manual_seed(0)
    kernel = (ssmkit.kernels.DPLRKernel(H, N, l_max=L) if kind == "s4" else ssmkit.kernels.S4DKernel(H, N)).to(device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    kernel(L).square().sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds = time.perf_counter() - start
    naive = H * (N // 2) * L * 8
    print(f"{kind} H={H} N={N} L={L} {device}: {seconds:.2f} s, peak growth {(peak - base) / 2**20:.0f} MiB, "
          f"naive (H, N/2, L) complex64 intermediate {naive / 2**20:.0f} MiB")


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:5]), *sys.argv[5:])
