"""A/B of the tile of the chunked convolution's data kernels (ops/triton_chunkconv.py TILE: most chunks per program,
warps): the fused op chunkconv_act forward + backward at the shapes of the LRA experiments, each variant timed beside
the floor of the bytes its kernels must move. Sets the module's TILE per variant, then restores it.

    python benchmarks/chunk_tiles.py [--shapes 32x2000x256,16x16384x256,16x65536x256] [--N 4] [--causal]
        [--autocast]

A table last: ms per forward + backward (bidirectional S4D-like parts, state N; --causal: one causal part), the
fastest TILE per shape, and the TILE that is closest to the best over all shapes (a line `TILE = ...` for
ops/triton_chunkconv.py). --autocast: as a layer under bf16 autocast runs the op (TF32 products, bf16 output and
bf16 output gradient), e.g. `--causal --autocast --N 64 --shapes 16x16384x256,16x65536x256` for speed.py's layers.
"""
from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from speed import fresh  # benchmarks/speed.py
import ssmkit
from ssmkit.ops import ChunkPart, chunkconv_act
from ssmkit.ops import triton_chunkconv
from ssmkit.layers.chunk_parts import build_parts

VARIANTS = [(16, 4), (32, 4), (64, 4), (32, 8), (64, 8), (16, 2), (128, 8)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="32x2000x256,16x16384x256,16x65536x256")
    p.add_argument("--N", type=int, default=4)
    p.add_argument("--causal", action="store_true")
    p.add_argument("--autocast", action="store_true")
    a = p.parse_args()
    require_cuda()
    default = triton_chunkconv.TILE
    rows = {}
    for shape in a.shapes.split(","):
        B, L, H = (int(v) for v in shape.split("x"))
        both = not a.causal
        layer = ssmkit.S4D(d_model=H, d_state=a.N, bidirectional=both).cuda()
        mats = [t.detach().requires_grad_() for t in build_parts(layer.kernel, layer.D, both, 1.0)]
        parts = [ChunkPart(*mats[4 * k:4 * k + 4], reverse=k == 1) for k in range(len(mats) // 4)]
        u = torch.randn(B, L, H, device="cuda", requires_grad=True)
        g = torch.randn(B, L, H, device="cuda")
        precision, out_dtype = ("tf32", torch.bfloat16) if a.autocast else ("float32", None)
        if a.autocast:  # the bf16 gradient a Linear hands back for the op's channel-major output, channel-major
            g = g.permute(2, 0, 1).contiguous().to(torch.bfloat16).permute(1, 2, 0)
        run = fresh(lambda: chunkconv_act(u, parts, "gelu", precision, out_dtype).backward(g), u, *mats)
        for tile in VARIANTS:
            triton_chunkconv.TILE = tile
            try:
                rows[shape, tile] = do_bench(run, warmup=25, rep=100, return_mode="median")
            except Exception as e:  # a tile the compiler cannot fit (shared memory, registers)
                rows[shape, tile] = float("inf")
                print(shape, tile, "failed:", str(e).splitlines()[0][:120], flush=True)
            print(shape, tile, f"{rows[shape, tile]:.3f} ms", flush=True)
        triton_chunkconv.TILE = default
    shapes = a.shapes.split(",")
    kind = ("causal" if a.causal else "bidirectional") + (", under autocast (TF32, bf16 out)" if a.autocast else "")
    print(f"\nchunkconv_act fwd+bwd ms, {kind}, N = {a.N}, {torch.cuda.get_device_name()}\n| TILE | " +
          " | ".join(shapes) + " |\n|---|" + "---|" * len(shapes))
    for tile in VARIANTS:
        print(f"| {tile} | " + " | ".join(f"{rows[s, tile]:.3f}" for s in shapes) + " |")
    print("fastest:", {s: min(VARIANTS, key=lambda t: rows[s, t]) for s in shapes})
    # the choice: the least total time relative to each shape's best
    best = min(VARIANTS, key=lambda t: sum(rows[s, t] / min(rows[s, v] for v in VARIANTS) for s in shapes))
    print(f"TILE = {best}")


if __name__ == "__main__":
    main()
