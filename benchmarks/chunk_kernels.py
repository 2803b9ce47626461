"""The chunked convolution's kernels alone, each variant beside what it replaced and its floor.

    python benchmarks/chunk_kernels.py [--shapes 16x16384x256,16x65536x256]

For each shape (B x L x H, chunks of T = 64, 64 state columns):
- the scan of the chunk states (ops/triton_chunk_scan.py), S4D's complex diagonal A (32 modes) and S4's dense 64 x 64
  A: the forward walk, and the adjoint walk that also returns ∂A, against the adjoint walk followed by the einsum
  that computed ∂A before; per group of chunks whose loads are issued together (1: the walk as it was) and, dense,
  per tl.dot precision (WALKS in the module);
- the chunk matrices' gradients in one pass (ops/triton_chunk_grads.py) per (ROWS, WARPS) and tl.dot precision,
  against the three cuBLAS float32 products;
- the fused op (ops.chunkconv_act, S4D's matrices, gelu) forward + backward in precision float32 and tf32.
The floor is the bytes each must move at the measured copy bandwidth. Tables last.
"""
from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from speed import bandwidth  # benchmarks/speed.py
from ssmkit.layers.chunk_parts import build_parts
from ssmkit.ops import ChunkPart, chunkconv_act, triton_chunk_grads, triton_chunk_scan
from ssmkit.ops.triton_chunk_scan import scan_launch

T, S = 64, 64
UNROLLS = (1, 2, 4, 8)
PRECISIONS = ("ieee", "tf32x3")
GRADS = [(16, 4), (32, 4), (16, 8), (64, 8)]  # (ROWS, WARPS) of the one-pass gradients


def ms(fn) -> float:
    fn()
    torch.cuda.synchronize()
    return do_bench(fn, warmup=10, rep=50, return_mode="median")


def einsum_grad(A, dS, X):
    """∂A as it was computed before the adjoint walk summed it."""
    if A.is_complex():
        as_c = lambda t: torch.view_as_complex(t.unflatten(-1, (-1, 2)))  # noqa: E731
        return torch.einsum("hbcn,hbcn->hn", as_c(dS), as_c(X).conj())
    return torch.einsum("hbcd,hbce->hde", dS, X)


