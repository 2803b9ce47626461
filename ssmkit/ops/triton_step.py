"""Triton version of ops.ssm_step: the state update z' = M z + b u, the output c · z' + D u and the activation of a
channel in one program, float32.

Dense M (S4), two forms by batch size (ROW_FORMS): for small batches one program per (channel, a few rows) keeps
the channel's M in registers and does one matrix-vector product per row (multiply-and-sum); above, one program per
(channel, block of 16 rows) does z' = z Mᵀ + u b as a tl.dot tile (IEEE float32, on the FMA units: at batch 256 this
is 88 µs per layer, compute-bound). The constants come from an A/B inside the generation graph on an H200
(`python benchmarks/step_forms.py --kind S4`, 4 layers of S4 d_model 256, tokens/s; rN wW = N rows per program on
W warps):

    batch   tile     r1 w2    r2 w2    r4 w2    r8 w4
    1       24.6k    41.5k    40.9k    41.2k    40.9k
    4       90.5k    127.9k   136.6k   112.8k   123.9k
    16      339.7k   276.9k   301.6k   335.4k   318.9k
    64      502.7k   390.2k   483.0k   492.0k   476.3k
    256     617.7k   456.1k   573.1k   620.7k   574.8k

so one row on 2 warps at batch 1, rows of 2 up to batch 4, the tile above. A diagonal system (S4D, DSS, DLR, EMA)
passes its diagonal (ops.step): one program per (channel, 16 rows) multiplies each mode's pair by Ā_n, S/2 complex
products instead of S² real ones (4 × S4D at batch 256: 1.36M tokens/s against 0.62M with the dense form). A program
reads a row's z before it writes that row's z', so out may be z itself. Float32 only (float64 takes the reference)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import register
from .grid_math import cdiv, next_power_of_2
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
    m = tl.load(M + h * S * S + rs[:, None] * S + rs[None, :], mask=ms[:, None] & ms[None, :], other=0.0)
    bv = tl.load(BV + h * S + rs, mask=ms, other=0.0)
    cv = tl.load(CV + h * S + rs, mask=ms, other=0.0)
    z = tl.dot(z, tl.trans(m), input_precision="ieee") + u[:, None] * bv[None, :]
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


@triton.jit
def _pairs(P, mask):
    """The (Re, Im) halves of interleaved pairs at pointers P (to the Re parts)."""
    return tl.load(P, mask=mask, other=0.0), tl.load(P + 1, mask=mask, other=0.0)


@triton.jit(do_not_specialize=["B"])
def _step_diag_kernel(Z, U, A, BV, CV, D, Y, Z2, B, N2, szb, szh, sub, suh,
                      ACT: tl.constexpr, BB: tl.constexpr, ND: tl.constexpr):
    """A diagonal system: each mode's (Re, Im) pair times Ā_n as a complex product; pairs read as two strided
    halves (even and odd positions of the interleaved state)."""
    h = tl.program_id(0)
    H = tl.num_programs(0)
    rb = tl.program_id(1) * BB + tl.arange(0, BB)
    rn = tl.arange(0, ND)
    mb, mn = rb < B, rn < N2
    mask = mb[:, None] & mn[None, :]
    channel = h * 2 * N2 + 2 * rn
    a_re, a_im = _pairs(A + channel, mn)
    b_re, b_im = _pairs(BV + channel, mn)
    c_re, c_im = _pairs(CV + channel, mn)
    re, im = _pairs(Z + rb[:, None] * szb + h * szh + 2 * rn[None, :], mask)
    u = tl.load(U + rb * sub + h * suh, mask=mb, other=0.0)
    re2 = a_re[None, :] * re - a_im[None, :] * im + u[:, None] * b_re[None, :]
    im2 = a_re[None, :] * im + a_im[None, :] * re + u[:, None] * b_im[None, :]
    y = tl.sum(re2 * c_re[None, :] + im2 * c_im[None, :], axis=1) + tl.load(D + h) * u
    tl.store(Y + rb * H + h, _act(y, ACT), mask=mb)
    out = Z2 + (rb[:, None] * H + h) * 2 * N2 + 2 * rn[None, :]
    tl.store(out, re2, mask=mask)
    tl.store(out + 1, im2, mask=mask)


ROW_FORMS = ((1, 1, 2), (4, 2, 2))  # (largest batch, rows per program, warps) of the row form, by batch; the tile form above
DIAG_WARPS = 2


@register("ssm_step", "triton")
def ssm_step_triton(z, u, M, b, c, D, activation: str, out=None):
    if z.dtype != torch.float32 or (out is not None and not out.is_contiguous()):
        return ssm_step_torch(z, u, M, b, c, D, activation, out)
    B, H, S = z.shape
    y = torch.empty(B, H, device=z.device, dtype=torch.float32)
    z2 = torch.empty(B, H, S, device=z.device, dtype=torch.float32) if out is None else out
    if M.dim() == 2:  # a diagonal system
        BB = min(16, next_power_of_2(B))
        _step_diag_kernel[(H, cdiv(B, BB))](z, u, M.contiguous(), b.contiguous(), c.contiguous(),
                                            D.contiguous(), y, z2, B, S // 2, z.stride(0), z.stride(1),
                                            u.stride(0), u.stride(1), ACT=ACT_CODE[activation], BB=BB,
                                            ND=max(16, next_power_of_2(S // 2)), num_warps=DIAG_WARPS)
        return y, z2
    SD = max(16, next_power_of_2(S))
    for largest, rows, warps in ROW_FORMS:
        if B <= largest:
            rows = min(rows, B)
            _step_rows_kernel[(H, cdiv(B, rows))](z, u, M.contiguous(), b.contiguous(), c.contiguous(),
                                                  D.contiguous(), y, z2, B, S, z.stride(0), z.stride(1),
                                                  u.stride(0), u.stride(1), ACT=ACT_CODE[activation],
                                                  ROWS=rows, SD=SD, num_warps=warps)
            return y, z2
    BB = 16
    _step_kernel[(H, cdiv(B, BB))](z, u, M.contiguous(), b.contiguous(), c.contiguous(), D.contiguous(), y, z2,
                                   B, S, z.stride(0), z.stride(1), u.stride(0), u.stride(1),
                                   ACT=ACT_CODE[activation], BB=BB, SD=SD, num_warps=4)
    return y, z2
