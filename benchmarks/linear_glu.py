"""The GLU output map of a layer in float32 training, y = GLU(x Wᵀ + b), ops/triton_linear_glu.py's forward tiles
(3xTF32, the gate in the epilogue) against nn.Linear + nn.GLU (cuBLAS float32 with TF32 off).

    python benchmarks/linear_glu.py [--shapes 262144x256,1048576x256,64000x128]

For each shape (M rows x width H: K = H inputs, 2H outputs): the values and the three gradients against float64, the
forward's time per tile of TILES (the floor: bytes at the measured copy bandwidth, FLOPs at a third of a large TF32
cuBLAS product's rate), and forward + backward against torch's. Tables last.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
from speed import bandwidth  # benchmarks/speed.py
from ssmkit.ops import triton_linear_glu as tlg

TILES = [(128, 64, 32, 8, 3), (64, 32, 32, 4, 3), (32, 64, 32, 4, 3), (64, 64, 16, 4, 3), (128, 32, 32, 8, 3),
         (128, 64, 16, 8, 3)]  # (BM, BN, BK, warps, stages) that an offline sm_90 compile placed without spills


def ms(fn) -> float:
    fn()
    torch.cuda.synchronize()
    return do_bench(fn, warmup=10, rep=60, return_mode="median")


def rel(a, b) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def check(x, w, b, dy) -> list[float]:
    """Max relative error of (y, ∂x, ∂W, ∂b) against float64: ours, then torch's."""
    leaves = [t.detach().requires_grad_() for t in (x, w, b)]
    ref = [t.detach().double().requires_grad_() for t in leaves]
    y_ref = F.glu(F.linear(*ref), dim=-1)
    want = [y_ref, *torch.autograd.grad(y_ref, ref, dy.double())]
    errs = []
    for fn in (tlg.linear_glu_triton, lambda *t: F.glu(F.linear(*t), dim=-1)):
        y = fn(*leaves)
        errs.append(max(rel(g, r) for g, r in zip([y, *torch.autograd.grad(y, leaves, dy)], want)))
    return errs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="262144x256,1048576x256,64000x128")
    args = p.parse_args()
    require_cuda()
    bw = bandwidth()
    a, c = torch.randn(8192, 8192, device="cuda"), torch.randn(8192, 8192, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    rate = 2 * 8192 ** 3 / (ms(lambda: a @ c) * 1e-3) / 3
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"copy {bw / 1e12:.2f} TB/s, 3xTF32 floor rate {rate / 1e12:.0f} TFLOP/s")
    tile_rows, totals = [], []
    shipped = tlg.TILE
    for shape in args.shapes.split(","):
        M, H = map(int, shape.split("x"))
        x = torch.randn(M, H, device="cuda", requires_grad=True)
        w = (torch.randn(2 * H, H, device="cuda") / H ** 0.5).requires_grad_()
        b = torch.randn(2 * H, device="cuda").requires_grad_()
        dy = torch.randn(M, H, device="cuda")
        ours, torch_ = (lambda: tlg.linear_glu_triton(x, w, b)), (lambda: F.glu(F.linear(x, w, b), dim=-1))
        errs = check(x[:65536], w, b, dy[:65536])
        floor = max(4 * M * 4 * H / bw, 2 * M * H * 2 * H / rate) * 1e3  # X read, Y and Z written
        best = None
        for tile in TILES:  # the training forward (x requires grad): Y and Z written
            tlg.TILE = tile
            t = ms(ours)
            tile_rows.append((shape, tile, t, floor, "shipped" if tile == shipped else ""))
            best = min(best or (t, tile), (t, tile))
        tlg.TILE = best[1]
        total = ms(lambda: torch.autograd.grad(ours(), (x, w, b), dy))
        tlg.TILE = shipped
        t_ours, t_torch = ms(ours), ms(torch_)
        totals.append((shape, *errs, t_ours, t_torch, total, ms(lambda: torch.autograd.grad(torch_(), (x, w, b), dy))))
        print(totals[-1], flush=True)
    print("\n| shape | forward tile (BM, BN, BK, warps, stages) | ms | floor ms | |\n|---|---|---|---|---|")
    for shape, tile, t, floor, note in tile_rows:
        print(f"| {shape} | {tile} | {t:.3f} | {floor:.3f} | {note} |")
    print("\n| shape | rel err ours / torch | forward ours / torch ms | fwd+bwd ours (best tile) / torch ms |")
    print("|---|---|---|---|")
    for shape, e1, e2, f1, f2, t1, t2 in totals:
        print(f"| {shape} | {e1:.1e} / {e2:.1e} | {f1:.3f} / {f2:.3f} ({f2 / f1:.2f}×) | {t1:.3f} / {t2:.3f} "
              f"({t2 / t1:.2f}×) |")


if __name__ == "__main__":
    main()
