"""Triton versions of ops.draw and ops.draw_head: one program per row does the softmax, the cumulative sum, the
inverse-CDF search and all the writes (one launch instead of about ten); draw_head first forms the row's logits from
its features (LayerNorm, then the Linear as a (V, D) tile product). Rows of up to 16,384 logits (draw) or heads of up
to 65,536 weights (draw_head); larger ones take the reference."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .dispatch import register
from .draw import draw_head_torch, draw_torch
from .grid_math import next_power_of_2

HEAD_WEIGHTS = 65536  # V·D of the largest head one program holds (256 logits of 256 features)


@triton.jit
def _pick_and_write(raw, rv, mv, row, B, t, U, X, TOKENS, OUT, FIN, V, inv_temp, eos,
                    GREEDY: tl.constexpr, EOS: tl.constexpr):
    """Row ``row``'s token from its logits raw (BV,) (−inf past V), written with the logits at step t."""
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


@triton.jit
def _draw_kernel(LOGITS, U, T, X, TOKENS, OUT, FIN, V, sl, inv_temp, eos, offset,
                 GREEDY: tl.constexpr, EOS: tl.constexpr, BV: tl.constexpr):
    row, B = tl.program_id(0), tl.num_programs(0)
    t = tl.load(T) + offset
    rv = tl.arange(0, BV)
    mv = rv < V
    raw = tl.load(LOGITS + row * sl + rv, mask=mv, other=float("-inf")).to(tl.float32)
    _pick_and_write(raw, rv, mv, row, B, t, U, X, TOKENS, OUT, FIN, V, inv_temp, eos, GREEDY, EOS)


@triton.jit
def _draw_head_kernel(H, NW, NB, W, BIAS, U, T, X, TOKENS, OUT, FIN, D, V, sh, eps, inv_temp, eos, offset,
                      GREEDY: tl.constexpr, EOS: tl.constexpr, BD: tl.constexpr, BV: tl.constexpr):
    row, B = tl.program_id(0), tl.num_programs(0)
    t = tl.load(T) + offset
    rd = tl.arange(0, BD)
    md = rd < D
    h = tl.load(H + row * sh + rd, mask=md, other=0.0).to(tl.float32)
    c = tl.where(md, h - tl.sum(h, axis=0) / D, 0.0)
    y = c / tl.sqrt(tl.sum(c * c, axis=0) / D + eps) * tl.load(NW + rd, mask=md, other=0.0) \
        + tl.load(NB + rd, mask=md, other=0.0)
    rv = tl.arange(0, BV)
    mv = rv < V
    w = tl.load(W + rv[:, None] * D + rd[None, :], mask=mv[:, None] & md[None, :], other=0.0)
    logits = tl.sum(w * y[None, :], axis=1) + tl.load(BIAS + rv, mask=mv, other=0.0)
    # drawn from the logits as stored (rounded to the model's dtype), as the Linear then draw would
    raw = tl.where(mv, logits.to(OUT.dtype.element_ty).to(tl.float32), float("-inf"))
    _pick_and_write(raw, rv, mv, row, B, t, U, X, TOKENS, OUT, FIN, V, inv_temp, eos, GREEDY, EOS)


def _buffers_fit(x, tokens, logits_out, uniforms) -> bool:
    return x.is_contiguous() and tokens.is_contiguous() and logits_out.is_contiguous() and uniforms.is_contiguous()


def _pick_args(temperature: float, eos: int | None, offset: int) -> tuple[tuple, dict]:
    """The trailing arguments (inv_temp, eos, offset) and the constexprs of _pick_and_write, shared by both kernels."""
    greedy = temperature == 0
    return (0.0 if greedy else 1.0 / temperature, -1 if eos is None else eos, offset), \
        dict(GREEDY=greedy, EOS=eos is not None)


@register("draw", "triton")
def draw_triton(logits, uniforms, t, x, tokens, logits_out, finished, temperature: float, eos: int | None,
                offset: int = 0):
    B, V = logits.shape
    if V > 16384 or logits.stride(1) != 1 or not _buffers_fit(x, tokens, logits_out, uniforms):
        return draw_torch(logits, uniforms, t, x, tokens, logits_out, finished, temperature, eos, offset)
    tail, flags = _pick_args(temperature, eos, offset)
    _draw_kernel[(B,)](logits, uniforms, t, x, tokens, logits_out, finished, V, logits.stride(0), *tail, **flags,
                       BV=next_power_of_2(V), num_warps=4)


@register("draw_head", "triton")
def draw_head_triton(h, norm_weight, norm_bias, eps: float, weight, bias, uniforms, t, x, tokens, logits_out, finished,
                     temperature: float, eos: int | None, offset: int = 0):
    B, D = h.shape
    V = weight.shape[0]
    BD, BV = next_power_of_2(D), next_power_of_2(V)
    params = (norm_weight, norm_bias, weight, bias)
    if (BD * BV > HEAD_WEIGHTS or h.dtype == torch.float64  # float64 statistics: the reference
            or any(p is None or not p.is_contiguous() or p.dtype != h.dtype for p in params)
            or h.stride(1) != 1 or not _buffers_fit(x, tokens, logits_out, uniforms)):
        return draw_head_torch(h, norm_weight, norm_bias, eps, weight, bias, uniforms, t, x, tokens, logits_out,
                               finished, temperature, eos, offset)
    tail, flags = _pick_args(temperature, eos, offset)
    _draw_head_kernel[(B,)](h, norm_weight, norm_bias, weight, bias, uniforms, t, x, tokens, logits_out, finished,
                            D, V, h.stride(0), eps, *tail, **flags, BD=BD, BV=BV, num_warps=8)
