"""The fused stack step (ops.block_step, Triton) on its own: µs per call at the shapes of SaShiMi's SC09 levels (8
layers, N = 64, FF ×2, GLU output; widths 64, 128, 256), by block configuration, and with parts of the stack left out
(at the first configuration) to see where the time goes. Beside each time, the weights it reads and the rate that
makes. Calls are replayed from a CUDA graph (the op's host-side launch costs more than a small stack's kernel). A
benchmark, not a test.

    python benchmarks/block_step.py [--batches 1,16] [--configs 16:64:8,16:32:4]

Each width is first timed with the four-kernels-per-layer version for few rows (config "wide",
ops/triton_block_step_wide.py), then with the one-program kernel in each configuration.

A configuration is warps:row_elems:ssm_elems (ops/triton_block_step.py: warps per program, weights per thread in a
block of a matrix-vector product, (channel, mode) pairs per thread in a block of the SSM stage).
"""
from __future__ import annotations

import argparse

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from ssmkit.ops import BlockWeights
from ssmkit.ops import triton_block_step as tb

N2, R, LAYERS = 32, 1, 8


def weights(H: int, n: int, ff: bool, output: str, rank: int) -> BlockWeights:
    F = 2 * H
    O = {"glu": 2 * H, "none": 0}[output]
    r = lambda *s: torch.randn(*s, device="cuda") / s[-1] ** 0.5  # noqa: E731
    return BlockWeights(norm1=r(n, 3, H), ssm=0.1 * r(n, 3 + 2 * rank, H, N2, 2), D=r(n, H),
                        out_w=r(n, O, H) if O else None, out_b=r(n, O) if O else None,
                        norm2=r(n, 3, H) if ff else None, ff1_w=r(n, F, H) if ff else None,
                        ff1_b=r(n, F) if ff else None, ff2_w=r(n, H, F) if ff else None,
                        ff2_b=r(n, H) if ff else None, activation="gelu", output=output, eps=1e-5)


def set_config(config: str) -> None:
    """warps:row_elems:ssm_elems (module docstring)."""
    tb.WARPS, tb.ROW_ELEMS, tb.SSM_ELEMS = (int(x) for x in config.split(":"))


def time_us(w: BlockWeights, B: int, calls: int = 20, reps: int = 10) -> float:
    H = w.ssm.shape[2]
    h = torch.randn(B, H, device="cuda")
    states = [torch.zeros(B, H, N2, dtype=torch.complex64, device="cuda") for _ in range(w.ssm.shape[0])]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # compilation and the address table, outside the graph
            tb.block_step_triton(h, states, states, w, True)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            tb.block_step_triton(h, states, states, w, True)
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / (reps * calls)


def nbytes(w: BlockWeights) -> int:
    return sum(t.numel() * 4 for t in vars(w).values() if isinstance(t, torch.Tensor))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,16")
    p.add_argument("--configs", default="16:64:8,16:32:4,8:64:8,32:32:4")
    a = p.parse_args()
    require_cuda()
    parts = {"full": dict(n=LAYERS, ff=True, output="glu", rank=R), "1 layer": dict(n=1, ff=True, output="glu", rank=R),
             "no FF": dict(n=LAYERS, ff=False, output="glu", rank=R),
             "SSM only": dict(n=LAYERS, ff=False, output="none", rank=R),
             "SSM only, R=0": dict(n=LAYERS, ff=False, output="none", rank=0)}
    rows, configs = [], a.configs.split(",")
    for B in (int(b) for b in a.batches.split(",")):
        for H in (64, 128, 256):
            # the four-kernels-per-layer version (ops/triton_block_step_wide.py) on the full stack, for the
            # thresholds WIDE_ROWS and WIDE_WIDTH; the configurations below then time the one-program kernel
            tb.WIDE_ROWS, tb.WIDE_WIDTH = B, 1
            w = weights(H, **parts["full"])
            us = time_us(w, B)
            rows.append((B, H, "wide", "full", us, nbytes(w) / us / 1e3))
            print(rows[-1], flush=True)
            tb.WIDE_ROWS = 0
            for config in configs:
                set_config(config)
                for name, kw in parts.items():
                    if config != configs[0] and name != "full":
                        continue
                    w = weights(H, **kw)
                    us = time_us(w, B)
                    rows.append((B, H, config, name, us, nbytes(w) / us / 1e3))
                    print(rows[-1], flush=True)
    print("\n| batch | width | config | stack | µs per call | weights read, GB/s |")
    print("|---|---|---|---|---|---|")
    for B, H, config, name, us, rate in rows:
        print(f"| {B} | {H} | {config} | {name} | {us:.1f} | {rate:.0f} |")


if __name__ == "__main__":
    main()