def scan_rows(B, L, H, bw):
    n = L // T
    S_ = torch.randn(H, B, n, S, device="cuda")
    G_ = torch.randn_like(S_)
    systems = {"diag": 0.9 * torch.exp(1j * torch.rand(H, S // 2, device="cuda")).to(torch.complex64),
               "dense": 0.1 * torch.randn(H, S, S, device="cuda")}
    floor = {"fwd": 2, "adjoint+dA": 3}  # tensors of (H, B, n, S) read or written
    rows = []
    for kind, A in systems.items():
        dense = kind == "dense"
        X = scan_launch(A, S_, reverse=False, adjoint=False)
        default = dict(triton_chunk_scan.WALKS)
        for grad in (False, True):  # the walk as it was
            triton_chunk_scan.WALKS[dense, grad] = (1, "ieee" if dense else None)
        base = ms(lambda: einsum_grad(A, scan_launch(A, G_, True, True), X))
        for precision in (PRECISIONS if dense else [None]):
            for u in UNROLLS:
                for grad in (False, True):
                    triton_chunk_scan.WALKS[dense, grad] = (u, precision)
                fwd = ms(lambda: scan_launch(A, S_, reverse=False, adjoint=False))
                adj = ms(lambda: scan_launch(A, G_, True, True, forward_states=X))
                rows.append(dict(kind=kind, shape=f"{B}x{L}x{H}", variant=f"{u} {precision or ''}", fwd=fwd,
                                 adjoint=adj, before=base, floor_fwd=floor["fwd"] * S_.numel() * 4 / bw * 1e3,
                                 floor_adj=floor["adjoint+dA"] * S_.numel() * 4 / bw * 1e3))
                print(rows[-1], flush=True)
        triton_chunk_scan.WALKS.update(default)
    return rows


def grad_rows(B, L, H, bw):
    M = B * L // T
    U, G = torch.randn(2, H, M, T, device="cuda")
    dS, X = torch.randn(2, H, M, S, device="cuda")
    want = (U.transpose(1, 2) @ G, U.transpose(1, 2) @ dS, X.transpose(1, 2) @ G)
    cublas = ms(lambda: (U.transpose(1, 2) @ G, U.transpose(1, 2) @ dS, X.transpose(1, 2) @ G))
    rows, default = [], (triton_chunk_grads.ROWS, triton_chunk_grads.WARPS)
    for precision in ("tf32", "tf32x3"):
        for variant in GRADS:
            triton_chunk_grads.ROWS, triton_chunk_grads.WARPS = variant
            got = triton_chunk_grads.chunk_matrix_grads(U, G, dS, X, precision)
            err = max(((a - b).norm() / b.norm()).item() for a, b in zip(got, want))
            t = ms(lambda: triton_chunk_grads.chunk_matrix_grads(U, G, dS, X, precision))
            rows.append(dict(shape=f"{B}x{L}x{H}", variant=f"{variant} {precision}", ms=t, cublas=cublas,
                             rel_err=err, floor=4 * U.numel() * 4 / bw * 1e3))
            print(rows[-1], flush=True)
    triton_chunk_grads.ROWS, triton_chunk_grads.WARPS = default
    return rows


def fused_rows(B, L, H):
    layer = ssmkit.S4D(d_model=H, d_state=S, init="lin").cuda()
    part = ChunkPart(*(t.detach().requires_grad_() for t in build_parts(layer.kernel, layer.D, False, 1.0)))
    u = torch.randn(B, L, H, device="cuda", requires_grad=True)
    g = torch.randn(B, L, H, device="cuda")
    out = {}
    for precision in ("float32", "tf32"):
        out[precision] = ms(lambda: chunkconv_act(u, [part], "gelu", precision).backward(g))
    y32 = chunkconv_act(u, [part], "gelu").detach()
    err = ((chunkconv_act(u, [part], "gelu", "tf32").detach() - y32).norm() / y32.norm()).item()
    row = dict(shape=f"{B}x{L}x{H}", rel_err=err, **out)
    print(row, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="16x16384x256,16x65536x256")
    a = p.parse_args()
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    bw = bandwidth()
    scans, grads, fused = [], [], []
    for shape in a.shapes.split(","):
        B, L, H = (int(v) for v in shape.split("x"))
        scans += scan_rows(B, L, H, bw)
        grads += grad_rows(B, L, H, bw)
        fused.append(fused_rows(B, L, H))
    print(f"\n{torch.cuda.get_device_name()}, copy {bw / 1e12:.2f} TB/s; ms")
    print("| A | shape | chunks per group, precision | forward | adjoint + ∂A | before: adjoint (1 chunk) + einsum | "
          "floors |")
    print("|---|---|---|---|---|---|---|")
    for r in scans:
        print(f"| {r['kind']} | {r['shape']} | {r['variant']} | {r['fwd']:.3f} | {r['adjoint']:.3f} | "
              f"{r['before']:.3f} | {r['floor_fwd']:.3f} / {r['floor_adj']:.3f} |")

    print("\n| chunk matrix gradients | shape | (ROWS, WARPS) precision | one pass | three cuBLAS products | rel err | "
          "floor |")
    print("|---|---|---|---|---|---|---|")
    for r in grads:
        print(f"| | {r['shape']} | {r['variant']} | {r['ms']:.3f} | {r['cublas']:.3f} | {r['rel_err']:.1e} | "
              f"{r['floor']:.3f} |")
    print("\n| chunkconv_act fwd+bwd | shape | float32 | tf32 | tf32 output rel err |")
    print("|---|---|---|---|---|")
    for r in fused:
        print(f"| | {r['shape']} | {r['float32']:.3f} | {r['tf32']:.3f} | {r['rel_err']:.1e} |")


if __name__ == "__main__":
    main()
