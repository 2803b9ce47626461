"""S4's plain C = C̃_f (I − Ā^L)^{-1}, formed at every training step on the chunked path: Ā's dense powers and a
batched LU (kernels/dplr.py: c_from_ctilde) against the roots of unity (dplr_c_from_ctilde, Triton Cauchy sums).
Forward + backward in complex128, H = 256, one output channel, rank 1, timed eagerly and replayed from a CUDA graph
(as the layers' chunk matrices are in training). A benchmark, not a test: it sets ROOTS_MAX_WORK.

    python benchmarks/plain_c.py [--lengths 1024,4096,16384,65536] [--states 4,64]
"""
from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench

from ssmkit.kernels import DPLRKernel
from ssmkit.kernels.dplr import c_from_ctilde, dplr_c_from_ctilde, dplr_transition, widen

H = 256


def graphed(fn):
    """fn() replayed from a CUDA graph (captured after warm-up on a side stream)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="1024,4096,16384,65536")
    parser.add_argument("--states", default="4,64")
    a = parser.parse_args()
    rows = []
    for N in map(int, a.states.split(",")):
        k = DPLRKernel(H, N).cuda()
        Lambda, P, dt = (t.detach().requires_grad_() for t in widen(k.Lambda(), k.cplx("P"), k.dt()))
        C_tilde = torch.randn(1, H, N // 2, dtype=torch.complex128, device="cuda", requires_grad=True)
        leaves = (C_tilde, Lambda, P, dt)
        for L in map(int, a.lengths.split(",")):
            ways = {"dense": lambda: c_from_ctilde(C_tilde, dplr_transition(Lambda, P, dt), L),
                    "roots": lambda: dplr_c_from_ctilde(C_tilde, Lambda, P, dt, L)}
            ref = ways["dense"]()
            g = torch.randn_like(ref)
            out = ways["roots"]()
            err = ((out - ref).abs().max() / ref.abs().max()).item()
            gerr = max(((x - y).abs().max() / y.abs().max()).item() for x, y in
                       zip(torch.autograd.grad(out, leaves, g), torch.autograd.grad(ref, leaves, g)))
            row = {"N": N, "L": L, "err": err, "grad_err": gerr}
            for name, fn in ways.items():
                step = lambda fn=fn: torch.autograd.grad(fn(), leaves, g)  # noqa: E731
                row[name] = do_bench(step, warmup=5, rep=40)
                row[name + "_graph"] = do_bench(graphed(step), warmup=5, rep=40)
            rows.append(row)
            print(row, flush=True)
    print("\n| N | L | dense ms | dense graphed ms | roots ms | roots graphed ms | rel. diff C, grads |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['N']} | {r['L']} | {r['dense']:.3f} | {r['dense_graph']:.3f} | {r['roots']:.3f} | "
              f"{r['roots_graph']:.3f} | {r['err']:.0e}, {r['grad_err']:.0e} |")


if __name__ == "__main__":
    main()
