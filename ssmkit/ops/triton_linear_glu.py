"""Triton version of ops.linear_glu for generation steps (up to 64 rows): a program computes a (16 rows × 16
outputs) tile of both halves over K in blocks of 64 and applies the gate (narrow tiles: many programs share W).
Larger batches and float64 take the reference (cuBLAS is the better GEMM there)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import register
from .linear_glu import linear_glu_torch


@triton.jit
def _linear_glu_kernel(X, W, BIAS, Y, B, K, NO, sxb, sxk, HAS_BIAS: tl.constexpr, BB: tl.constexpr,
                       BN: tl.constexpr, BK: tl.constexpr):
    rb = tl.program_id(0) * BB + tl.arange(0, BB)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    mb, mn = rb < B, rn < NO
    acc_a = tl.zeros((BB, BN), dtype=tl.float32)
    acc_g = tl.zeros((BB, BN), dtype=tl.float32)
    k0 = 0
    while k0 < K:
        rk = k0 + tl.arange(0, BK)
        mk = rk < K
        x = tl.load(X + rb[:, None] * sxb + rk[None, :] * sxk, mask=mb[:, None] & mk[None, :], other=0.0)
        wa = tl.load(W + rn[None, :] * K + rk[:, None], mask=mn[None, :] & mk[:, None], other=0.0)
        wg = tl.load(W + (rn[None, :] + NO) * K + rk[:, None], mask=mn[None, :] & mk[:, None], other=0.0)
        acc_a += tl.dot(x, wa, input_precision="ieee")
        acc_g += tl.dot(x, wg, input_precision="ieee")
        k0 += BK
    if HAS_BIAS:
        acc_a += tl.load(BIAS + rn, mask=mn, other=0.0)[None, :]
        acc_g += tl.load(BIAS + NO + rn, mask=mn, other=0.0)[None, :]
    tl.store(Y + rb[:, None] * NO + rn[None, :], acc_a * tl.sigmoid(acc_g), mask=mb[:, None] & mn[None, :])


@register("linear_glu", "triton")
def linear_glu_triton(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if x.shape[0] > 64 or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return linear_glu_torch(x, weight, bias)
    B, K = x.shape
    NO = weight.shape[0] // 2
    y = torch.empty(B, NO, device=x.device, dtype=torch.float32)
    weight = weight.contiguous()
    _linear_glu_kernel[(triton.cdiv(B, 16), triton.cdiv(NO, 16))](
        x, weight, bias if bias is not None else weight, y, B, K, NO, *x.stride(), HAS_BIAS=bias is not None,
        BB=16, BN=16, BK=64, num_warps=2)
    return y
