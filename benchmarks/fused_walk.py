"""Prototype, forward only: the chunked convolution of one causal diagonal part (S4D's) as one walk per (channel,
batch row), the chunk states never written as increments. A GPU benchmark with a correctness check, not a test.

    python benchmarks/fused_walk.py [--lengths 16384,65536] [--blocks 16,32,64] [--bf16]

ssmkit's forward (ops/triton_chunkconv.py) runs three passes over (H, B, n, S) float32 chunk states: the projection
writes the increments S = U Win, the scan reads them and writes the states X, and the outputs pass reads X. At B = 16,
L = 16k, H = 256, N = 64 each pass moves 268 MB (~0.09 ms at 3 TB/s). Here one program per (channel, batch row)
walks its chunks in blocks of BC, each block:

    S'_k = U_{c0+k−1} Win (k ≥ 1),  S'_0 = the carried state X_{c0}
    X_{c0+k} = A X_{c0+k−1} + S'_k      tl.associative_scan over the block (complex pairs, per mode)
    y = U ToepT + X WoutT,   out = act(y) (and act'(y) kept for the backward)
    X_{c0+BC} = A X_{c0+BC−1} + U_{c0+BC−1} Win   (the next block's carry)

and writes the states X once (the backward reads them), or not at all (inference). Timed against ssmkit's forward of
the same op (chunkconv_act, GELU, with gradients wanted, so that both keep act'(y) and X).

Measured and not kept (one H100, bf16, L = 16k, 2026-12-06): ssmkit's forward 0.88 ms; the walk 2.53 / 2.29 / 1.71 ms
with BC = 16 / 32 / 64, 2.02 / 1.43 / 0.96 without storing the states. The 4,096 programs each walk their chunks in
order, and each step of the walk (a block's scan, three small products, the carry's reductions) waits on the last:
the walk is bound by that chain, not by the bytes the three-pass forward moves. Integrated into the layer (branch
`walk`), S4D's forward + backward went from 3.85 to 5.24 ms.
"""
from __future__ import annotations

import argparse
import os

import torch
import triton
import triton.language as tl

import ssmkit
from ssmkit.layers.chunk_parts import build_parts
from ssmkit.ops import ChunkPart, chunkconv_act
from ssmkit.ops.triton_chunkconv import ACT_CODE, DOT_PRECISION, _act, _act_grad, to_channel_major
from ssmkit.ops.triton_scan import _compose

B, H, N = 16, 256, 64


@triton.jit(do_not_specialize=["n"])
def _walk_kernel(U, TOEP, WIN, WOUT, A, OUT, DACT, XS, n, N2, ACT: tl.constexpr, STORE_GRAD: tl.constexpr,
                 STORE_STATES: tl.constexpr, BC: tl.constexpr, T: tl.constexpr, NP: tl.constexpr,
                 PREC: tl.constexpr):
    h, b = tl.program_id(0), tl.program_id(1)
    row = h * tl.num_programs(1) + b
    rt, rn, rk = tl.arange(0, T), tl.arange(0, NP), tl.arange(0, BC)
    mn = rn < N2
    S = 2 * N2
    toep = tl.load(TOEP + h * T * T + rt[:, None] * T + rt[None, :])
    win = WIN + h * T * S + rt[:, None] * S + 2 * rn[None, :]
    win_r = tl.load(win, mask=mn[None, :], other=0.0)
    win_i = tl.load(win + 1, mask=mn[None, :], other=0.0)
    wout = WOUT + h * S * T + (2 * rn[:, None]) * T + rt[None, :]
    wout_r = tl.load(wout, mask=mn[:, None], other=0.0)
    wout_i = tl.load(wout + T, mask=mn[:, None], other=0.0)
    ar = tl.load(A + h * S + 2 * rn, mask=mn, other=0.0)
    ai = tl.load(A + h * S + 2 * rn + 1, mask=mn, other=0.0)
    Ar = tl.zeros((BC, NP), dtype=tl.float32) + ar[None, :]
    Ai = tl.zeros((BC, NP), dtype=tl.float32) + ai[None, :]
    cr = tl.zeros((NP,), dtype=tl.float32)
    ci = tl.zeros((NP,), dtype=tl.float32)
    base = row * n * T
    c0 = 0
    while c0 < n:
        rows = c0 + rk
        rmask = rows < n
        offs = base + rows[:, None] * T + rt[None, :]
        u = tl.load(U + offs, mask=rmask[:, None], other=0.0).to(tl.float32)
        prev = rmask & (rows >= 1)
        u_prev = tl.load(U + offs - T, mask=prev[:, None], other=0.0).to(tl.float32)
        first = (rk == 0)[:, None]
        sr = tl.where(first, cr[None, :], tl.dot(u_prev, win_r, input_precision=PREC))
        si = tl.where(first, ci[None, :], tl.dot(u_prev, win_i, input_precision=PREC))
        _, _, xr, xi = tl.associative_scan((Ar, Ai, sr, si), axis=0, combine_fn=_compose)
        y = tl.dot(u, toep, input_precision=PREC)
        y += tl.dot(xr, wout_r, input_precision=PREC)
        y += tl.dot(xi, wout_i, input_precision=PREC)
        if STORE_GRAD:
            tl.store(DACT + offs, _act_grad(y, ACT).to(DACT.dtype.element_ty), mask=rmask[:, None])
        tl.store(OUT + offs, _act(y, ACT).to(OUT.dtype.element_ty), mask=rmask[:, None])
        if STORE_STATES:
            xs = XS + (row * n + rows[:, None]) * S + 2 * rn[None, :]
            tl.store(xs, xr, mask=rmask[:, None] & mn[None, :])
            tl.store(xs + 1, xi, mask=rmask[:, None] & mn[None, :])
        last = (rows == tl.minimum(c0 + BC, n) - 1)[:, None]
        xlr = tl.sum(tl.where(last, xr, 0.0), axis=0)
        xli = tl.sum(tl.where(last, xi, 0.0), axis=0)
        ul = tl.sum(tl.where(last, u, 0.0), axis=0)
        slr = tl.sum(ul[:, None] * win_r, axis=0)
        sli = tl.sum(ul[:, None] * win_i, axis=0)
        cr, ci = ar * xlr - ai * xli + slr, ar * xli + ai * xlr + sli
        c0 += BC


