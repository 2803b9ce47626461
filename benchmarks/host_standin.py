"""The host's part of a short training step, measured on a CPU: what a GPU's host would do for one S4 or S4D layer's
forward + backward on the GPU path, with the GPU's work left out. A benchmark, not a test; it needs no GPU.

    python benchmarks/host_standin.py [--kinds S4 S4D] [--precision fp32 bf16] [--steps 300]
        [--code DIR_A DIR_B ...] [--rounds 2]

At L = 1k (B = 16, H = 256) a layer's step on an H100 waits on its host (docs/speed.md, sessions 35-36): the time
goes to Python, autograd and launches, not to the kernels. Here the layer runs its GPU path on CPU tensors of
host_parts.py's small shapes (B = 1, L = 128, H = 16, N = 16): the ops take their Triton versions, whose launches
return at once (Triton's binder and the kernels are left out), and the chunk matrices' CUDA graphs are captured and
replayed through the code's own graph machinery with CUDA's graph, stream and synchronization calls made no-ops (the
functions run once, eagerly, at "capture"; a "replay" does nothing). What remains is the host's own work per step:
the layers' and ops' Python, autograd, the graph path's nodes and copies, torch's dispatch of the small ops. Its
median (µs) tracks the GPU host's issue time, which on session 36's H100 host was ~4-5× this machine's.

--code: each folder's ssmkit (a checkout's root, or `git archive REV ssmkit | tar x -C DIR`) in its own process, in
the order A, B, …, then back, --rounds times (layer_ab.py's order).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

from other_code import PACKAGE_LINE, check_package, child_env  # benchmarks/other_code.py

B, L, H, N = 1, 128, 16, 16


def stand_in() -> None:
    """CUDA's graph, stream and synchronization calls as no-ops, Triton's launches returning at once, and the ops'
    Triton versions chosen on CPU tensors (see the module docstring)."""
    import torch.cuda.graphs as graphs
    from triton.runtime.jit import JITFunction

    class Graph:
        def replay(self):
            pass

    class Stream:
        def __init__(self, *args, **kwargs):
            pass

        def wait_stream(self, other):
            pass

    JITFunction.run = lambda self, *args, grid, warmup, **kwargs: None
    torch.cuda.CUDAGraph = graphs.CUDAGraph = Graph
    torch.cuda.graph = lambda *args, **kwargs: contextlib.nullcontext()
    torch.cuda.graph.default_capture_stream = None
    torch.cuda.graph_pool_handle = graphs.graph_pool_handle = lambda: None
    torch.cuda.Stream = Stream
    torch.cuda.stream = lambda stream: contextlib.nullcontext()
    torch.cuda.current_stream = lambda *args, **kwargs: Stream()
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.cuda.is_current_stream_capturing = lambda: False
    torch.cuda.current_device = lambda: 0
    torch.cuda.default_generators = [types.SimpleNamespace(clone_state=lambda: None,
                                                           graphsafe_set_state=lambda state: None)]
    torch.backends.cuda.preferred_linalg_library = lambda *args: None

    from ssmkit.layers import chunk_parts, conv
    from ssmkit.ops import dispatch

    def triton_first(op, device):
        return "triton" if "triton" in dispatch._registry[op] else "torch"
    dispatch.backend = conv.backend = triton_first
    chunk_parts.GraphedParts.trains = staticmethod(lambda kernel, D: torch.is_grad_enabled() and D.requires_grad)


def step_us(kind: str, precision: str, steps: int = 300) -> float:
    """The median host time (µs) of one forward + backward of the layer, after a warm-up that captures."""
    import ssmkit
    layer = (ssmkit.S4(d_model=H, d_state=N, l_max=L) if kind == "S4" else
             ssmkit.S4D(d_model=H, d_state=N, init="lin"))
    u = torch.randn(B, L, H, requires_grad=True)
    g = torch.randn(B, L, H)
    leaves = [u, *layer.parameters()]

    def step():
        for t in leaves:
            t.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            y = layer(u)[0]
        y.backward(g)
    for _ in range(30):
        step()
    if layer._graphed_parts.failed:
        raise SystemExit("the chunk matrices' graph path did not take the stand-in")
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def measure(kinds, precisions, steps: int = 300) -> dict[str, float]:
    stand_in()
    return {f"{kind} {precision}": step_us(kind, precision, steps) for kind in kinds for precision in precisions}


CHILD = PACKAGE_LINE + """
import json, sys
sys.path.insert(0, sys.argv[1])
from host_standin import measure
print(json.dumps(measure(sys.argv[2].split(","), sys.argv[3].split(","), int(sys.argv[4]))))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kinds", nargs="*", default=["S4", "S4D"])
    p.add_argument("--precision", nargs="*", default=["fp32", "bf16"])
    p.add_argument("--code", nargs="*", default=None, metavar="DIR")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args()
    if not a.code:
        for name, us in measure(a.kinds, a.precision, a.steps).items():
            print(f"{name}: {us:.0f} µs")
        return
    order = [c for _ in range(a.rounds) for c in a.code + a.code[::-1]]
    runs: dict[str, list[dict]] = {c: [] for c in a.code}
    here = str(Path(__file__).resolve().parent)
    for code in order:
        done = subprocess.run([sys.executable, "-c", CHILD, here, ",".join(a.kinds), ",".join(a.precision),
                               str(a.steps)],
                              env=child_env(code), capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-2000:])
        check_package(code, done.stderr)
        runs[code].append(json.loads(done.stdout.strip().splitlines()[-1]))
    names = list(runs[a.code[0]][0])
    print("| case | " + " | ".join(a.code) + " |\n|---|" + "---|" * len(a.code))
    for name in names:
        cells = []
        for code in a.code:
            values = [r[name] for r in runs[code]]
            cells.append(f"{statistics.median(values):.0f} ({', '.join(f'{v:.0f}' for v in values)})")
        print(f"| {name} µs, median (runs) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
