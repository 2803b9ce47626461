"""A Linear's bias gradient under bf16 autocast, ḃ = Σ_rows ẏ, by the ways it could be computed, at the shapes of
SaShiMi's training step (SC09: batch 32, L = 16000; rows B·L at the three levels, widths of the S4 output Linear
(2H, before its GLU) and of the FF block's two Linears).

    python benchmarks/bias_grad.py [--check-only]

Why: in the profile of `sashimi-sc09`'s bf16 step (trainer_profile.py, one H200, 2026-12-06) PyTorch's reduce_kernel
over bf16 took 7.75 ms in 77 calls per step, the largest item of ~80 ms of kernels: one per Linear's backward (77
Linears), the column sum of addmm's backward. Reading every ẏ once at the copy bandwidth takes ~1 ms for them all.
ssmkit's Linears now sum it by ops.column_sum (ops/linear.py). Candidates, each against the float64 sum:
- torch: ẏ.sum(0), what addmm's backward runs (and ops.column_sum's reference, in float32);
- gemv: ẏᵀ·1 (torch.mv, cuBLAS; bf16 in, float32 accumulation);
- two-stage: ẏ viewed as (R, M/R, N), summed over the middle axis then over R (another reduction layout);
- triton: ops.column_sum's Triton kernel (row blocks summed in float32, then their partial sums; the op takes it
  from MIN_ROWS rows on).
Prints the time of each per shape, the floor (bytes of ẏ / bandwidth), and the total per SaShiMi step (8 Linears of
each kind per level), and then a whole Linear's forward + backward under bf16 autocast at the same shapes by
F.linear and by ops.linear, last. With --check-only (or on a CPU, through TRITON_INTERPRET=1) only the values at
small shapes.
"""
from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

if not torch.cuda.is_available():  # the Triton kernel runs through the CPU interpreter: set before it is defined
    os.environ.setdefault("TRITON_INTERPRET", "1")
from ssmkit.ops import linear  # noqa: E402
from ssmkit.ops.triton_column_sum import block_sums  # noqa: E402

# per SaShiMi level (d_model 64, expand 2, pool (4, 4)): rows B·L_i and the widths 2H_i (S4 output), 2H_i (FF in),
# H_i (FF out); 8 blocks per level, each with one of each
LEVELS = [(32 * 16000, 64), (32 * 4000, 128), (32 * 1000, 256)]


def two_stage(g: torch.Tensor, R: int = 64) -> torch.Tensor:
    M, N = g.shape
    if M % R:
        return g.sum(0)
    return g.view(R, M // R, N).sum(1, dtype=torch.float32).sum(0).to(g.dtype)


CANDIDATES = {
    "torch": lambda g: g.sum(0),
    "gemv": lambda g: torch.mv(g.t(), torch.ones(g.shape[0], device=g.device, dtype=g.dtype)),
    "two-stage": two_stage,
    "triton": block_sums,
}


def check(device: str) -> None:
    """Each candidate against the float64 sum, at shapes with ragged rows and columns."""
    for M, N in [(5000, 64), (4099, 96), (300, 256)]:
        g = torch.randn(M, N, device=device).to(torch.bfloat16)
        exact = g.double().sum(0)
        for name, fn in CANDIDATES.items():
            err = ((fn(g).double() - exact).norm() / exact.norm()).item()
            print(f"check {M} x {N} {name}: relative error {err:.1e}")
            # bf16 results (all but triton's float32): their rounding (2^-9) bounds the error
            assert err < 1e-2, f"{name} at {M} x {N}: relative error {err:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-only", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        check("cpu")
        return
    check("cuda")
    if args.check_only:
        return
    from triton.testing import do_bench
    from speed import bandwidth  # benchmarks/speed.py
    bw = bandwidth()
    rows, totals = [], {name: 0.0 for name in CANDIDATES}
    floor_total = 0.0
    for M, H in LEVELS:
        for N, count in ((2 * H, 16), (H, 8)):  # 2H: the S4 output's and the FF's first Linear; H: the FF's second
            g = torch.randn(M, N, device="cuda").to(torch.bfloat16)
            times = {name: do_bench(lambda: fn(g), return_mode="median") for name, fn in CANDIDATES.items()}
            floor = g.numel() * 2 / bw * 1e3  # ∂y read once, at the copy's rate of bytes moved
            rows.append((M, N, count, times, floor))
            for name in CANDIDATES:
                totals[name] += count * times[name]
            floor_total += count * floor
    print(f"\n{torch.cuda.get_device_name()}: ms per call (copy bandwidth {bw / 1e12:.2f} TB/s)")
    print("| rows | width | calls/step | " + " | ".join(CANDIDATES) + " | floor |")
    print("|---|---|---|" + "---|" * len(CANDIDATES) + "---|")
    for M, N, count, times, floor in rows:
        print(f"| {M} | {N} | {count} | " + " | ".join(f"{times[n]:.3f}" for n in CANDIDATES) + f" | {floor:.3f} |")
    print("| per step | | 72 | " + " | ".join(f"{totals[n]:.2f}" for n in CANDIDATES) + f" | {floor_total:.2f} |")
    print("\nA Linear's forward + backward under bf16 autocast (x float32 with its gradient), ms per call:")
    print("| rows | in | out | calls/step | F.linear | ops.linear |")
    print("|---|---|---|---|---|---|")
    total = [0.0, 0.0]
    for M, H in LEVELS:
        for K, N, count in ((H, 2 * H, 16), (2 * H, H, 8)):
            x = torch.randn(M, K, device="cuda", requires_grad=True)
            lin = torch.nn.Linear(K, N).cuda()
            dy = torch.randn(M, N, device="cuda").to(torch.bfloat16)
            times = [do_bench(lambda f=f: whole(f, x, lin, dy), return_mode="median") for f in (F.linear, linear)]
            print(f"| {M} | {K} | {N} | {count} | {times[0]:.3f} | {times[1]:.3f} |")
            total = [t + count * u for t, u in zip(total, times)]
    print(f"| per step | | | 72 | {total[0]:.2f} | {total[1]:.2f} |")


def whole(fn, x, lin, dy) -> None:
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = fn(x, lin.weight, lin.bias)
    torch.autograd.grad(y, (x, lin.weight, lin.bias), dy)


if __name__ == "__main__":
    main()