def walk(u: torch.Tensor, part: ChunkPart, activation: str, precision: str, out_dtype, BC: int,
         store_states: bool = True):
    """act(y) (B, L, H) of one causal diagonal part; also act'(y) and the states X when store_states."""
    Bn, L, Hn = u.shape
    T = part.ToepT.shape[-1]
    n = triton.cdiv(L, T)
    pad = n * T - L
    half = precision == "tf32" and out_dtype in (torch.bfloat16, torch.float16)
    x = to_channel_major(u, pad, dtype=out_dtype if half else torch.float32)
    N2 = part.A.shape[-1]
    out = torch.empty_like(x, dtype=out_dtype)
    dact = torch.empty_like(x, dtype=out_dtype if half else torch.float32) if store_states else out
    XS = torch.empty(Hn, Bn, n, 2 * N2, device=u.device) if store_states else out
    _walk_kernel[(Hn, Bn)](x, part.ToepT.contiguous(), part.Win.contiguous(), part.WoutT.contiguous(),
                           torch.view_as_real(part.A.contiguous()), out, dact, XS, n, N2, ACT=ACT_CODE[activation],
                           STORE_GRAD=store_states, STORE_STATES=store_states, BC=BC, T=T,
                           NP=max(16, triton.next_power_of_2(N2)), PREC=DOT_PRECISION[precision], num_warps=4)
    return out[..., pad:].permute(1, 2, 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", default="16384,65536")
    p.add_argument("--blocks", default="16,32,64")
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        raise SystemExit("fused_walk.py: needs a CUDA GPU, or TRITON_INTERPRET=1 for a small check on a CPU")
    layer = ssmkit.S4D(d_model=H if dev == "cuda" else 4, d_state=N, init="lin").to(dev)
    with torch.no_grad():
        part = ChunkPart(*build_parts(layer.kernel, layer.D, False, 1.0))
    precision, out_dtype = ("tf32", torch.bfloat16) if a.bf16 else ("float32", torch.float32)
    blocks = [int(v) for v in a.blocks.split(",")]
    # correctness: the walk against ssmkit's op (its own backend on this device) at a length that pads
    u = torch.randn(2, 64 * 20 - 5, layer.H, device=dev)
    want = chunkconv_act(u, [part], "gelu", precision, out_dtype).float()
    for BC in blocks:
        got = walk(u, part, "gelu", precision, out_dtype, BC).float()
        print(f"BC={BC}: max rel difference to chunkconv_act {((got - want).norm() / want.norm()).item():.1e}")
    if dev == "cpu":
        return
    from triton.testing import do_bench
    rows = []
    for L in map(int, a.lengths.split(",")):
        u = torch.randn(B, L, H, device=dev, requires_grad=True)
        parts = [ChunkPart(*(t.detach().requires_grad_() for t in (part.ToepT, part.Win, part.WoutT, part.A)))]
        ms = {"ssmkit": do_bench(lambda: chunkconv_act(u, parts, "gelu", precision, out_dtype), return_mode="median")}
        for BC in blocks:
            ms[f"walk {BC}"] = do_bench(lambda: walk(u, part, "gelu", precision, out_dtype, BC), return_mode="median")
            ms[f"walk {BC}, no states"] = do_bench(lambda: walk(u, part, "gelu", precision, out_dtype, BC, False),
                                                   return_mode="median")
        rows.append((L, ms))
        print(L, {k: round(v, 3) for k, v in ms.items()}, flush=True)
    print(f"\n{torch.cuda.get_device_name()}, forward ms, B {B}, H {H}, N {N}, {'bf16' if a.bf16 else 'float32'}")
    for L, ms in rows:
        print(f"| {L} | " + " | ".join(f"{k} {v:.3f}" for k, v in ms.items()) + " |")


if __name__ == "__main__":
    main()
