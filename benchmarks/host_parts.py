"""The host's time of each piece of a short step, on shapes so small that the GPU never holds it up: what a 1k step
that waits on its host is made of.

    python benchmarks/host_parts.py

Each row: the host's time (µs) to issue one call (forward + backward where it says so) onto an idle GPU, the median
of 30 (host_time.py's times). The pieces: one torch launch, one allocation, one copy, one Triton launch (the GLU
forward, through Triton's binder and as its compiled kernel called directly, which skips the binding), the chunked
convolution (ops.chunkconv_act) and the fused output map (ops.linear_glu) alone, the chunk matrices' graphs
(layers/chunk_parts.py), and S4 / S4D layers eager and with cuda_graph. A benchmark, not a test.
"""
from __future__ import annotations

import torch

from host_time import times  # benchmarks/host_time.py
from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from speed import fresh  # benchmarks/speed.py
import ssmkit
from ssmkit.layers.chunk_parts import GraphedParts, build_parts
from ssmkit.ops import ChunkPart, chunkconv_act, linear_glu
from ssmkit.ops.grid_math import cdiv
from ssmkit.ops.triton_linear_glu import GLU_BACKWARD_TILE, _glu_forward, _glu_forward_kernel

B, L, H, N = 1, 128, 16, 16


def fwd_bwd(f, *leaves):
    """f()'s forward and backward, the leaves' gradients cleared first (speed.py's fresh)."""
    return fresh(lambda: f().sum().backward(), *leaves)


def main() -> None:
    require_cuda()
    dev = "cuda"
    x, y = torch.randn(B, L, H, device=dev), torch.randn(B, L, H, device=dev)
    z = torch.randn(B * L, 2 * H, device=dev)
    s4d = ssmkit.S4D(d_model=H, d_state=N, init="lin").to(dev)
    parts = [t.detach().requires_grad_() for t in build_parts(s4d.kernel, s4d.D, False, 1.0)]
    u = torch.randn(B, L, H, device=dev, requires_grad=True)
    w = s4d.output[0].weight
    b = s4d.output[0].bias
    graphed = GraphedParts()
    BM, BN, warps = GLU_BACKWARD_TILE
    grid = (cdiv(B * L, BM), cdiv(H, BN))
    out = torch.empty(B * L, H, device=dev)
    compiled = _glu_forward_kernel[grid](z, out, B * L, N=H, BM=BM, BN=BN, num_warps=warps)
    rows = {
        "torch add (one launch)": lambda: x + y,
        "torch.empty": lambda: torch.empty(B, L, H, device=dev),
        "Triton GLU kernel[grid] (one launch, Triton's binder)": lambda: _glu_forward_kernel[grid](
            z, out, B * L, N=H, BM=BM, BN=BN, num_warps=warps),
        "Triton GLU compiled kernel called directly": lambda: compiled[grid + (1,)](z, out, B * L, H, BM, BN),
        "copy_ (one cudaMemcpyAsync)": lambda: x.copy_(y),
        "Triton GLU forward (one launch)": lambda: _glu_forward(z),
        "chunkconv_act forward, no grad": lambda: chunkconv_act(u.detach(), [ChunkPart(*parts)], "gelu"),
        "chunkconv_act forward + backward": fwd_bwd(lambda: chunkconv_act(u, [ChunkPart(*parts)], "gelu"), u, *parts),
        "linear_glu forward + backward": fwd_bwd(lambda: linear_glu(u.reshape(-1, H), w, b), u, w, b),
        "chunk matrices' graphs, forward + backward": fwd_bwd(
            lambda: sum(t.float().sum() for t in graphed(s4d.kernel, s4d.D, False, 1.0)), *s4d.parameters()),
    }
    for kind in ("S4D", "S4"):
        for cuda_graph in (False, True):
            layer = (ssmkit.S4(d_model=H, d_state=N, l_max=L, cuda_graph=cuda_graph) if kind == "S4" else
                     ssmkit.S4D(d_model=H, d_state=N, init="lin", cuda_graph=cuda_graph)).to(dev)
            rows[f"{kind} layer forward + backward{', cuda_graph' if cuda_graph else ''}"] = fwd_bwd(
                lambda layer=layer: layer(u)[0], u, *layer.parameters())
    print(f"host µs per call (B={B}, L={L}, H={H}, N={N}; median of 30)")
    print("| piece | host µs |\n|---|---|")
    for name, call in rows.items():
        print(f"| {name} | {times(call)[1] * 1e3:.1f} |", flush=True)


if __name__ == "__main__":
    main()
