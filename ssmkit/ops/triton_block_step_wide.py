"""ops.block_step for a few batch rows of a wide stack: each stage of each layer as one kernel over many programs.

The one-program-per-row kernel (ops/triton_block_step.py) walks a whole stack in one program, so at batch 1 one SM
reads every weight: about 64 µs per layer at width 256 on an H200 (1.6 MB of weights per layer, 25 GB/s), where the
weights of one stage spread over many SMs take well under a microsecond. Here every layer takes four kernels, each
over (batch row, block of outputs), and each recomputes the LayerNorm statistics it needs from the whole vector:

    SSM stage      v = LN(h) on its channels; x ← a ⊙ x − Σ_r E_r 2Re(V_r x) + b v; y = act(Re(c x) + D v)   (blocks
                   of channels, states in place)
    output stage   h' = h + out(y)           out: GLU(W y + β) | W y + β | y   (blocks of output rows)
    FF hidden      g = GELU(W1 LN'(h') + β1)                                   (blocks of hidden units)
    FF output      h'' = h' + W2 g + β2                                        (blocks of output rows)

and the last stage adds h_in with ``outer``. So a layer costs four launches, a few microseconds each inside the CUDA
graph that generation replays, instead of one SM's time to read its weights.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .block_step import blocks
from .grid_math import cdiv, next_power_of_2
from .triton_block_step import OUT_CODE, _affine, _norm, _rows, _ssm, _stats, _vector
from .triton_chunkconv import ACT_CODE, _act

# weights per program in the matrix-vector stages, (channel, mode) pairs per program in the SSM stage, warps
WIDE_ELEMS, WIDE_SSM_ELEMS, WIDE_WARPS = 4096, 1024, 4


@triton.jit
def _ssm_stage(HC, SIN, SOUT, NORM, PL, D, Y, H, N2, eps, R: tl.constexpr, ACT: tl.constexpr, BH: tl.constexpr,
               BN: tl.constexpr, CB: tl.constexpr):
    row, c0 = tl.program_id(0), tl.program_id(1) * CB
    mean, inv = _stats(_vector(HC + row * H, H, BH), tl.load(HC + row * H), H, eps, BH)
    rc = c0 + tl.arange(0, CB)
    mc = rc < H
    h = tl.load(HC + row * H + rc, mask=mc, other=0.0)
    v = _affine(h - mean, inv, NORM, rc, mc, H)
    y = _ssm(v, rc, SIN + row * H * N2 * 2, SOUT + row * H * N2 * 2, PL, D, H, N2, R, ACT, BN)
    tl.store(Y + row * H + rc, y, mask=mc)


@triton.jit
def _map_stage(X, NORM, W, BIAS, RES, EXTRA, DST, K, O, eps, MODE: tl.constexpr, NORMED: tl.constexpr,
               HAS_RES: tl.constexpr, HAS_EXTRA: tl.constexpr, BK: tl.constexpr, BO: tl.constexpr):
    """DST[o] = f(x)[o] (+ RES[o]) (+ EXTRA[o]) for a block of outputs o, x = X's row (normed with NORM when
    NORMED). MODE: 0 GLU (W (2O, K)), 1 linear, 2 none (x itself, K = O), 3 GELU(W x + b)."""
    row, o0 = tl.program_id(0), tl.program_id(1) * BO
    x = _vector(X + row * K, K, BK)
    if NORMED:
        x = _norm(x, tl.load(X + row * K), NORM, K, eps, BK)
    if MODE == 0:
        a, ro = _rows(W, BIAS, x, o0, O, K, BO, BK)
        g, ro = _rows(W + O * K, BIAS + O, x, o0, O, K, BO, BK)
        out = a * tl.sigmoid(g)
    elif MODE == 2:
        ro = o0 + tl.arange(0, BO)
        out = tl.load(X + row * K + ro, mask=ro < O, other=0.0)
    else:
        out, ro = _rows(W, BIAS, x, o0, O, K, BO, BK)
        if MODE == 3:
            out = _act(out, 0)
    mo = ro < O
    if HAS_RES:
        out += tl.load(RES + row * O + ro, mask=mo, other=0.0)
    if HAS_EXTRA:
        out += tl.load(EXTRA + row * O + ro, mask=mo, other=0.0)
    tl.store(DST + row * O + ro, out, mask=mo)


def _rows_per_block(O: int, K: int) -> int:
    return max(1, min(next_power_of_2(O), WIDE_ELEMS // next_power_of_2(K)))


def _map(x, norm, w, b, res, extra, dst, mode: int, eps: float):
    B, K = x.shape
    O = dst.shape[1]
    BO = _rows_per_block(O, K)
    _map_stage[(B, cdiv(O, BO))](x, x if norm is None else norm, x if w is None else w, x if b is None else b,
                                 x if res is None else res, x if extra is None else extra, dst, K, O, eps,
                                 MODE=mode, NORMED=norm is not None, HAS_RES=res is not None,
                                 HAS_EXTRA=extra is not None, BK=max(16, next_power_of_2(K)), BO=BO,
                                 num_warps=WIDE_WARPS)


def block_step_wide(h, states, out_states, w, outer: bool, trace=None, skips=None) -> torch.Tensor:
    """block_step_triton's contract (float32, contiguous), four kernels per layer. With a trace the stack's values
    live in its rows (block k reads trace[k], writes trace[k + 1]); skips[K − 1 − k] is added by block k's last
    kernel."""
    B, H = h.shape
    n, _, _, N2, _ = w.ssm.shape
    BH, BN = max(16, next_power_of_2(H)), max(16, next_power_of_2(N2))
    CB = max(1, min(BH, WIDE_SSM_ELEMS // BN))
    out, y, ping, pong = (torch.empty_like(h) for _ in range(4))
    hidden = torch.empty(B, w.ff1_w.shape[1], device=h.device, dtype=h.dtype) if w.has_ff else None
    mapped = w.output != "none"
    K, k = blocks(w), 0
    cur = h
    if trace is not None:
        cur = trace[0]
        cur.copy_(h)

    def target(final: bool) -> torch.Tensor:
        """Where block k writes: trace[k + 1], or ``out`` at the end of the stack, else the scratch row that is not
        ``cur``."""
        if trace is not None:
            return trace[k + 1]
        return out if final else (pong if cur is ping else ping)

    def extra(final: bool) -> torch.Tensor | None:
        """What block k adds besides its residual: its skip, and h_in at the end of the stack with ``outer``."""
        skip = None if skips is None else skips[K - 1 - k]
        if outer and final:
            return h if skip is None else h + skip
        return skip

    for l in range(n):
        last = l == n - 1
        _ssm_stage[(B, cdiv(H, CB))](cur, torch.view_as_real(states[l]), torch.view_as_real(out_states[l]),
                                     w.norm1[l], w.ssm[l], w.D[l], y, H, N2, w.eps, R=w.rank,
                                     ACT=ACT_CODE[w.activation], BH=BH, BN=BN, CB=CB, num_warps=WIDE_WARPS)
        ends = last and not w.has_ff
        nxt = target(ends)
        _map(y, None, w.out_w[l] if mapped else None, w.out_b[l] if mapped else None, cur, extra(ends), nxt,
             OUT_CODE[w.output], w.eps)
        cur, k = nxt, k + 1
        if w.has_ff:
            _map(cur, w.norm2[l], w.ff1_w[l], w.ff1_b[l], None, None, hidden, 3, w.eps)
            nxt = target(last)
            _map(hidden, None, w.ff2_w[l], w.ff2_b[l], cur, extra(last), nxt, 1, w.eps)
            cur, k = nxt, k + 1
    return cur
