"""A/B of the chunk length T of the chunked convolution (layers/chunk_parts.py CHUNK): an S4D and an S4 layer
forward + backward at several lengths, with T = 64 (shipped) and T = 128, after checking each T against the torch
reference. Longer chunks halve the chunk states (S per T steps) that the kernels move, and double the Toeplitz
product per sample. A GPU benchmark, not a test.

    python benchmarks/chunk_length.py [--lengths 4096,16384,65536] [--chunks 64,128] [--bf16]

Layers as benchmarks/speed.py (B=16, H=256, N=64, GELU + Linear(H→2H) + GLU, float32 with TF32 off, or under bf16
autocast with --bf16, where the Toeplitz products are cheaper against the states' traffic); a table last.
"""
from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from ssmkit.layers import chunk_parts
from speed import B, H, N, backend, fwd_bwd, ours


def check(kind: str, L: int = 4096 - 37) -> float:
    """Largest relative difference of y and the parameter gradients, chunked against the torch backend (FFT)."""
    layer = ours(kind, 4096).cuda()
    u = torch.randn(2, L, H, device="cuda")
    results = {}
    for be in ("torch", None):
        layer.zero_grad()
        with backend(be):
            y = layer(u)[0]
        y.square().mean().backward()
        results[be] = [y.detach()] + [p.grad.clone() for p in layer.parameters()]
    return max(((a - b).norm() / b.norm()).item() for a, b in zip(results[None], results["torch"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="4096,16384,65536")
    p.add_argument("--chunks", default="64,128")
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    lengths, chunks = [int(v) for v in a.lengths.split(",")], [int(v) for v in a.chunks.split(",")]
    default, rows = chunk_parts.CHUNK, {}
    for T in chunks:
        chunk_parts.CHUNK = T
        for kind in ("S4D", "S4"):
            try:
                err = check(kind)
                print(f"T={T} {kind}: max rel difference to the torch reference {err:.1e}", flush=True)
                for L in lengths:
                    u = torch.randn(B, L, H, device="cuda", requires_grad=True)
                    g = torch.randn(B, L, H, device="cuda")
                    rows[T, kind, L] = do_bench(fwd_bwd(ours(kind, L).cuda(), u, g, a.bf16), warmup=25, rep=100,
                                                return_mode="median")
                    print(f"T={T} {kind} L={L}: {rows[T, kind, L]:.2f} ms", flush=True)
            except Exception as e:  # a chunk length the kernels cannot compile for (shared memory, registers)
                print(f"T={T} {kind} failed: {str(e).splitlines()[0][:160]}", flush=True)
    chunk_parts.CHUNK = default
    print(f"\n{torch.cuda.get_device_name()}, {'bf16' if a.bf16 else 'float32'}, fwd+bwd ms\n| layer | L | " + " | ".join(f"T={T}" for T in chunks)
          + " |\n|---|---|" + "---|" * len(chunks))
    for kind in ("S4D", "S4"):
        for L in lengths:
            print(f"| {kind} | {L} | " + " | ".join(f"{rows[T, kind, L]:.2f}" if (T, kind, L) in rows else "failed"
                                                  for T in chunks) + " |")


if __name__ == "__main__":
    main()
