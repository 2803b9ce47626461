"""Triton version of ops.chunk_scan: one program walks all chunks of a block of (channel, batch) rows.

Dense A: a program holds Aᵀ (D × D) and the states of 16 batch rows of one channel, and per chunk does
X ← X Aᵀ + S_c (tl.dot in IEEE float32). Complex diagonal A: a program holds the (Re, Im) pairs of a block of rows
and updates them elementwise. The backward is the same kernel run in reverse with Aᵀ (conj A); ∂A is a reduction
(einsum) over batch and chunks. Either direction runs with either matrix: an anti-causal part
(ops/triton_chunkconv.py) scans from the last chunk with A and its gradient from the first with Aᵀ. Float32 only:
float64 tensors take the torch reference (tests, oracles).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .chunk_scan import scan_reference
from .dispatch import register


@triton.jit(do_not_specialize=["B", "n"])  # one compilation for every batch size and length
def _dense_scan_kernel(A, S, X, B, n, D, LD, stride_k, stride_j, REVERSE: tl.constexpr, BB: tl.constexpr,
                       BD: tl.constexpr):
    h = tl.program_id(0)
    rb = tl.program_id(1) * BB + tl.arange(0, BB)
    rd = tl.arange(0, BD)
    mask_d = rd < D
    # Mt[k, j]: Aᵀ (stride_k = 1, stride_j = D), or A for the adjoint (stride_k = D, stride_j = 1)
    Mt = tl.load(A + h * D * D + rd[:, None] * stride_k + rd[None, :] * stride_j,
                 mask=mask_d[:, None] & mask_d[None, :], other=0.0)
    mask = (rb < B)[:, None] & mask_d[None, :]
    base = h * B * n * LD + rb[:, None] * n * LD + rd[None, :]
    x = tl.zeros((BB, BD), dtype=tl.float32)
    i = 0
    while i < n:  # a while loop: Triton's CPU interpreter cannot take a run-time range bound under NumPy >= 2.4
        c = i + REVERSE * (n - 1 - 2 * i)
        tl.store(X + base + c * LD, x, mask=mask)
        s = tl.load(S + base + c * LD, mask=mask, other=0.0)
        x = tl.dot(x, Mt, input_precision="ieee") + s
        i += 1


@triton.jit(do_not_specialize=["rows", "B", "n"])
def _diag_scan_kernel(A, S, X, rows, B, n, N2, LD, REVERSE: tl.constexpr, CONJ: tl.constexpr, BR: tl.constexpr,
                      BK: tl.constexpr):
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
    i = 0
    while i < n:
        c = i + REVERSE * (n - 1 - 2 * i)
        off = base + c * LD
        tl.store(X + off, xr, mask=mask)
        tl.store(X + off + 1, xi, mask=mask)
        sr = tl.load(S + off, mask=mask, other=0.0)
        si = tl.load(S + off + 1, mask=mask, other=0.0)
        xr, xi = ar * xr - ai * xi + sr, ar * xi + ai * xr + si
        i += 1


def scan_launch(A: torch.Tensor, S: torch.Tensor, reverse: bool, adjoint: bool,
                X: torch.Tensor | None = None) -> torch.Tensor:
    """The exclusive scan of S (H, B, n, D) float32 with A, or with Aᵀ / conj A (adjoint: the gradient's scan), from
    the first chunk or from the last (reverse). S and X may be column slices of wider contiguous (H, B, n, LD)
    tensors (the states of several parts side by side); X, when given, is written in place."""
    H, B, n, D = S.shape
    LD = S.stride(2)
    X = torch.empty_like(S) if X is None else X
    layout = (B * n * LD, n * LD, LD, 1)
    if any(size > 1 and (t.stride(d) != layout[d]) for t in (S, X) for d, size in enumerate(S.shape)):
        raise ValueError(f"scan_launch: S and X must be column slices of one contiguous layout, got strides "
                         f"{S.stride()} and {X.stride()}")
    if A.is_complex():
        rows, N2 = H * B, D // 2
        BK = triton.next_power_of_2(N2)
        BR = max(1, 128 // BK)
        _diag_scan_kernel[(triton.cdiv(rows, BR),)](torch.view_as_real(A).contiguous(), S, X, rows, B, n, N2, LD,
                                                    REVERSE=int(reverse), CONJ=adjoint, BR=BR, BK=BK)
    else:
        A = A.contiguous()
        strides = (D, 1) if adjoint else (1, D)
        BB, BD = 16, max(16, triton.next_power_of_2(D))
        _dense_scan_kernel[(H, triton.cdiv(B, BB))](A, S, X, B, n, D, LD, *strides, REVERSE=int(reverse), BB=BB,
                                                    BD=BD, num_warps=4)
    return X


def scan_grad_A(A: torch.Tensor, dS: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """∂A = Σ_{b,c} ∂S_c X_cᵀ (dense) or Σ ∂S_c conj(X_c) (complex diagonal, PyTorch's convention)."""
    if A.is_complex():
        as_c = lambda t: torch.view_as_complex(t.unflatten(-1, (-1, 2)))  # noqa: E731
        return torch.einsum("hbcn,hbcn->hn", as_c(dS), as_c(X).conj())
    return torch.einsum("hbcd,hbce->hde", dS, X)


class _ChunkScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, S):
        X = scan_launch(A, S.contiguous(), reverse=False, adjoint=False)
        ctx.save_for_backward(A, X)
        return X

    @staticmethod
    def backward(ctx, gX):
        A, X = ctx.saved_tensors
        dS = scan_launch(A, gX.contiguous(), reverse=True, adjoint=True)
        return scan_grad_A(A, dS, X), dS


@register("chunk_scan", "triton")
def chunk_scan_triton(A: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    if S.dtype != torch.float32:
        return scan_reference(A, S)
    return _ChunkScan.apply(A.to(torch.complex64 if A.is_complex() else torch.float32), S)
