"""Triton version of ops.draw: one program per row does the softmax, the cumulative sum, the inverse-CDF search and
all the writes (one launch instead of about ten). Rows of up to 16,384 logits; longer ones take the reference."""
from __future__ import annotations

import triton
import triton.language as tl

from .dispatch import register
from .draw import draw_torch


@triton.jit
def _draw_kernel(LOGITS, U, T, X, TOKENS, OUT, FIN, V, sl, inv_temp, eos, offset,
                 GREEDY: tl.constexpr, EOS: tl.constexpr, BV: tl.constexpr):
    row, B = tl.program_id(0), tl.num_programs(0)
    t = tl.load(T) + offset
    rv = tl.arange(0, BV)
    mv = rv < V
    raw = tl.load(LOGITS + row * sl + rv, mask=mv, other=float("-inf")).to(tl.float32)
    tl.store(OUT + (t * B + row) * V + rv, raw.to(OUT.dtype.element_ty), mask=mv)
    if GREEDY:
        token = tl.argmax(raw, axis=0).to(tl.int64)
    else:
        z = raw * inv_temp
        p = tl.exp(z - tl.max(z, axis=0))
        cdf = tl.cumsum(p, axis=0)
        threshold = tl.load(U + t * B + row) * tl.sum(p, axis=0)
        token = tl.minimum(tl.sum((cdf <= threshold).to(tl.int64), axis=0), V - 1)
    if EOS:
        fin = tl.load(FIN + row)
        token = tl.where(fin != 0, eos, token)
        tl.store(FIN + row, (fin != 0) | (token == eos))
    tl.store(X + row, token)
    tl.store(TOKENS + t * B + row, token)


@register("draw", "triton")
def draw_triton(logits, uniforms, t, x, tokens, logits_out, finished, temperature: float, eos: int | None,
                offset: int = 0):
    B, V = logits.shape
    if V > 16384 or logits.stride(1) != 1 or not (x.is_contiguous() and tokens.is_contiguous()
                                                  and logits_out.is_contiguous() and uniforms.is_contiguous()):
        return draw_torch(logits, uniforms, t, x, tokens, logits_out, finished, temperature, eos, offset)
    greedy = temperature == 0
    _draw_kernel[(B,)](logits, uniforms, t, x, tokens, logits_out, finished, V, logits.stride(0),
                       0.0 if greedy else 1.0 / temperature, -1 if eos is None else eos, offset,
                       GREEDY=greedy, EOS=eos is not None, BV=triton.next_power_of_2(V), num_warps=4)
