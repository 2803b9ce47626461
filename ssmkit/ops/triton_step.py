"""Triton version of ops.ssm_step: the state update z' = M z + b u, the output c · z' + D u and the activation of a
channel in one program, float32.

Two forms, by batch size: up to ROWS_MAX rows, one program per (channel, ROWS rows) keeps the channel's M in
registers and does one matrix-vector product per row (multiply-and-sum); above, one program per (channel, block of
16 rows) does z' = z Mᵀ + u b as a tl.dot tile (IEEE float32). The constants come from an A/B inside the generation
graph on an H200 (4 layers of S4D d_model 256, tokens/s; rN wW = ROWS N with W warps):

    batch   tile     r1 w2    r2 w2    r4 w2    r4 w4
    1       23.0k    40.9k    40.5k    40.5k    39.5k
    4       91k      130k     135k     114k     —
    16      338k     —        307k     337k     —

so rows of 2 with 2 warps up to 8 rows (batch 1 runs as one row), the tile above. A program reads a row's z before
it writes that row's z', so out may be z itself. Float32 only (float64 takes the reference)."""
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


@triton.jit(do_not_specialize=["B"])
def _step_rows_kernel(Z, U, M, BV, CV, D, Y, Z2, B, S, szb, szh, sub, suh,
                      ACT: tl.constexpr, ROWS: tl.constexpr, SD: tl.constexpr):
    h = tl.program_id(0)
    H = tl.num_programs(0)
    rs = tl.arange(0, SD)
    ms = rs < S
    m = tl.load(M + h * S * S + rs[:, None] * S + rs[None, :], mask=ms[:, None] & ms[None, :], other=0.0)
    bv = tl.load(BV + h * S + rs, mask=ms, other=0.0)
    cv = tl.load(CV + h * S + rs, mask=ms, other=0.0)
    d = tl.load(D + h)
    for r in tl.static_range(ROWS):
        b = tl.program_id(1) * ROWS + r
        valid = b < B
        z = tl.load(Z + b * szb + h * szh + rs, mask=ms & valid, other=0.0)
        u = tl.load(U + b * sub + h * suh, mask=valid, other=0.0)
        z = tl.sum(m * z[None, :], axis=1) + u * bv
        y = tl.sum(z * cv, axis=0) + d * u
        tl.store(Y + b * H + h, _act(y, ACT), mask=valid)
        tl.store(Z2 + (b * H + h) * S + rs, z, mask=ms & valid)


ROWS_MAX, ROWS, ROW_WARPS = 8, 2, 2


@register("ssm_step", "triton")
def ssm_step_triton(z, u, M, b, c, D, activation: str, out=None):
    if z.dtype != torch.float32 or (out is not None and not out.is_contiguous()):
        return ssm_step_torch(z, u, M, b, c, D, activation, out)
    B, H, S = z.shape
    y = torch.empty(B, H, device=z.device, dtype=torch.float32)
    z2 = torch.empty(B, H, S, device=z.device, dtype=torch.float32) if out is None else out
    SD = max(16, triton.next_power_of_2(S))
    if B <= ROWS_MAX:
        rows = min(ROWS, B)
        _step_rows_kernel[(H, triton.cdiv(B, rows))](z, u, M.contiguous(), b.contiguous(), c.contiguous(),
                                                     D.contiguous(), y, z2, B, S, z.stride(0), z.stride(1),
                                                     u.stride(0), u.stride(1), ACT=ACT_CODE[activation], ROWS=rows,
                                                     SD=SD, num_warps=ROW_WARPS)
        return y, z2
    BB = 16
    _step_kernel[(H, triton.cdiv(B, BB))](z, u, M.contiguous(), b.contiguous(), c.contiguous(), D.contiguous(), y, z2,
                                          B, S, z.stride(0), z.stride(1), u.stride(0), u.stride(1),
                                          ACT=ACT_CODE[activation], BB=BB, SD=SD, num_warps=4)
    return y, z2
