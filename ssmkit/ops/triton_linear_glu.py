"""Triton versions of ops.linear_glu, y = a ⊙ σ(g) with [a | g] = x Wᵀ + bias.

**Rows of a token step** (up to STEP_ROWS rows, float32, no autograd): one program per (block of BN outputs, row)
reads its 2·BN rows of W (contiguous along K) and accumulates both halves by multiply-and-sum in float32. A
matrix-vector form: at a step's batch sizes the work is reading W, which stays in L2 across rows. Measured on an H200
inside the generation graph (4 × 256 stack, benchmarks/generation.py): BN = 4 on one warp beat BN = 8 / 16, a tl.dot
tile version (2.3× slower at batch 1) and cuBLAS + GLU (19.0k → 22.8k tok/s at batch 1, 271k → 337k at batch 16,
equal at 256).

**Whole sequences and training in float32** (M = B·L rows of X (M, K), W (2N, K)): the forward as tiles on tensor
cores, Z = X Wᵀ + bias in 3xTF32 (float32 accuracy; the cuBLAS float32 GEMM that nn.Linear takes with TF32 off runs
without tensor cores) with the gate in the epilogue: the two halves a and g of a block of outputs are two
accumulators of one program, Y = a ⊙ σ(g) is written beside Z (kept for backward), and no separate pass reads Z
again. The backward: one Triton pass forms Ż = GLU'(Z)ᵀ Ẏ and the bias gradient ḃ = Σ_rows Ż together (each
program's column sums, added up by one small torch sum), where PyTorch's glu_backward and then a column sum passed over
Z, Ẏ and Ż twice; then cuBLAS's two products Ẋ = Ż W and Ẇ = Żᵀ X. Triton tiles that formed Ż in their prologues
instead were slower (grad_x + grad_w together 4.4–8.0 ms against PyTorch's 3.3 at M = 262,144, K = N = 256 on an
H200, benchmarks/linear_glu.py), as was the fused forward in bf16 at the width of ListOps (0.22 ms against cuBLAS +
GLU's 0.08 at M = 64,000, K = N = 128), so under autocast the forward is cuBLAS's GEMM (the reference's values)
followed by a GLU pass of ours in whole-row tiles (PyTorch's GLU reads the two halves as strided views), and the
backward's first pass is ours. Forward, float32, same GPU: 1.23 against 1.82 ms
(M = 262,144, K = N = 256), 0.10 against 0.16 (M = 64,000, K = N = 128).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from .dispatch import register
from .float32_backward import float32_backward
from .grid_math import cdiv, next_power_of_2
from .linear_glu import linear_glu_torch

STEP_ROWS = 256  # up to this many rows without autograd (a token step's batch), the matrix-vector kernel
TILE = (128, 64, 32, 8, 3)  # (BM rows, BN outputs, BK inputs, warps, stages), benchmarks/linear_glu.py
GLU_BACKWARD_TILE = (64, 64, 4)  # (BM rows, BN outputs, warps) of _glu_backward_kernel and _glu_forward_kernel
HALF = (torch.bfloat16, torch.float16)
# under autocast, the fused backward from this many rows: below, a layer's step is bound by its host, and the
# Function's Python cost more than the pass it saves (S4 at B 16, L 1k, bf16: 3.43 against 3.24 ms; at 16k 6.15
# against 6.32, one H100)
AUTOCAST_ROWS = 65536


@triton.jit(do_not_specialize=["B"])  # one compilation for every batch size
def _linear_glu_kernel(X, W, BIAS, Y, K, H, sxb, BN: tl.constexpr, BK: tl.constexpr):
    rn = tl.program_id(0) * BN + tl.arange(0, BN)
    b = tl.program_id(1)
    mn = rn < H
    acc_a = tl.zeros((BN,), dtype=tl.float32)
    acc_g = tl.zeros((BN,), dtype=tl.float32)
    k0 = 0
    while k0 < K:  # a while loop: Triton's CPU interpreter cannot take a run-time range bound under NumPy >= 2.4
        rk = k0 + tl.arange(0, BK)
        mk = rk < K
        x = tl.load(X + b * sxb + rk, mask=mk, other=0.0)
        w_mask = mn[:, None] & mk[None, :]
        wa = tl.load(W + rn[:, None] * K + rk[None, :], mask=w_mask, other=0.0)
        wg = tl.load(W + (rn[:, None] + H) * K + rk[None, :], mask=w_mask, other=0.0)
        acc_a += tl.sum(wa * x[None, :], axis=1)
        acc_g += tl.sum(wg * x[None, :], axis=1)
        k0 += BK
    a = acc_a + tl.load(BIAS + rn, mask=mn, other=0.0)
    g = acc_g + tl.load(BIAS + H + rn, mask=mn, other=0.0)
    tl.store(Y + b * H + rn, a * tl.sigmoid(g), mask=mn)


@triton.jit(do_not_specialize=["M"])
def _forward_kernel(X, W, BIAS, Y, Z, M, sx, sk, K: tl.constexpr, N: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                    BK: tl.constexpr, KEEP_Z: tl.constexpr):
    """Program (block of BM rows, block of BN outputs): a = X Wₐᵀ + bₐ, g = X W_gᵀ + b_g over K in BK steps (3xTF32),
    then Y = a ⊙ σ(g), and Z = [a | g] with KEEP_Z. X[m, k] at X + m·sx + k·sk: row-major (sk = 1) or column-major
    (sx = 1, the channel-major output of ops.chunkconv_act read as it is). Offsets in int64: M·2N passes 2³¹ in large
    layers."""
    rm = (tl.program_id(0) * BM + tl.arange(0, BM)).to(tl.int64)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mm, mn = rm < M, rn < N
    acc_a = tl.zeros((BM, BN), dtype=tl.float32)
    acc_g = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):  # K is a constant: the loop is pipelined on the GPU and the interpreter takes it
        rk = k0 + tl.arange(0, BK)
        mk = rk < K
        x = tl.load(X + rm[:, None] * sx + rk[None, :].to(tl.int64) * sk, mask=mm[:, None] & mk[None, :], other=0.0)
        w_mask = mk[:, None] & mn[None, :]
        wa = tl.load(W + rn[None, :] * K + rk[:, None], mask=w_mask, other=0.0)  # (BK, BN) = W[n, k]ᵀ
        wg = tl.load(W + (rn[None, :] + N) * K + rk[:, None], mask=w_mask, other=0.0)
        acc_a = tl.dot(x, wa, acc_a, input_precision="tf32x3")
        acc_g = tl.dot(x, wg, acc_g, input_precision="tf32x3")
    a = acc_a + tl.load(BIAS + rn, mask=mn, other=0.0)[None, :]
    g = acc_g + tl.load(BIAS + N + rn, mask=mn, other=0.0)[None, :]
    out = mm[:, None] & mn[None, :]
    if KEEP_Z:  # for backward
        z = Z + rm[:, None] * (2 * N) + rn[None, :]
        tl.store(z, a, mask=out)
        tl.store(z + N, g, mask=out)
    tl.store(Y + rm[:, None] * N + rn[None, :], a * tl.sigmoid(g), mask=out)


def _tile_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, keep_z: bool):
    """(y (M, N), Z (M, 2N) or None) of x (M, K) float32, row-major or column-major, weight (2N, K), bias (2N,)."""
    M, K = x.shape
    N = weight.shape[0] // 2
    y = torch.empty(M, N, device=x.device, dtype=torch.float32)
    z = torch.empty(M, 2 * N, device=x.device, dtype=torch.float32) if keep_z else None
    BM, BN, BK, warps, stages = TILE
    _forward_kernel[(cdiv(M, BM), cdiv(N, BN))](x, weight.contiguous(), bias.contiguous(), y,
                                                y if z is None else z, M, *x.stride(), K=K, N=N,
                                                BM=BM, BN=BN, BK=BK, KEEP_Z=keep_z, num_warps=warps,
                                                num_stages=stages)
    return y, z


@triton.jit(do_not_specialize=["M"])
def _glu_forward_kernel(Z, Y, M, N: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    """Program (block of BM rows, block of BN outputs): y = a ⊙ σ(g) from Z = [a | g], in float32, written to Y in its
    dtype."""
    rm = (tl.program_id(0) * BM + tl.arange(0, BM)).to(tl.int64)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    live = (rm < M)[:, None] & (rn < N)[None, :]
    z = rm[:, None] * (2 * N) + rn[None, :]
    a = tl.load(Z + z, mask=live, other=0.0).to(tl.float32)
    g = tl.load(Z + z + N, mask=live, other=0.0).to(tl.float32)
    tl.store(Y + rm[:, None] * N + rn[None, :], (a * tl.sigmoid(g)).to(Y.dtype.element_ty), mask=live)


def _glu_forward(z: torch.Tensor) -> torch.Tensor:
    """Y = a ⊙ σ(g) (M, N) from a contiguous Z = [a | g] (M, 2N), in z's dtype: one read of Z and one write of Y, the
    bytes F.glu moves, in tiles over whole rows (GLU_BACKWARD_TILE) where PyTorch's kernel reads the two halves as two
    strided views."""
    M, N = z.shape[0], z.shape[1] // 2
    y = torch.empty(M, N, device=z.device, dtype=z.dtype)
    BM, BN, warps = GLU_BACKWARD_TILE
    _glu_forward_kernel[(cdiv(M, BM), cdiv(N, BN))](z, y, M, N=N, BM=BM, BN=BN, num_warps=warps)
    return y


@triton.jit(do_not_specialize=["M"])
def _glu_backward_kernel(Z, DY, DZ, PART, M, N: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
    """Program (block of BM rows, block of BN outputs): ȧ = ẏ σ(g), ġ = ẏ a σ(g)(1 − σ(g)) from Z = [a | g] and Ẏ, in
    float32, written to DZ in its dtype; the block's column sums of [ȧ | ġ] (float32, before rounding) to PART."""
    rm = (tl.program_id(0) * BM + tl.arange(0, BM)).to(tl.int64)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mn = rn < N
    live = (rm < M)[:, None] & mn[None, :]
    z = rm[:, None] * (2 * N) + rn[None, :]
    a = tl.load(Z + z, mask=live, other=0.0).to(tl.float32)
    g = tl.load(Z + z + N, mask=live, other=0.0).to(tl.float32)
    dy = tl.load(DY + rm[:, None] * N + rn[None, :], mask=live, other=0.0).to(tl.float32)
    s = tl.sigmoid(g)
    da = dy * s
    dg = da * a * (1.0 - s)
    tl.store(DZ + z, da.to(DZ.dtype.element_ty), mask=live)
    tl.store(DZ + z + N, dg.to(DZ.dtype.element_ty), mask=live)
    part = PART + tl.program_id(0) * (2 * N) + rn
    tl.store(part, tl.sum(da, axis=0), mask=mn)
    tl.store(part + N, tl.sum(dg, axis=0), mask=mn)


