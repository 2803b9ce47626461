"""The chunk matrices' gradients of the chunked convolution's backward (ops/triton_chunkconv.py) in one pass, for its
TF32 precision (under autocast).

With M = B·n chunk rows per channel, U (H, M, T) the input chunks, Ġ (H, M, T) the gated output gradient, ∂S and X
(H, M, S) the adjoint and forward chunk states:

    ∂ToepT = Uᵀ Ġ   (H, T, T),      ∂Win = Uᵀ ∂S   (H, T, S),      ∂WoutT = Xᵀ Ġ   (H, S, T)

Three products that reduce over all M rows, sharing their operands: one kernel reads each of U, Ġ, ∂S and X once (three
cuBLAS products read U and Ġ twice). A program takes a channel, a block of SD state columns and a strided share of
the rows (split-K: the partial sums of the programs of a channel are added after), and multiplies on tensor cores.
In float32 accuracy (3xTF32) its operands fill the registers and it was slower than cuBLAS's float32 products (H200,
B = 16, H = 256, L = 64k: 3.06 ms against 2.72), so the float32 backward keeps those; in TF32 it replaces them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .grid_math import cdiv, next_power_of_2

ROWS = 16  # chunk rows per step of a program (benchmarks/chunk_kernels.py measures the choices)
WARPS = 4
PROGRAMS_PER_SM = 4  # the split of the rows: enough programs to fill the GPU when H is small


@triton.jit
def _rows(P, base, m, M, W, LD, c0, C: tl.constexpr, BM: tl.constexpr):
    rm = m + tl.arange(0, BM)
    rc = c0 + tl.arange(0, C)
    return tl.load(P + base + rm[:, None] * LD + rc[None, :], mask=(rm < M)[:, None] & (rc < W)[None, :],
                   other=0.0).to(tl.float32)  # U and Ġ may be bf16 or fp16 (kept in the autocast dtype)


@triton.jit(do_not_specialize=["M"])
def _grads_kernel(U, G, DS, X, DT, DWIN, DWOUT, M, SR, PS, T: tl.constexpr, SD: tl.constexpr, BM: tl.constexpr,
                  PREC: tl.constexpr):
    h, p, j = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    splits = tl.num_programs(1)
    s0 = j * SD
    bu, bs = h * M * T, h * M * SR
    acc_t = tl.zeros((T, T), dtype=tl.float32)
    acc_in = tl.zeros((T, SD), dtype=tl.float32)
    acc_out = tl.zeros((SD, T), dtype=tl.float32)
    m = p * BM
    u, g = _rows(U, bu, m, M, T, T, 0, T, BM), _rows(G, bu, m, M, T, T, 0, T, BM)
    ds, x = _rows(DS, bs, m, M, SR, SR, s0, SD, BM), _rows(X, bs, m, M, SR, SR, s0, SD, BM)
    while m < M:  # the next rows' loads are issued before this step's products
        nxt = m + splits * BM
        u2, g2 = _rows(U, bu, nxt, M, T, T, 0, T, BM), _rows(G, bu, nxt, M, T, T, 0, T, BM)
        ds2, x2 = _rows(DS, bs, nxt, M, SR, SR, s0, SD, BM), _rows(X, bs, nxt, M, SR, SR, s0, SD, BM)
        ut = tl.trans(u)
        acc_t += tl.dot(ut, g, input_precision=PREC)
        acc_in += tl.dot(ut, ds, input_precision=PREC)
        acc_out += tl.dot(tl.trans(x), g, input_precision=PREC)
        u, g, ds, x = u2, g2, ds2, x2
        m = nxt
    ri, rt, rs = tl.arange(0, T), tl.arange(0, T), s0 + tl.arange(0, SD)
    part = h * splits + p
    tl.store(DT + part * PS + ri[:, None] * T + rt[None, :], acc_t, mask=(j == 0) & (ri < T)[:, None])
    tl.store(DWIN + part * PS + ri[:, None] * SR + rs[None, :], acc_in, mask=(rs < SR)[None, :])
    tl.store(DWOUT + part * PS + rs[:, None] * T + rt[None, :], acc_out, mask=(rs < SR)[:, None])


def chunk_matrix_grads(U: torch.Tensor, G: torch.Tensor, dS: torch.Tensor, X: torch.Tensor, precision: str = "tf32"
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Uᵀ Ġ, Uᵀ ∂S, Xᵀ Ġ) summed over the rows: U, G (H, M, T) and dS, X (H, M, S) contiguous float32 (U and G also
    bf16 or fp16); precision: tl.dot's input_precision."""
    H, M, T = U.shape
    SR = dS.shape[-1]
    for name, t, width in (("U", U, T), ("G", G, T), ("dS", dS, SR), ("X", X, SR)):
        dtypes = (torch.float32, torch.bfloat16, torch.float16) if name in ("U", "G") else (torch.float32,)
        if t.shape != (H, M, width) or not t.is_contiguous() or t.dtype not in dtypes:
            raise ValueError(f"chunk_matrix_grads: {name} must be contiguous {(H, M, width)} in "
                             f"{' or '.join(str(d) for d in dtypes)}, got {tuple(t.shape)} {t.dtype}")
    SD = max(16, min(64, next_power_of_2(SR)))
    blocks = cdiv(SR, SD)
    sms = torch.cuda.get_device_properties(U.device).multi_processor_count if U.is_cuda else 1
    splits = max(1, min(cdiv(M, ROWS), cdiv(PROGRAMS_PER_SM * sms, H * blocks)))
    # each program's partial sums of the three, side by side in one row of P, and the splits added in one sum
    sizes = (T * T, T * SR, SR * T)
    P = torch.empty(H, splits, sum(sizes), device=U.device, dtype=torch.float32)
    dT, dWin, dWout = P.split(sizes, dim=-1)
    _grads_kernel[(H, splits, blocks)](U, G, dS, X, dT, dWin, dWout, M, SR, P.shape[-1], T=T, SD=SD, BM=ROWS,
                                       PREC=precision, num_warps=WARPS)
    dT, dWin, dWout = P.sum(1).split(sizes, dim=-1)
    return dT.unflatten(1, (T, T)), dWin.unflatten(1, (T, SR)), dWout.unflatten(1, (SR, T))
