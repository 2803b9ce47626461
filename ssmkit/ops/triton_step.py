"""Triton version of ops.ssm_step: one program per (channel, block of 16 batch rows) does the state update
z' = z Mᵀ + u b (tl.dot, IEEE float32), the output c · z' + D u and the activation. A program reads its whole tile
of z before writing z', so out may be z itself. Float32 only (float64 takes the reference)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import register
from .step import ssm_step_torch
from .triton_chunkconv import ACT_CODE, _act


@triton.jit(do_not_specialize=["B"])  # one compilation for every batch size
def _step_kernel(Z, U, M, BV, CV, D, Y, Z2, B, S, szb, szh, sub, suh,
                 ACT: tl.constexpr, BB: tl.constexpr, SD: tl.constexpr):
    h = tl.program_id(0)
    H = tl.num_programs(0)
    rb = tl.program_id(1) * BB + tl.arange(0, BB)
    rs = tl.arange(0, SD)
    mb, ms = rb < B, rs < S
    mask = mb[:, None] & ms[None, :]
    z = tl.load(Z + rb[:, None] * szb + h * szh + rs[None, :], mask=mask, other=0.0)
    u = tl.load(U + rb * sub + h * suh, mask=mb, other=0.0)
    m_t = tl.load(M + h * S * S + rs[None, :] * S + rs[:, None], mask=ms[:, None] & ms[None, :], other=0.0)
    bv = tl.load(BV + h * S + rs, mask=ms, other=0.0)
    cv = tl.load(CV + h * S + rs, mask=ms, other=0.0)
    z = tl.dot(z, m_t, input_precision="ieee") + u[:, None] * bv[None, :]
    y = tl.sum(z * cv[None, :], axis=1) + tl.load(D + h) * u
    tl.store(Y + rb * H + h, _act(y, ACT), mask=mb)
    tl.store(Z2 + (rb[:, None] * H + h) * S + rs[None, :], z, mask=mask)


@register("ssm_step", "triton")
def ssm_step_triton(z, u, M, b, c, D, activation: str, out=None):
    if z.dtype != torch.float32 or (out is not None and not out.is_contiguous()):
        return ssm_step_torch(z, u, M, b, c, D, activation, out)
    B, H, S = z.shape
    y = torch.empty(B, H, device=z.device, dtype=torch.float32)
    z2 = torch.empty(B, H, S, device=z.device, dtype=torch.float32) if out is None else out
    BB, SD = 16, max(16, triton.next_power_of_2(S))
    _step_kernel[(H, triton.cdiv(B, BB))](z, u, M.contiguous(), b.contiguous(), c.contiguous(), D.contiguous(), y, z2,
                                          B, S, z.stride(0), z.stride(1), u.stride(0), u.stride(1),
                                          ACT=ACT_CODE[activation], BB=BB, SD=SD, num_warps=4)
    return y, z2
