"""A Linear's bias gradient under bf16 autocast, db = Σ_rows ∂y, by the ways it could be computed, at the shapes of
SaShiMi's training step (SC09: batch 32, L = 16000; rows B·L at the three levels, widths of the S4 output Linear
(2H, before its GLU) and of the FF block's two Linears).

    python benchmarks/bias_grad.py [--check-only]

Why: in the profile of `sashimi-sc09`'s bf16 step (trainer_profile.py, one H200, 2026-12-06) PyTorch's reduce_kernel
over bf16 took 7.75 ms in 77 calls per step, the largest item of ~80 ms of kernels: one per Linear's backward (77
Linears), the column sum of addmm's backward. Reading every ∂y once at the copy bandwidth takes ~1 ms for them all.
Candidates, each against the float64 sum:
- torch: ∂y.sum(0), what addmm's backward runs;
- gemv: ∂yᵀ·1 (torch.mv, cuBLAS; bf16 in, float32 accumulation);
- two-stage: ∂y viewed as (R, M/R, N), summed over the middle axis then over R (another reduction layout);
- triton: one program per block of rows and columns sums its rows in float32; then the (programs, N) partials.
Prints the time of each per shape, the floor (bytes of ∂y / bandwidth), and the total per SaShiMi step (8 Linears of
each kind per level). Then a whole Linear's forward + backward under bf16 autocast (x float32 with its gradient) by
F.linear and by an autograd Function with the same casts and products whose bias gradient takes each candidate, and
the kernels of one such call (torch.profiler) by F.linear and by the Function with gemv. With --check-only (or on a
CPU, through TRITON_INTERPRET=1) only the values at small shapes.

Measured on one H100 (2026-12-06): the sums per SaShiMi step took 8.33 ms (torch), 2.74 (gemv), 3.66 (two-stage) and
4.26 (triton: ops.column_sum's kernel then, ~1,024 row blocks) against a floor of 1.52. But a whole Linear measured
slower through an autograd Function than by F.linear at every shape: 0.38-0.67 ms per call by F.linear, 0.55-0.83 by the
Function with the triton sum, 0.55-0.70 with gemv, 0.71-1.03 by ops.linear (the Triton route, on main for a day).
Profiled at 128,000 x 128 -> 256, the kernels took less (0.32 ms per call by F.linear, 0.28 by ops.linear, 0.25 with
gemv), but the Function's backward spent 135-360 us in Python (under the profiler), so each isolated call waited on its
host. Where a step's host runs ahead of its GPU the saving would be the kernels' ~3 ms of SaShiMi's ~105 ms step; the
whole step with ops.linear read 111 and 92 ms against 99 and 99 without it (A, B, B, A), within the step's spread
between runs (104-111 ms in one call). Too small to show, for a Function around every Linear: ssmkit's Linears stay
F.linear.
"""
from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

if not torch.cuda.is_available():  # the kernel below runs through Triton's CPU interpreter, set before it is defined
    os.environ.setdefault("TRITON_INTERPRET", "1")
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

# per SaShiMi level (d_model 64, expand 2, pool (4, 4)): rows B·L_i and the widths 2H_i (S4 output), 2H_i (FF in),
# H_i (FF out); 8 blocks per level, each with one of each
LEVELS = [(32 * 16000, 64), (32 * 4000, 128), (32 * 1000, 256)]
ROWS_PER_PROGRAM = 2048


