"""Where a layer's forward+backward spends its time on the GPU: torch.profiler's top kernels and CPU ops.

    python benchmarks/profile_layer.py s4:1024:triton s4d:65536:triton:bf16 conv:16384:triton ...

Each spec is layer:L:backend[:bf16] (B=16, H=256, N=64; bf16: under bf16 autocast). Layers: s4, s4d, and conv, the
long convolution alone (S4D's chunk matrices given, ops.chunkconv_act with activation 'id', batch-first); s4parts and
s4dparts, the layer's parameter side alone (layers/chunk_parts.py build_parts, forward and backward, eager: kernel by
kernel, where the layer replays it from CUDA graphs that the profiler shows as one), scaled onto u by one elementwise
product so that the run's backward reaches it (at L = 16k S4's graphed parameter side took 1.6 ms of the layer's
6.4 under bf16 on one H100, S4D's little).
"""
from __future__ import annotations

import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from kernel_events import device_kernels  # benchmarks/kernel_events.py
from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit

B, H, N = 16, 256, 64


def build(kind: str, L: int):
    """A callable u (B, L, H) -> (B, L, H)."""
    if kind == "conv":
        from ssmkit.layers.chunk_parts import build_parts
        from ssmkit.ops import ChunkPart, chunkconv_act
        layer = ssmkit.S4D(d_model=H, d_state=N, init="lin").cuda()
        part = ChunkPart(*(t.detach().requires_grad_() for t in build_parts(layer.kernel, layer.D, False, 1.0)))
        return lambda u: chunkconv_act(u, [part], "id")
    if kind in ("s4parts", "s4dparts"):
        from ssmkit.layers.chunk_parts import build_parts
        layer = (ssmkit.S4(d_model=H, d_state=N, l_max=L) if kind == "s4parts" else
                 ssmkit.S4D(d_model=H, d_state=N, init="lin")).cuda()
        return lambda u: u * sum((torch.view_as_real(t) if t.is_complex() else t).float().mean()
                               for t in build_parts(layer.kernel, layer.D, False, 1.0))
    layer = (ssmkit.S4(d_model=H, d_state=N, l_max=L) if kind == "s4" else
             ssmkit.S4D(d_model=H, d_state=N, init="lin")).cuda()
    return lambda u: layer(u)[0]


def main() -> None:
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    for spec in sys.argv[1:]:
        kind, L, be, *precision = spec.split(":")
        L, bf16 = int(L), precision == ["bf16"]
        os.environ["SSMKIT_BACKEND"] = be
        layer = build(kind, L)
        u = torch.randn(B, L, H, device="cuda", requires_grad=True)
        g = torch.randn(B, L, H, device="cuda")

        def run():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                y = layer(u)
            y.backward(g)
        for _ in range(3):
            run()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
            for _ in range(5):
                run()
            torch.cuda.synchronize()
        events = prof.key_averages()
        kernels = device_kernels(events)
        cuda_total = sum(e.self_device_time_total for e in kernels) / 5 / 1e3
        launches = sum(e.count for e in kernels) / 5
        print(f"\n=== {spec}: GPU busy {cuda_total:.2f} ms/iter, {launches:.0f} kernels/iter ===")
        print(events.table(sort_by="self_device_time_total", row_limit=14, max_name_column_width=60))
        by_shape = sorted((e for e in prof.key_averages(group_by_input_shape=True) if e.self_device_time_total > 0
                           and e.key.startswith("aten::")), key=lambda e: -e.self_device_time_total)[:14]
        print("aten ops by input shape (ms/iter, calls/iter):")
        for e in by_shape:
            print(f"  {e.self_device_time_total / 5e3:7.2f} {e.count / 5:5.1f}  {e.key:28} {str(e.input_shapes)[:90]}")


if __name__ == "__main__":
    main()
