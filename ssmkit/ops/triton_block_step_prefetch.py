"""ops.block_step in one program per batch row, for stacks whose every product is one block: each stage's weights
loaded one stage early.

The kernel of ops/triton_block_step.py loads a stage's weights only after the barrier that hands the stage its input,
so at batch 1 each of a layer's ~6 dependent stages waits for its loads from L2 (about 1.8 µs a stage at width 64 on
an H100). Here a stage issues the loads of the next stage's weights before its own arithmetic, store and barrier, so
they are in flight while it finishes (software pipelining by one stage):

    stage     computes                                          issues the loads of
    LN1       v = LN(h; γ_l, β_l)                               —  (its inputs came with the layer before)
    SSM       x_l ← a ⊙ x_l − Σ_r E_r 2Re(V_r x_l) + b v,       layer l's output map W, β
              y = act(Re(c · x_l) + D v)
    output    h ← h + out_l(y)                                  γ'_l, β'_l, W1_l, β1_l  (no FF: layer l+1's SSM inputs)
    LN2       v = LN(h; γ'_l, β'_l)                             W2_l, β2_l
    FF1       g = GELU(W1_l v + β1_l)                           —
    FF2       h ← h + W2_l g + β2_l                             layer l+1's SSM inputs: γ, β, D, state and planes

(after the last layer those loads are masked off). Each product is one tile in registers, so block_step_triton takes
this kernel only where its block sizes cover every product; at most about two stages' weights are live at once (at
width 64, N2 = 32, R = 1, 16 warps: 48 floats per thread of SSM inputs beside one 16-float matrix).
"""
from __future__ import annotations

import triton
import triton.language as tl

from .triton_block_step import (_apply, _layer_norm, _ssm_planes, _ssm_state, _ssm_step, _state, _vector,
                                _weights, _write_out)
from .triton_chunkconv import _act


@triton.jit
def _ssm_inputs(l, live, row, SIN, NORM1, SSM, D, H, N2, R: tl.constexpr, BH: tl.constexpr, BN: tl.constexpr):
    """What layer l's LN1 and SSM stages read, on all channels (zero unless live): γ, β, D, the state of batch row
    ``row`` ((Re, Im) tiles) and the planes (a tuple of tiles)."""
    rh = tl.arange(0, BH)
    m = live & (rh < H)
    gamma = tl.load(NORM1 + l * 2 * H + rh, mask=m, other=0.0)
    beta = tl.load(NORM1 + l * 2 * H + H + rh, mask=m, other=0.0)
    d = tl.load(D + l * H + rh, mask=m, other=0.0)
    x = _ssm_state(_state(SIN, l, row, H, N2), rh, H, N2, live, BN)
    return gamma, beta, d, x, _ssm_planes(SSM + l * (6 + 4 * R) * H * N2, rh, H, N2, live, R, BN)


@triton.jit
def _out_weights(WO, BO, l, H, OUT: tl.constexpr, BH: tl.constexpr):
    """Layer l's output map in registers: (W, β) of the GLU's two halves (OUT 0), of the linear map (1), or ()."""
    ws = ()
    if OUT == 0:
        wa, ba, _ = _weights(WO + l * 2 * H * H, BO + l * 2 * H, 0, H, H, BH, BH)
        wg, bg, _ = _weights(WO + l * 2 * H * H + H * H, BO + l * 2 * H + H, 0, H, H, BH, BH)
        ws = (wa, ba, wg, bg)
    elif OUT == 1:
        wa, ba, _ = _weights(WO + l * H * H, BO + l * H, 0, H, H, BH, BH)
        ws = (wa, ba)
    return ws


@triton.jit
def _out_map(y, ws, OUT: tl.constexpr):
    """out(y) with the weights ws of _out_weights: GLU(W y + β) = (W_a y + β_a) ⊙ σ(W_g y + β_g) | W y + β | y."""
    if OUT == 0:
        y = _apply(ws[0], ws[1], y) * tl.sigmoid(_apply(ws[2], ws[3], y))
    elif OUT == 1:
        y = _apply(ws[0], ws[1], y)
    return y


@triton.jit
def _block_step_prefetch_kernel(HIN, HOUT, SIN, SOUT, NORM1, SSM, D, WO, BO, NORM2, W1, B1, W2, B2, SCRATCH,
                                n, H, N2, F, eps,
                                R: tl.constexpr, ACT: tl.constexpr, OUT: tl.constexpr, FF: tl.constexpr,
                                OUTER: tl.constexpr, BH: tl.constexpr, BN: tl.constexpr, BF: tl.constexpr):
    row = tl.program_id(0)
    rh = tl.arange(0, BH)
    mh = rh < H
    # this row's scratch, as _block_step_kernel's: h (two rows, alternating), v, y, g
    cur = SCRATCH + row * (4 * H + F)
    nxt = cur + H
    V = cur + 2 * H
    Y = cur + 3 * H
    G = cur + 4 * H
    h_in = tl.load(HIN + row * H + rh, mask=mh, other=0.0)
    pre = _ssm_inputs(0, True, row, SIN, NORM1, SSM, D, H, N2, R, BH, BN)
    tl.store(cur + rh, h_in, mask=mh)
    tl.debug_barrier()
    for l in range(n):
        gamma, beta, d, x, planes = pre
        # each stage: read its input, issue the loads for a later stage, compute, store, barrier
        tl.store(V + rh, _layer_norm(_vector(cur, H, BH), gamma, beta, H, eps, BH), mask=mh)
        tl.debug_barrier()
        v = _vector(V, H, BH)
        ws = _out_weights(WO, BO, l, H, OUT, BH)
        tl.store(Y + rh, _ssm_step(v, x, planes, d, rh, _state(SOUT, l, row, H, N2), H, N2, R, ACT, BN), mask=mh)
        tl.debug_barrier()
        y, h = _vector(Y, H, BH), _vector(cur, H, BH)
        if FF:
            gamma2, beta2 = _vector(NORM2 + l * 2 * H, H, BH), _vector(NORM2 + l * 2 * H + H, H, BH)
            w1, b1, rf = _weights(W1 + l * F * H, B1 + l * F, 0, F, H, BF, BH)
        else:
            pre = _ssm_inputs(tl.minimum(l + 1, n - 1), l + 1 < n, row, SIN, NORM1, SSM, D, H, N2, R, BH, BN)
        tl.store(nxt + rh, h + _out_map(y, ws, OUT), mask=mh)
        tl.debug_barrier()
        cur, nxt = nxt, cur
        if FF:
            h = _vector(cur, H, BH)
            w2, b2, _ = _weights(W2 + l * H * F, B2 + l * H, 0, H, F, BH, BF)
            tl.store(V + rh, _layer_norm(h, gamma2, beta2, H, eps, BH), mask=mh)
            tl.debug_barrier()
            tl.store(G + rf, _act(_apply(w1, b1, _vector(V, H, BH)), 0), mask=rf < F)
            tl.debug_barrier()
            g, h = _vector(G, F, BF), _vector(cur, H, BH)
            pre = _ssm_inputs(tl.minimum(l + 1, n - 1), l + 1 < n, row, SIN, NORM1, SSM, D, H, N2, R, BH, BN)
            tl.store(nxt + rh, h + _apply(w2, b2, g), mask=mh)
            tl.debug_barrier()
            cur, nxt = nxt, cur
    _write_out(cur, HIN, HOUT, row, H, OUTER, BH)