@triton.jit(do_not_specialize=["M"])
def _column_partials(G, P, M, N, stride, ROWS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    """P[p, cols] = Σ of G's rows [p·ROWS, (p + 1)·ROWS) over its columns cols, in float32."""
    p, q = tl.program_id(0), tl.program_id(1)
    cols = q * BN + tl.arange(0, BN)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    r = p * ROWS
    end = tl.minimum(r + ROWS, M)
    while r < end:  # a while loop: the CPU interpreter takes no run-time range bound under NumPy >= 2.4
        rows = r + tl.arange(0, BM)
        acc += tl.load(G + rows[:, None] * stride + cols[None, :], mask=(rows < end)[:, None] & (cols < N)[None, :],
                       other=0.0).to(tl.float32)
        r += BM
    tl.store(P + p * N + cols, tl.sum(acc, 0), mask=cols < N)


def triton_sum(g: torch.Tensor) -> torch.Tensor:
    M, N = g.shape
    BN = min(128, triton.next_power_of_2(N))
    partials = torch.empty(triton.cdiv(M, ROWS_PER_PROGRAM), N, device=g.device, dtype=torch.float32)
    _column_partials[(partials.shape[0], triton.cdiv(N, BN))](g, partials, M, N, g.stride(0), ROWS=ROWS_PER_PROGRAM,
                                                              BM=32, BN=BN)
    return partials.sum(0).to(g.dtype)


def two_stage(g: torch.Tensor, R: int = 64) -> torch.Tensor:
    M, N = g.shape
    if M % R:
        return g.sum(0)
    return g.view(R, M // R, N).sum(1, dtype=torch.float32).sum(0).to(g.dtype)


CANDIDATES = {
    "torch": lambda g: g.sum(0),
    "gemv": lambda g: torch.mv(g.t(), torch.ones(g.shape[0], device=g.device, dtype=g.dtype)),
    "two-stage": two_stage,
    "triton": triton_sum,
}


class _Products(torch.autograd.Function):
    """y = F.linear(x, W, b) in one dtype; backward by the two products, ẋ = ∂y W and Ẇ = ∂yᵀ x, and the bias gradient
    by a given column sum."""

    @staticmethod
    def forward(ctx, x, weight, bias, colsum):
        ctx.save_for_backward(x, weight)
        ctx.colsum = colsum
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        g = gy.reshape(-1, gy.shape[-1])
        return g @ weight, g.t() @ x, ctx.colsum(g).to(weight.dtype), None


def products(colsum):
    """A Linear through _Products, its operands cast to the autocast dtype first, as autocast's Linear casts them."""
    def fn(x, weight, bias):
        dtype = torch.get_autocast_dtype(x.device.type)
        return _Products.apply(x.to(dtype), weight.to(dtype), bias.to(dtype), colsum)
    return fn


def whole(fn, x, lin, dy) -> None:
    """One forward + backward of a Linear under bf16 autocast."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
        y = fn(x, lin.weight, lin.bias)
    torch.autograd.grad(y, (x, lin.weight, lin.bias), dy)


def check(device: str) -> None:
    """Each candidate against the float64 sum, at shapes with ragged rows and columns."""
    for M, N in [(5000, 64), (4099, 96), (300, 256)]:
        g = torch.randn(M, N, device=device).to(torch.bfloat16)
        exact = g.double().sum(0)
        for name, fn in CANDIDATES.items():
            err = ((fn(g).double() - exact).norm() / exact.norm()).item()
            print(f"check {M} x {N} {name}: relative error {err:.1e}")
            # each returns bf16: its rounding (2^-9) bounds the error
            assert err < 1e-2, f"{name} at {M} x {N}: relative error {err:.1e}"
    x = torch.randn(300, 24, device=device, dtype=torch.float64, requires_grad=True)
    lin = torch.nn.Linear(24, 40, device=device, dtype=torch.float64)
    dy = torch.randn(300, 40, device=device, dtype=torch.float64)
    exact = torch.autograd.grad(F.linear(x, lin.weight, lin.bias), (x, lin.weight, lin.bias), dy)
    for name, fn in CANDIDATES.items():  # the Function's gradients in float64, outside autocast
        got = torch.autograd.grad(_Products.apply(x, lin.weight, lin.bias, fn), (x, lin.weight, lin.bias), dy)
        err = max(((a - b).norm() / b.norm()).item() for a, b in zip(got, exact))
        print(f"check Linear with {name}: relative error {err:.1e}")
        assert err < 1e-6, f"Linear with {name}: relative error {err:.1e}"


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
    linears(do_bench)


def linears(do_bench) -> None:
    """A whole Linear by F.linear and by _Products with each column sum, per shape and per SaShiMi step; then the
    kernels and host time of five calls of F.linear and of _Products with gemv, at one shape."""
    fns = {"F.linear": F.linear, **{f"fn+{name}": products(fn) for name, fn in CANDIDATES.items()}}
    print("\nA Linear's forward + backward under bf16 autocast (x float32 with its gradient), ms per call:")
    print("| rows | in | out | calls/step | " + " | ".join(fns) + " |")
    print("|---|---|---|---|" + "---|" * len(fns))
    totals = [0.0] * len(fns)
    for M, H in LEVELS:
        for K, N, count in ((H, 2 * H, 16), (2 * H, H, 8)):
            x = torch.randn(M, K, device="cuda", requires_grad=True)
            lin = torch.nn.Linear(K, N).cuda()
            dy = torch.randn(M, N, device="cuda").to(torch.bfloat16)
            times = [do_bench(lambda f=f: whole(f, x, lin, dy), return_mode="median") for f in fns.values()]
            print(f"| {M} | {K} | {N} | {count} | " + " | ".join(f"{t:.3f}" for t in times) + " |")
            totals = [t + count * u for t, u in zip(totals, times)]
    print("| per step | | | 72 | " + " | ".join(f"{t:.2f}" for t in totals) + " |")
    from torch.profiler import ProfilerActivity, profile
    M, K, N = LEVELS[1][0], LEVELS[1][1], 2 * LEVELS[1][1]
    x = torch.randn(M, K, device="cuda", requires_grad=True)
    lin = torch.nn.Linear(K, N).cuda()
    dy = torch.randn(M, N, device="cuda").to(torch.bfloat16)
    for name in ("F.linear", "fn+gemv"):
        for _ in range(3):
            whole(fns[name], x, lin, dy)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                whole(fns[name], x, lin, dy)
            torch.cuda.synchronize()
        print(f"\n{name} at {M} x {K} -> {N}, 5 calls")
        print(prof.key_averages().table(sort_by="device_time_total", row_limit=12, max_name_column_width=60))


if __name__ == "__main__":
    main()
