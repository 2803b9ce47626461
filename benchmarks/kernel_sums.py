"""The SSM kernel sums on the GPU, torch reference against Triton: ops.cauchy (S4's generating function) and
ops.vandermonde (diagonal SSMs), forward + backward (∂v and ∂w / ∂x) at the kernels' shapes (256 rows, N/2 modes;
Cauchy at L/2 points shared by the rows, Vandermonde at L positions), complex64 and complex128; then the layers that
take these sums on a GPU (the FFT path) with each. A benchmark, not a test.

    python benchmarks/kernel_sums.py
"""
from __future__ import annotations

import contextlib

import torch
from triton.testing import do_bench

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from ssmkit.kernels.dplr import _unit_circle_points
from ssmkit.ops import dispatch
from ssmkit.ops.cauchy import cauchy_torch
from ssmkit.ops.triton_cauchy import cauchy_triton
from ssmkit.ops.triton_vandermonde import vandermonde_triton
from ssmkit.ops.vandermonde import vandermonde_torch

HEADER = ["| op | dtype | N/2 | L | torch ms | triton ms | speed-up | rel. diff |", "|---|---|---|---|---|---|---|---|"]


@contextlib.contextmanager
def reference(op: str, on: bool):
    """With ``on``, the layers take the torch reference of ``op`` on the GPU (the other ops keep theirs)."""
    impls = dispatch._registry[op]
    saved = dict(impls)
    if on:
        impls.pop("triton")
    try:
        yield
    finally:
        impls.update(saved)


def op_rows() -> list[str]:
    rows = []
    for op, impls in (("cauchy", (cauchy_torch, cauchy_triton)), ("vandermonde", (vandermonde_torch,
                                                                                  vandermonde_triton))):
        for dtype in (torch.complex64, torch.complex128):
            for N2 in (32, 128):
                for L in (1024, 4096, 16384, 65536):
                    v = torch.randn(256, N2, dtype=dtype, device="cuda", requires_grad=True)
                    w = torch.complex(-torch.rand(256, N2, device="cuda") * (0.1 if op == "cauchy" else 1e-3),
                                      torch.randn(256, N2, device="cuda")).to(dtype).requires_grad_()
                    if op == "cauchy":
                        z = _unit_circle_points(L, dtype, "cuda")  # the S4 kernel's own points
                        args = lambda fn: fn(v, z, w)  # noqa: E731
                        g = torch.randn(256, z.shape[0], dtype=dtype, device="cuda")
                    else:
                        args = lambda fn: fn(v, w, L)  # noqa: E731
                        g = torch.randn(256, L, dtype=dtype, device="cuda")
                    ms = [do_bench(lambda fn=fn: torch.autograd.grad(args(fn), (v, w), g), rep=40) for fn in impls]
                    ref = args(impls[0])
                    err = ((args(impls[1]) - ref).abs().max() / ref.abs().max()).item()
                    rows.append(f"| {op} | {str(dtype)[6:]} | {N2} | {L} | {ms[0]:.3f} | {ms[1]:.3f} | "
                                f"{ms[0] / ms[1]:.2f}x | {err:.0e} |")
                    print(rows[-1], flush=True)
    return rows


def layer_rows() -> list[str]:
    """Layers on the FFT path: S4 with N = 256 (BIDMC's; above the chunked path's states) and DSS-softmax (its
    normalizer is over a length, so it has no chunked form; GSS's layer)."""
    cases = [("cauchy", "S4, N = 256", lambda: ssmkit.S4(d_model=128, d_state=256, l_max=4000), 32, 4000, 128),
             ("vandermonde", "DSS-softmax, N = 64", lambda: ssmkit.DSS(d_model=256, d_state=64), 16, 16384, 256)]
    rows = []
    for op, name, make, B, L, H in cases:
        layer = make().cuda()
        u = torch.randn(B, L, H, device="cuda", requires_grad=True)
        ms = []
        for on in (True, False):
            with reference(op, on):
                ms.append(do_bench(lambda: layer(u)[0].sum().backward(), rep=40))
        rows.append(f"{name} layer, B = {B}, H = {H}, L = {L}, forward + backward: torch {op} {ms[0]:.2f} ms, "
                    f"Triton {ms[1]:.2f} ms")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    print("\n".join(HEADER))
    rows = op_rows()
    layers = layer_rows()
    print("\n".join([""] + HEADER + rows + [""] + layers))


if __name__ == "__main__":
    main()
