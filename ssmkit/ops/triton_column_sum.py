"""Triton version of ops.column_sum: one program per (block of rows, block of columns) sums its rows in float32 and
writes one row of partial sums, which PyTorch then adds (about a thousand rows: little beside reading g once, the
floor). Deterministic (no atomics): the same g gives the same bits. Float64, fewer rows than MIN_ROWS, and a g whose
sum is to be differentiated take the torch reference."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .column_sum import column_sum_torch
from .dispatch import register

PROGRAM_ROWS = 1024  # about this many row blocks: enough programs to fill a GPU at every width
BM = 32  # rows per load
MIN_ROWS = 65536  # below, PyTorch's sum: one launch where this takes two, on steps that are small and wait on the host


@triton.jit(do_not_specialize=["M", "ROWS"])
def _partials_kernel(G, P, M, N, stride, ROWS, BM: tl.constexpr, BN: tl.constexpr):
    """P[p, cols] = Σ of G's rows [p·ROWS, (p + 1)·ROWS) ∩ [0, M), in float32."""
    p, q = tl.program_id(0), tl.program_id(1)
    cols = q * BN + tl.arange(0, BN)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    r = p.to(tl.int64) * ROWS
    end = tl.minimum(r + ROWS, M)
    while r < end:  # a while loop: Triton's CPU interpreter cannot take a run-time range bound under NumPy >= 2.4
        rows = r + tl.arange(0, BM)
        acc += tl.load(G + rows[:, None] * stride + cols[None, :], mask=(rows < end)[:, None] & (cols < N)[None, :],
                       other=0.0).to(tl.float32)
        r += BM
    tl.store(P + p * N + cols, tl.sum(acc, 0), mask=cols < N)


@register("column_sum", "triton")
def column_sum_triton(g: torch.Tensor) -> torch.Tensor:
    """The kernel (block_sums) for float32 and half types from MIN_ROWS rows on, else the reference (also where the
    sum is to be differentiated: the kernel is not)."""
    if g.dtype == torch.float64 or g.shape[0] < MIN_ROWS or (torch.is_grad_enabled() and g.requires_grad):
        return column_sum_torch(g)
    return block_sums(g)


def block_sums(g: torch.Tensor) -> torch.Tensor:
    """Σ over the rows of g (M, N) by the kernel: row blocks, then their partial sums added."""
    if g.stride(1) != 1:
        g = g.contiguous()
    M, N = g.shape
    rows = max(BM, triton.cdiv(triton.cdiv(M, PROGRAM_ROWS), BM) * BM)  # a multiple of BM
    BN = min(128, triton.next_power_of_2(max(N, 1)))
    partials = torch.empty(triton.cdiv(M, rows), N, device=g.device, dtype=torch.float32)
    if M and N:
        _partials_kernel[(partials.shape[0], triton.cdiv(N, BN))](g, partials, M, N, g.stride(0), rows, BM=BM, BN=BN)
    return partials.sum(0)
