"""S4 at large Δ on the GPU: float32 views against float64, and what computing C̃ in float64 costs. Table last.

    PYTHONUNBUFFERED=1 python benchmarks/large_dt_check.py             # CUDA, about 2 minutes on one H100
    python benchmarks/large_dt_check.py --device cpu --small           # the same checks at toy size

Checks: S4 and Liquid-S4 (l_max None, l_max set, l_max set at rate 3), Δ from 0.1 to 1000: the float32 layer on the
device (whatever path forward takes there: the chunked scan on CUDA, the FFT elsewhere), its step view and its chunked
view against the float64 layer on the CPU; and that a training step of S4 on CUDA still runs in CUDA graphs.
Timings (forward + backward, median): S4 with its C̃ conversions in float64 (now) and in the layer's float32 (as
before, by making kernels.dplr.widen the identity), for l_max set (training) and l_max None (C̃ formed per call).
"""
from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from ssmkit.kernels import dplr


def rel(a, b) -> float:
    return ((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm()).item()


def views(layer, u, rate):
    """(forward, step by step over the first 16 positions, two chunks with the state carried) of layer on u."""
    with torch.no_grad():
        y, _ = layer(u, rate=rate)
        state, steps = layer.default_state(u.shape[0]), []
        for t in range(16):
            y_t, state = layer.step(u[:, t], state, rate=rate)
            steps.append(y_t)
        half = u.shape[1] // 2
        y1, state = layer(u[:, :half], layer.default_state(u.shape[0]), rate=rate)
        y2, _ = layer(u[:, half:], state, rate=rate)
    return y, torch.stack(steps, 1), torch.cat([y1, y2], 1)


# float32 accuracy of the three views. On CUDA the convolution is chunked, with powers of Ā in float32: at Δ·rate = 1000
# (eigenvalues near −1) it is 1.8e-4 from float64 (H100), where float64 powers would cost 2 ms per S4 step at L = 1k
TOLERANCE = 2.5e-4


def accuracy(device, small: bool) -> list[tuple]:
    H, N, L = (4, 16, 64) if small else (16, 64, 1024)
    rows = []
    for name in ("s4", "liquid_s4"):
        for l_max, rate in ((None, 1.0), (L, 1.0), (L, 3.0)):
            torch.manual_seed(0)
            layer = ssmkit.layer(name, d_model=H, d_state=N, l_max=l_max).eval()
            u = torch.randn(2, L, H)
            for dt in (0.1, 10.0, 100.0, 1000.0):
                with torch.no_grad():
                    layer.kernel.log_dt.fill_(math.log(dt / rate))
                y64, _ = copy.deepcopy(layer).double()(u.double(), rate=rate)
                y, steps, chunks = views(copy.deepcopy(layer).to(device), u.to(device), rate)
                errors = (rel(y, y64), rel(steps, y64[:, :16]), rel(chunks, y64))
                rows.append((name, str(l_max), rate, dt, *errors, max(errors) < TOLERANCE))
    return rows


def graphs_still_capture(device) -> str:
    if device.type != "cuda":
        return "-"
    layer = ssmkit.S4(64, 64, l_max=1024).to(device)
    u = torch.randn(4, 1024, 64, device=device)
    for _ in range(3):
        layer(u)[0].square().mean().backward()
    parts = getattr(layer, "_graphed_parts", None)
    return "no GraphedParts" if parts is None else ("failed, eager fallback" if parts.failed else "yes")


def timed(fn, device, repeat=10) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def timings(device, small: bool) -> list[tuple]:
    H, N, L, B = (8, 16, 256, 2) if small else (256, 64, 4096, 8)
    rows, wide = [], dplr.widen
    for l_max in (L, None):
        torch.manual_seed(0)
        layer = ssmkit.S4(H, N, l_max=l_max).to(device)
        u = torch.randn(B, L, H, device=device)
        step = lambda: layer(u)[0].square().mean().backward()  # noqa: E731
        now = timed(step, device)
        dplr.widen = lambda *tensors: list(tensors)  # the float32 C̃ of before
        try:
            before = timed(step, device)
        finally:
            dplr.widen = wide
        rows.append((f"S4 H={H} N={N} L={L} B={B} l_max={l_max}", now, before))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="toy sizes (a CPU check of the script)")
    args = parser.parse_args()
    if args.device == "cuda":
        require_cuda("--device cpu --small")
    device = torch.device(args.device)
    rows = accuracy(device, args.small)
    graphs = graphs_still_capture(device)
    speed = timings(device, args.small)
    print(f"\nfloat32 on {device} against float64 on the CPU (relative error; ok: all three below {TOLERANCE})")
    print(f"{'layer':10} {'l_max':>6} {'rate':>5} {'Δ':>7}  {'forward':>9} {'step':>9} {'chunks':>9}")
    for name, l_max, rate, dt, *errors, ok in rows:
        print(f"{name:10} {l_max:>6} {rate:>5} {dt:>7}  " + " ".join(f"{e:9.1e}" for e in errors) +
              ("" if ok else "  FAIL"))
    print(f"\nS4 training step in CUDA graphs: {graphs}")
    print(f"\nforward + backward, ms (median of 10)\n{'':44} {'C̃ in float64':>14} {'C̃ in float32':>14}")
    for what, now, before in speed:
        print(f"{what:44} {now:14.2f} {before:14.2f}")
    return 0 if all(r[-1] for r in rows) and graphs in ("yes", "-") else 1


if __name__ == "__main__":
    sys.exit(main())