def _glu_backward(dy: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Ż (M, 2N) in z's dtype, ḃ = Σ_rows Ż (2N,) float32) from Ẏ (M, N) and Z (M, 2N): the GLU's backward and the
    bias gradient in one pass over Z and Ẏ, where PyTorch's glu_backward and then the bias sum each passed over them."""
    M, N = dy.shape
    dz = torch.empty_like(z)
    BM, BN, warps = GLU_BACKWARD_TILE
    part = torch.empty(cdiv(M, BM), 2 * N, device=z.device, dtype=torch.float32)
    _glu_backward_kernel[(cdiv(M, BM), cdiv(N, BN))](z, dy.contiguous(), dz, part, M, N=N, BM=BM, BN=BN,
                                                       num_warps=warps)
    return dz, part.sum(0)


def _input_grads(ctx, x, weight, dz, db, dtypes=None):
    """(Ẋ, Ẇ, ḃ) of Z = x Wᵀ + b from Ż, as ctx asks for them; in ``dtypes`` (x's, W's, b's) where given, else in
    x's, W's and Ż's."""
    dx = None
    if ctx.needs_input_grad[0]:  # in x's layout: a column-major x (channel-major activations) gets Ẋᵀ = Wᵀ Żᵀ,
        # which the layer's convolution then reads without a transpose (triton_chunkconv.to_channel_major)
        dx = (weight.t() @ dz.t()).t() if _column_major(x) else dz @ weight
    dw = dz.t() @ x if ctx.needs_input_grad[1] else None
    db = db if ctx.needs_input_grad[2] else None
    dx_dtype, dw_dtype, db_dtype = dtypes or (x.dtype, weight.dtype, dz.dtype)
    return tuple(None if g is None else g.to(d) for g, d in ((dx, dx_dtype), (dw, dw_dtype), (db, db_dtype)))


class _TileLinearGLU(torch.autograd.Function):
    """The tiles' forward (Z kept); backward Ż = GLU'(Z)ᵀẎ and ḃ = Σ_rows Ż (_glu_backward), Ẋ = Ż W, Ẇ = Żᵀ X.
    Once differentiable: the saved Z has no graph to x and W, so a second derivative raises instead of being wrong."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        y, z = _tile_forward(x, weight, bias, keep_z=True)
        ctx.save_for_backward(x, weight, z)
        return y

    @staticmethod
    @float32_backward
    @once_differentiable
    def backward(ctx, dy):
        x, weight, z = ctx.saved_tensors
        return _input_grads(ctx, x, weight, *_glu_backward(dy, z))


class _AutocastLinearGLU(torch.autograd.Function):
    """Under autocast (called with it off): x, W and b cast to its dtype inside (as nn.Linear's autocast casts them,
    but with no autograd node per cast), Z = x Wᵀ + b by cuBLAS, as nn.Linear runs it (the same values), and
    y = GLU(Z) by _glu_forward (PyTorch's GLU to within the rounding of its dtype: both take σ in float32). Backward:
    Ż and ḃ from _glu_backward (ḃ summed in float32), then cuBLAS's Ẋ, Ẇ in the autocast dtype, each gradient
    handed back in its input's dtype (what the casts' own backward would do, ḃ without a rounding to bf16 first)."""

    @staticmethod
    def forward(ctx, x, weight, bias, dtype):
        xc, wc = x.to(dtype), weight.to(dtype)
        z = torch.addmm(bias.to(dtype), xc, wc.t())
        ctx.save_for_backward(xc, wc, z)
        ctx.dtypes = (x.dtype, weight.dtype, bias.dtype)
        return _glu_forward(z)

    @staticmethod
    @float32_backward
    @once_differentiable
    def backward(ctx, dy):
        x, weight, z = ctx.saved_tensors
        return (*_input_grads(ctx, x, weight, *_glu_backward(dy, z), ctx.dtypes), None)


def _column_major(x: torch.Tensor) -> bool:
    """Whether x (M, K) is stored column by column (and is not also a row-major matrix: K = 1)."""
    return x.stride(0) == 1 and x.stride(1) == x.shape[0] and x.shape[1] > 1


def _step_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The matrix-vector kernel over the rows of x (..., K), float32."""
    K, H = x.shape[-1], weight.shape[0] // 2
    rows = x.reshape(-1, K)
    if rows.stride(-1) != 1:
        rows = rows.contiguous()
    y = torch.empty(rows.shape[0], H, device=x.device, dtype=torch.float32)
    BN, BK = 4, min(256, next_power_of_2(K))
    _linear_glu_kernel[(cdiv(H, BN), rows.shape[0])](rows, weight.contiguous(), bias.contiguous(), y, K, H,
                                                     rows.stride(0), BN=BN, BK=BK, num_warps=1)
    return y.reshape(*x.shape[:-1], H)


def _autocast_rows(x2: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Training under autocast: _AutocastLinearGLU in its dtype, run with autocast off (it casts its inputs itself)."""
    dtype = torch.get_autocast_dtype(x2.device.type)
    with torch.autocast(x2.device.type, enabled=False):
        return _AutocastLinearGLU.apply(x2, weight, bias, dtype)


@register("linear_glu", "triton")
def linear_glu_triton(x, weight, bias):
    """float32 without autocast: the step kernel for up to STEP_ROWS rows without autograd, the tiles for the rest.
    Under autocast with autograd (float32 parameters), from AUTOCAST_ROWS rows: _AutocastLinearGLU. Anything else
    (autocast without autograd, float64, parameters that are not float32, empty inputs) takes the reference."""
    K, H = x.shape[-1], weight.shape[0] // 2
    autocast = torch.is_autocast_enabled(x.device.type)
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or bias.requires_grad)
    plain = x.dtype == torch.float32 and not autocast  # the float32 kernels
    if (not weight.dtype == bias.dtype == torch.float32 or x.dtype not in (torch.float32, *HALF)
            or not (plain or autocast and grad) or K == 0 or x.numel() == 0):
        return linear_glu_torch(x, weight, bias)
    rows = x.numel() // K
    if not grad and rows <= STEP_ROWS:
        return _step_rows(x, weight, bias)
    x2 = x if x.dim() == 2 else x.reshape(rows, K)  # (a reshape, even to the same shape, is an autograd node)
    if x2.stride(-1) != 1 and not _column_major(x2):  # the tiles read either layout
        x2 = x2.contiguous()
    if autocast:
        y = _autocast_rows(x2, weight, bias) if rows >= AUTOCAST_ROWS else linear_glu_torch(x2, weight, bias)
    else:
        y = _TileLinearGLU.apply(x2, weight, bias) if grad else _tile_forward(x2, weight, bias, keep_z=False)[0]
    return y if x.dim() == 2 else y.reshape(*x.shape[:-1], H)
