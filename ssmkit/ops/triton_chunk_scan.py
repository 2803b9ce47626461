"""Triton version of ops.chunk_scan: one program walks all chunks of a block of (channel, batch) rows.

Dense A: a program holds Aᵀ (D × D) and the states of 16 batch rows of one channel, and per chunk does
X ← X Aᵀ + S_c (tl.dot in float32 accuracy: IEEE or 3xTF32). Complex diagonal A: a program holds the (Re, Im) pairs of
a block of rows and updates them elementwise. The walk is bound by the latency of its loads, so each group of chunks
(WALKS) issues all its loads before the dependent updates. The backward is the same kernel run in reverse with Aᵀ
(conj A), which also sums ∂A over the chunks as it walks (the forward states are read beside the loads; the batch
blocks' partial sums are added after). Either direction runs with either matrix: an anti-causal part
(ops/triton_chunkconv.py) scans from the last chunk with A and its gradient from the first with Aᵀ. Float32 only:
float64 tensors take the torch reference (tests, oracles).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .chunk_scan import scan_reference
from .dispatch import register
from .grid_math import cdiv, next_power_of_2


# Per walk (dense A?, summing ∂A?): (chunks whose loads are issued together, tl.dot precision of the dense products).
# The walk is bound by the latency of its loads more than by bandwidth; in the dense adjoint walk the second product
# (∂A) already fills the registers, and 3xTF32 or a longer group spills them. benchmarks/chunk_kernels.py measures
# the choices (H200, B = 16, H = 256, 64 state columns, L = 16k and 64k).
WALKS = {(False, False): (4, None), (False, True): (4, None), (True, False): (4, "tf32x3"), (True, True): (1, "ieee")}


@triton.jit
def _chunk(i, j, n, REVERSE: tl.constexpr):
    """The j-th chunk of the group starting at step i of the walk (from the last chunk when REVERSE), and whether it
    exists."""
    k = i + j
    return k + REVERSE * (n - 1 - 2 * k), k < n


@triton.jit(do_not_specialize=["B", "n"])  # one compilation for every batch size and length
def _dense_scan_kernel(A, S, X, F, G, B, n, D, LD, stride_k, stride_j, REVERSE: tl.constexpr, GRAD: tl.constexpr,
                       BB: tl.constexpr, BD: tl.constexpr, U: tl.constexpr, PREC: tl.constexpr):
    h, pb = tl.program_id(0), tl.program_id(1)
    rb = pb * BB + tl.arange(0, BB)
    rd = tl.arange(0, BD)
    mask_d = rd < D
    # Mt[k, j]: Aᵀ (stride_k = 1, stride_j = D), or A for the adjoint (stride_k = D, stride_j = 1)
    Mt = tl.load(A + h * D * D + rd[:, None] * stride_k + rd[None, :] * stride_j,
                 mask=mask_d[:, None] & mask_d[None, :], other=0.0)
    mask = (rb < B)[:, None] & mask_d[None, :]
    base = h * B * n * LD + rb[:, None] * n * LD + rd[None, :]
    x = tl.zeros((BB, BD), dtype=tl.float32)
    g = tl.zeros((BD, BD), dtype=tl.float32)
    i = 0
    while i < n:  # a while loop: Triton's CPU interpreter cannot take a run-time range bound under NumPy >= 2.4
        ss, fs = (), ()
        for j in tl.static_range(U):  # the group's loads first: none depends on the carried state
            c, inside = _chunk(i, j, n, REVERSE)
            ss = ss + (tl.load(S + base + c * LD, mask=mask & inside, other=0.0).to(tl.float32),)
            if GRAD:
                fs = fs + (tl.load(F + base + c * LD, mask=mask & inside, other=0.0),)
        for j in tl.static_range(U):
            c, inside = _chunk(i, j, n, REVERSE)
            tl.store(X + base + c * LD, x, mask=mask & inside)
            if GRAD:  # ∂A += X_cᵀ F_c over this block's batch rows (zero rows outside)
                g += tl.dot(tl.trans(x), fs[j], input_precision=PREC)
            x = tl.dot(x, Mt, input_precision=PREC) + ss[j]
        i += U
    if GRAD:
        tl.store(G + (h * tl.num_programs(1) + pb) * D * D + rd[:, None] * D + rd[None, :], g,
                 mask=mask_d[:, None] & mask_d[None, :])


@triton.jit(do_not_specialize=["rows", "B", "n"])
def _diag_scan_kernel(A, S, X, F, G, rows, B, n, N2, LD, REVERSE: tl.constexpr, CONJ: tl.constexpr,
                      GRAD: tl.constexpr, BR: tl.constexpr, BK: tl.constexpr, U: tl.constexpr):
    r = tl.program_id(0) * BR + tl.arange(0, BR)
    k = tl.arange(0, BK)
    mask = (r < rows)[:, None] & (k < N2)[None, :]
    a_off = (r // B)[:, None] * (2 * N2) + 2 * k[None, :]
    ar = tl.load(A + a_off, mask=mask, other=0.0)
    ai = tl.load(A + a_off + 1, mask=mask, other=0.0)
    if CONJ:
        ai = -ai
    base = r[:, None] * (n * LD) + 2 * k[None, :]
    xr = tl.zeros((BR, BK), dtype=tl.float32)
    xi = tl.zeros((BR, BK), dtype=tl.float32)
    gr = tl.zeros((BR, BK), dtype=tl.float32)
    gi = tl.zeros((BR, BK), dtype=tl.float32)
    i = 0
    while i < n:
        ss, fs = (), ()
        for j in tl.static_range(U):
            c, inside = _chunk(i, j, n, REVERSE)
            off = base + c * LD
            ss = ss + ((tl.load(S + off, mask=mask & inside, other=0.0).to(tl.float32),
                        tl.load(S + off + 1, mask=mask & inside, other=0.0).to(tl.float32)),)
            if GRAD:
                fs = fs + ((tl.load(F + off, mask=mask & inside, other=0.0),
                            tl.load(F + off + 1, mask=mask & inside, other=0.0)),)
        for j in tl.static_range(U):
            c, inside = _chunk(i, j, n, REVERSE)
            off = base + c * LD
            tl.store(X + off, xr, mask=mask & inside)
            tl.store(X + off + 1, xi, mask=mask & inside)
            if GRAD:  # ∂A += X_c conj(F_c)
                gr += xr * fs[j][0] + xi * fs[j][1]
                gi += xi * fs[j][0] - xr * fs[j][1]
            xr, xi = ar * xr - ai * xi + ss[j][0], ar * xi + ai * xr + ss[j][1]
        i += U
    if GRAD:
        g_off = r[:, None] * (2 * N2) + 2 * k[None, :]
        tl.store(G + g_off, gr, mask=mask)
        tl.store(G + g_off + 1, gi, mask=mask)


def scan_launch(A: torch.Tensor, S: torch.Tensor, reverse: bool, adjoint: bool, X: torch.Tensor | None = None,
                forward_states: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The exclusive scan X of S (H, B, n, D) with A, or with Aᵀ / conj A (adjoint: the gradient's scan), from the
    first chunk or from the last (reverse). X float32 (the states are carried in float32); S float32, or bf16 / fp16
    (the increments that the chunked convolution keeps in the autocast dtype). S and X (and forward_states) may be
    column slices of wider contiguous (H, B, n, LD) tensors (the states of several parts side by side); X, when
    given, is written in place.

    forward_states: the forward scan's X, given to the adjoint scan, which then also returns ∂A = Σ_{b,c} X_c F_cᵀ
    (complex A: Σ X_c conj(F_c)) of its own output X and F = forward_states, summed inside the walk."""
    H, B, n, D = S.shape
    LD = S.stride(2)
    X = torch.empty_like(S, dtype=torch.float32) if X is None else X
    grad = forward_states is not None
    F = forward_states if grad else S
    layout = (B * n * LD, n * LD, LD, 1)
    if any(size > 1 and (t.stride(d) != layout[d]) for t in (S, X, F) for d, size in enumerate(S.shape)):
        raise ValueError(f"scan_launch: S, X and forward_states must be column slices of one contiguous layout, got "
                         f"strides {S.stride()}, {X.stride()} and {F.stride()}")
    if A.is_complex():
        rows, N2 = H * B, D // 2
        BK = next_power_of_2(N2)
        BR = max(1, 128 // BK)
        G = torch.empty(H, B, N2, 2, device=S.device, dtype=torch.float32) if grad else S
        _diag_scan_kernel[(cdiv(rows, BR),)](torch.view_as_real(A).contiguous(), S, X, F, G, rows, B, n, N2,
                                             LD, REVERSE=int(reverse), CONJ=adjoint, GRAD=grad, BR=BR, BK=BK,
                                             U=WALKS[False, grad][0])
        dA = torch.view_as_complex(G.sum(1)) if grad else None
    else:
        A = A.contiguous()
        strides = (D, 1) if adjoint else (1, D)
        BB, BD = 16, max(16, next_power_of_2(D))
        blocks = cdiv(B, BB)
        G = torch.empty(H, blocks, D, D, device=S.device, dtype=torch.float32) if grad else S
        unroll, precision = WALKS[True, grad]
        _dense_scan_kernel[(H, blocks)](A, S, X, F, G, B, n, D, LD, *strides, REVERSE=int(reverse), GRAD=grad, BB=BB,
                                        BD=BD, U=unroll, PREC=precision, num_warps=4)
        dA = G.sum(1) if grad else None
    return (X, dA) if grad else X


class _ChunkScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, S):
        X = scan_launch(A, S.contiguous(), reverse=False, adjoint=False)
        ctx.save_for_backward(A, X)
        return X

    @staticmethod
    def backward(ctx, gX):
        A, X = ctx.saved_tensors
        dS, dA = scan_launch(A, gX.contiguous(), reverse=True, adjoint=True, forward_states=X)
        return dA, dS


@register("chunk_scan", "triton")
def chunk_scan_triton(A: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    if S.dtype != torch.float32:
        return scan_reference(A, S)
    return _ChunkScan.apply(A.to(torch.complex64 if A.is_complex() else torch.float32), S)
