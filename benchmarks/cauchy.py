"""ops.cauchy on the GPU: the torch reference (chunked broadcast and batched matmuls) against the Triton kernels,
forward + backward (∂v, ∂w) at the S4 kernel's shapes (H = 256 rows, N/2 poles, L/2 points shared by the rows),
complex64 and complex128; and an S4 layer that takes the FFT (N = 256, above the chunked path's states) with each.
A benchmark, not a test.

    python benchmarks/cauchy.py
"""
from __future__ import annotations

import contextlib

import torch
from triton.testing import do_bench

import ssmkit
from ssmkit.ops import dispatch
from ssmkit.ops.cauchy import cauchy_torch
from ssmkit.ops.triton_cauchy import cauchy_triton


@contextlib.contextmanager
def cauchy_backend(name: str):
    """ops.cauchy's GPU choice set to ``name`` for the layers (the other ops keep theirs)."""
    impls = dispatch._registry["cauchy"]
    saved = dict(impls)
    if name == "torch":
        impls.pop("triton")
    try:
        yield
    finally:
        impls.update(saved)


def op_rows() -> list[str]:
    rows = []
    for dtype in (torch.complex64, torch.complex128):
        for N2 in (32, 128):
            for L in (1024, 4096, 16384, 65536):
                v = torch.randn(256, N2, dtype=dtype, device="cuda", requires_grad=True)
                w = torch.complex(-torch.rand(256, N2, device="cuda") - 0.1,
                                  torch.randn(256, N2, device="cuda")).to(dtype).requires_grad_()
                j = torch.arange(L // 2, device="cuda", dtype=torch.float64)
                z = (2j * torch.tan(torch.pi * j / L)).to(dtype)
                g = torch.randn(256, L // 2, dtype=dtype, device="cuda")
                ms = {}
                for name, fn in (("torch", cauchy_torch), ("triton", cauchy_triton)):
                    ms[name] = do_bench(lambda fn=fn: torch.autograd.grad(fn(v, z, w), (v, w), g), rep=40)
                err = ((cauchy_triton(v, z, w) - cauchy_torch(v, z, w)).abs().max() /
                       cauchy_torch(v, z, w).abs().max()).item()
                rows.append(f"| {str(dtype)[6:]} | {N2} | {L} | {ms['torch']:.3f} | {ms['triton']:.3f} | "
                            f"{ms['torch'] / ms['triton']:.2f}x | {err:.0e} |")
                print(rows[-1], flush=True)
    return rows


def layer_row(L: int = 4000, B: int = 32) -> str:
    layer = ssmkit.S4(d_model=128, d_state=256, l_max=L).cuda()
    u = torch.randn(B, L, 128, device="cuda", requires_grad=True)
    ms = {}
    for name in ("torch", "triton"):
        with cauchy_backend(name):
            ms[name] = do_bench(lambda: layer(u)[0].sum().backward(), rep=40)
    return f"S4 layer, N = 256 (FFT path), B = {B}, H = 128, L = {L}, fwd+bwd: torch {ms['torch']:.2f} ms, " \
           f"triton Cauchy {ms['triton']:.2f} ms"


HEADER = ["| dtype | N/2 | L | torch ms | triton ms | speed-up | rel. diff |", "|---|---|---|---|---|---|---|"]


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    print("\n".join(HEADER))
    rows = op_rows()
    print(layer_row())
    print("\n".join([""] + HEADER + rows))


if __name__ == "__main__":
    main()
