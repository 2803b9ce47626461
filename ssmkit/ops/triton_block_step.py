"""Triton version of ops.block_step: a whole stack of residual SSM (+ FF) blocks, one token step, in one program per
batch row, float32.

The program walks the layers in order. Each stage writes its vector (the normed input, the SSM outputs, the FF hidden
units, the next h) to a small scratch row in global memory and passes a block barrier, so that the next stage reads it
whole in the layout it needs; h alternates between two rows, so no stage reads what it writes. (A version that kept
the vectors in registers from stage to stage, for stacks whose every matrix fits one block, was slower on an H200:
1.3× at width 64 and 4.5× at 128, benchmarks/block_step.py.) The matrix-vector products take blocks of output rows
(about ROW_ELEMS weights per thread); the SSM stage takes blocks of channels, each channel's N2 complex modes at once.
The layers' states are separate tensors: the program finds them through a table of their addresses (cached per set
of addresses, so a CUDA graph replays it).

At batch 1 one program does a whole level's step, so it is bound by the latency of its ~7 dependent stages per layer
(about 11 µs per layer at width 64 on an H200), not by the weights it reads (16-30 GB/s, a fraction of what one SM can
read). A version that took the SSM off that chain (every layer's Re(c · x̃), x̃ = x' − b v, formed from the old states
first, all layers at once, the b v added last; three stages per layer) was slower too: 1.28× the unfused graph at
batch 1 against this version's 1.47×, and 279k against 414k samples/s at batch 128. Faster needs the stages spread
over many programs without a kernel launch between them. For few rows of a wide stack ops/triton_block_step_wide.py
spreads them with a launch between stages (WIDE_ROWS, WIDE_WIDTH below).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .block_step import block_step_torch, register
from .grid_math import next_power_of_2
from .triton_chunkconv import ACT_CODE, _act

OUT_CODE = {"glu": 0, "linear": 1, "none": 2}
# warps per program; weights per thread in a block of a matrix-vector product; (channel, mode) pairs per thread in a
# block of the SSM stage (about 14 tiles of them are live). benchmarks/block_step.py measures the choices
WARPS, ROW_ELEMS, SSM_ELEMS = 16, 64, 8
# at most WIDE_ROWS batch rows of a stack at least WIDE_WIDTH wide step with four kernels per layer over many programs
# (ops/triton_block_step_wide.py), where one program would read all of a layer's weights alone (SaShiMi's 128- and
# 256-wide levels at batch 1: 25-64 µs per layer on an H200). benchmarks/block_step.py at batch 1, one H100, 8 layers:
# width 128 94 µs against 187, 256 108 against 511, 64 98 against 89 (so 64-wide stacks keep one program); at
# batches 2 and 4 the same (128: 98 against 187, 256: 108-117 against 512, 64: 98-101 against 89)
WIDE_ROWS, WIDE_WIDTH = 4, 128
_TABLES: dict[tuple, torch.Tensor] = {}


@triton.jit
def _add_pairs(s1, q1, s2, q2):
    return s1 + s2, q1 + q2


@triton.jit
def _affine(d, inv, NW, idx, mask, H):
    """γ ⊙ (d + m) · inv + β at channels idx for d = x − mean (ops.block_step's norm), with γ at NW, β at NW + H and
    m at NW + 2H."""
    return ((d + tl.load(NW + 2 * H + idx, mask=mask, other=0.0)) * inv * tl.load(NW + idx, mask=mask, other=0.0)
            + tl.load(NW + H + idx, mask=mask, other=0.0))


@triton.jit
def _stats(x, x0, H, eps, BH: tl.constexpr, AXIS: tl.constexpr = 0):
    """LayerNorm's (mean, 1/std) of x (BH,) (zero past H) over its H entries, x0 its first entry, in one reduction
    (across the warps, block barriers, unless each warp holds the whole vector: _norm_row): the sums s and q of d and
    d² for d = x − x0 (shifted by an entry, so that the variance q/H − (s/H)² does not cancel a mean that is large
    against the spread), mean = x0 + s/H. Of each row of x (R, BH) with AXIS = 1."""
    d = tl.where(tl.arange(0, BH) < H, x - x0, 0.0)
    s, q = tl.reduce((d, d * d), AXIS, _add_pairs)
    m = s / H
    return x0 + m, 1.0 / tl.sqrt(tl.maximum(q / H - m * m, 0.0) + eps)


@triton.jit
def _norm(x, x0, NW, H, eps, BH: tl.constexpr):
    """γ ⊙ (x − mean + m) / √(var + ε) + β of x (BH,) (zero past H; x0 its first entry), with γ at NW, β at NW + H and
    m at NW + 2H (ops.block_step: a LayerNorm has m = 0)."""
    rh = tl.arange(0, BH)
    m = rh < H
    mean, inv = _stats(x, x0, H, eps, BH)
    return _affine(tl.where(m, x - mean, 0.0), inv, NW, rh, m, H)


@triton.jit
def _norm_row(SRC, DST, NW, H, eps, BH: tl.constexpr, REPLICAS: tl.constexpr):
    """DST[:H] = _norm of SRC[:H]. Up to width 128 the vector is loaded as REPLICAS (the program's warps) equal rows:
    each warp then holds a whole row, so the norm's sums stay within a warp (no block barriers; as one (BH,) vector
    they took 2 a norm), and row 0 is stored. Wider, the rows would spill registers and save no barrier (offline
    sm_90 compile at 256): one vector."""
    if BH <= 128:
        rows = tl.arange(0, REPLICAS)[:, None]
        rh = tl.arange(0, BH)[None, :] + 0 * rows
        m = rh < H
        x = tl.load(SRC + rh, mask=m, other=0.0)
        mean, inv = _stats(x, tl.load(SRC), H, eps, BH, 1)
        tl.store(DST + rh, _affine(tl.where(m, x - mean[:, None], 0.0), inv[:, None], NW, rh, m, H),
                 mask=m & (rows == 0))
    else:
        rh = tl.arange(0, BH)
        tl.store(DST + rh, _norm(_vector(SRC, H, BH), tl.load(SRC), NW, H, eps, BH), mask=rh < H)


@triton.jit
def _rows(W, BIAS, x, o0, O, K, BO: tl.constexpr, BK: tl.constexpr):
    """(W x + bias) for output rows o0 .. o0 + BO of W (O, K), x (BK,) in registers; and those rows' indices."""
    ro = o0 + tl.arange(0, BO)
    rk = tl.arange(0, BK)
    w = tl.load(W + ro[:, None] * K + rk[None, :], mask=(ro[:, None] < O) & (rk[None, :] < K), other=0.0)
    return tl.sum(w * x[None, :], axis=1) + tl.load(BIAS + ro, mask=ro < O, other=0.0), ro


@triton.jit
def _vector(SRC, K, BK: tl.constexpr):
    rk = tl.arange(0, BK)
    return tl.load(SRC + rk, mask=rk < K, other=0.0)


@triton.jit
def _pairs(P, i2, m2, CB: tl.constexpr, BN: tl.constexpr):
    """(Re, Im) (CB, BN) of the complex numbers at P + i2 (CB, 2·BN), stored as pairs. Every complex operand of the
    SSM stage is loaded this way, so that all of them come out in one register layout: separate strided loads of the
    real and imaginary parts took a layout conversion (block barriers) each."""
    return tl.split(tl.reshape(tl.load(P + i2, mask=m2, other=0.0), (CB, BN, 2)))


@triton.jit
def _ssm(v, rc, SIN, SOUT, PL, D, H, N2, R: tl.constexpr, ACT: tl.constexpr, BN: tl.constexpr):
    """Channels rc: the structured step of their states (SIN -> SOUT) driven by the normed input v (one per
    channel), and act(Re(c · x') + D v). States and the step's numbers PL (3 + 2R, H, N2) are (Re, Im) pairs."""
    CB: tl.constexpr = rc.shape[0]
    r2 = tl.arange(0, 2 * BN)
    mc = rc < H
    i2 = rc[:, None] * 2 * N2 + r2[None, :]  # channel rc's pairs
    m2 = mc[:, None] & (r2[None, :] < 2 * N2)
    plane = 2 * H * N2
    xr, xi = _pairs(SIN, i2, m2, CB, BN)
    ar, ai = _pairs(PL, i2, m2, CB, BN)
    br, bi = _pairs(PL + plane, i2, m2, CB, BN)
    nr = ar * xr - ai * xi + br * v[:, None]
    ni = ar * xi + ai * xr + bi * v[:, None]
    for r in tl.static_range(R):
        er, ei = _pairs(PL + (3 + 2 * r) * plane, i2, m2, CB, BN)
        vr, vi = _pairs(PL + (4 + 2 * r) * plane, i2, m2, CB, BN)
        w = 2.0 * tl.sum(vr * xr - vi * xi, axis=1)
        nr -= er * w[:, None]
        ni -= ei * w[:, None]
    cr, ci = _pairs(PL + 2 * plane, i2, m2, CB, BN)
    y = tl.sum(cr * nr - ci * ni, axis=1) + tl.load(D + rc, mask=mc, other=0.0) * v
    tl.store(SOUT + i2, tl.reshape(tl.join(nr, ni), (CB, 2 * BN)), mask=m2)
    return _act(y, ACT)


@triton.jit
def _residual(CUR, NXT, delta, ro, H, TRACE, SKIPS, k, K, stride_block, HAS_TRACE: tl.constexpr,
              HAS_SKIPS: tl.constexpr):
    """Rows ro of residual block k: NXT = CUR + delta (+ SKIPS[K − 1 − k]), CUR kept in TRACE[k] (ops.block_step's
    trace and skips; TRACE and SKIPS at this batch row, blocks stride_block apart)."""
    mo = ro < H
    h = tl.load(CUR + ro, mask=mo, other=0.0)
    if HAS_TRACE:
        tl.store(TRACE + k * stride_block + ro, h, mask=mo)
    h += delta
    if HAS_SKIPS:
        h += tl.load(SKIPS + (K - 1 - k) * stride_block + ro, mask=mo, other=0.0)
    tl.store(NXT + ro, h, mask=mo)


@triton.jit
def _state(TABLE, l, row, H, N2):
    """Row ``row`` of layer l's state, found through the address table (16-byte aligned: block_step_triton checks)."""
    return tl.multiple_of(tl.load(TABLE + l).to(tl.pointer_type(tl.float32)), 16) + row * H * N2 * 2


@triton.jit
def _block_step_kernel(HIN, ADD, HOUT, SIN, SOUT, NORM1, SSM, D, WO, BO, NORM2, W1, B1, W2, B2, SCRATCH, TRACE,
                       SKIPS, n, H, N2, F, eps, stride_h, stride_add, stride_block,
                       R: tl.constexpr, ACT: tl.constexpr, OUT: tl.constexpr, FF: tl.constexpr, OUTER: tl.constexpr,
                       HAS_ADD: tl.constexpr, HAS_TRACE: tl.constexpr, HAS_SKIPS: tl.constexpr,
                       BH: tl.constexpr, BN: tl.constexpr, BF: tl.constexpr, CB: tl.constexpr,
                       RO: tl.constexpr, R1: tl.constexpr, R2: tl.constexpr, REPLICAS: tl.constexpr):
    row = tl.program_id(0)
    rh = tl.arange(0, BH)
    mh = rh < H
    # this row's scratch: h (two rows, alternating), v (the normed input), y (SSM outputs), g (FF hidden units)
    cur = SCRATCH + row * (4 * H + F)
    nxt = cur + H
    V = cur + 2 * H
    Y = cur + 3 * H
    G = cur + 4 * H
    h_in = tl.load(HIN + row * stride_h + rh, mask=mh, other=0.0)
    if HAS_ADD:
        h_in += tl.load(ADD + row * stride_add + rh, mask=mh, other=0.0)
    tl.store(cur + rh, h_in, mask=mh)
    tl.debug_barrier()
    PER: tl.constexpr = 2 if FF else 1  # residual blocks per layer
    K = n * PER  # block k's input goes to TRACE[k], SKIPS[K - 1 - k] is added after it
    TRACE = TRACE + row * H
    SKIPS = SKIPS + row * H
    for l in range(n):
        _norm_row(cur, V, NORM1 + l * 3 * H, H, eps, BH, REPLICAS)
        tl.debug_barrier()
        sin, sout = _state(SIN, l, row, H, N2), _state(SOUT, l, row, H, N2)
        for c0 in range(0, H, CB):
            rc = c0 + tl.arange(0, CB)
            y = _ssm(tl.load(V + rc, mask=rc < H, other=0.0), rc, sin, sout, SSM + l * (3 + 2 * R) * 2 * H * N2,
                     D + l * H, H, N2, R, ACT, BN)
            tl.store(Y + rc, y, mask=rc < H)
        tl.debug_barrier()
        y = _vector(Y, H, BH)
        for o0 in range(0, H, RO):
            if OUT == 0:
                a, ro = _rows(WO + l * 2 * H * H, BO + l * 2 * H, y, o0, H, H, RO, BH)
                g, ro = _rows(WO + l * 2 * H * H + H * H, BO + l * 2 * H + H, y, o0, H, H, RO, BH)
                delta = a * tl.sigmoid(g)
            elif OUT == 1:
                delta, ro = _rows(WO + l * H * H, BO + l * H, y, o0, H, H, RO, BH)
            else:
                ro = o0 + tl.arange(0, RO)
                delta = tl.load(Y + ro, mask=ro < H, other=0.0)
            _residual(cur, nxt, delta, ro, H, TRACE, SKIPS, l * PER, K, stride_block, HAS_TRACE, HAS_SKIPS)
        tl.debug_barrier()
        cur, nxt = nxt, cur
        if FF:
            _norm_row(cur, V, NORM2 + l * 3 * H, H, eps, BH, REPLICAS)
            tl.debug_barrier()
            v = _vector(V, H, BH)
            for o0 in range(0, F, R1):
                hidden, ro = _rows(W1 + l * F * H, B1 + l * F, v, o0, F, H, R1, BH)
                tl.store(G + ro, _act(hidden, 0), mask=ro < F)
            tl.debug_barrier()
            g = _vector(G, F, BF)
            for o0 in range(0, H, R2):
                delta, ro = _rows(W2 + l * H * F, B2 + l * H, g, o0, H, F, R2, BF)
                _residual(cur, nxt, delta, ro, H, TRACE, SKIPS, 2 * l + 1, K, stride_block, HAS_TRACE, HAS_SKIPS)
            tl.debug_barrier()
            cur, nxt = nxt, cur
    h = tl.load(cur + rh, mask=mh, other=0.0)
    if OUTER:
        h += h_in
    tl.store(HOUT + row * H + rh, h, mask=mh)
    if HAS_TRACE:
        tl.store(TRACE + K * stride_block + rh, h, mask=mh)


def _table(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A device int64 tensor of the tensors' addresses, made once per set of addresses (a CUDA graph replays the
    table it captured, so the addresses must be those of the buffers it replays: generate's own state buffers)."""
    key = tuple(t.data_ptr() for t in tensors) + (tensors[0].device.index,)
    table = _TABLES.get(key)
    if table is None:
        if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
            raise RuntimeError("block_step: new state buffers met during a CUDA graph capture (run a step first)")
        if len(_TABLES) >= 64:
            _TABLES.pop(next(iter(_TABLES)))
        table = torch.tensor(key[:-1], dtype=torch.int64, device=tensors[0].device)
        _TABLES[key] = table
    return table


def _block(rows: int, K: int) -> int:
    """Output rows per block: about ROW_ELEMS weights per thread, a power of two, no more than the rows there are."""
    return max(1, min(next_power_of_2(rows), 32 * WARPS * ROW_ELEMS // next_power_of_2(K)))


@register("block_step", "triton")
def block_step_triton(h, states, out_states, w, outer: bool, add=None, trace=None, skips=None):
    # the kernel reads the states through a table of addresses and takes them as 16-byte aligned (_state); generate's
    # own state buffers are, and a view off that alignment (or any non-contiguous tensor) takes the reference. h and
    # add may be rows apart (a slice of SaShiMi's pending outputs), each row contiguous; trace and skips contiguous
    if (h.dtype != torch.float32 or any(x is not None and x.stride(1) != 1 for x in (h, add))
            or any(x is not None and not x.is_contiguous() for x in (trace, skips))
            or not all(x.is_contiguous() and x.data_ptr() % 16 == 0 for x in [*states, *out_states])):
        return block_step_torch(h, states, out_states, w, outer, add, trace, skips)
    B, H = h.shape
    if B <= WIDE_ROWS and H >= WIDE_WIDTH:
        from .triton_block_step_wide import block_step_wide  # it builds on this module's helpers
        return block_step_wide((h if add is None else h + add).contiguous(), states, out_states, w, outer, trace,
                               skips)
    n, _, _, N2, _ = w.ssm.shape
    Fh = w.ff1_w.shape[1] if w.has_ff else 0
    BH, BN, BF = (max(16, next_power_of_2(k)) for k in (H, N2, max(Fh, 1)))
    out = torch.empty_like(h)
    none = w.ssm  # a placeholder pointer for the weights a stack does not have (never read)
    args = (h, h if add is None else add, out, _table(states), _table(out_states), w.norm1, w.ssm, w.D,
            none if w.out_w is None else w.out_w, none if w.out_b is None else w.out_b,
            *[t if w.has_ff else none for t in (w.norm2, w.ff1_w, w.ff1_b, w.ff2_w, w.ff2_b)])
    consts = dict(R=w.rank, ACT=ACT_CODE[w.activation], OUT=OUT_CODE[w.output], FF=w.has_ff, OUTER=outer, BH=BH,
                  BN=BN, BF=BF, REPLICAS=WARPS, num_warps=WARPS)  # REPLICAS: _norm_row
    scratch = torch.empty(B, 4 * H + Fh, device=h.device, dtype=torch.float32)
    _block_step_kernel[(B,)](*args, scratch, h if trace is None else trace, h if skips is None else skips, n, H, N2,
                             Fh, w.eps, h.stride(0), 0 if add is None else add.stride(0), B * H,
                             HAS_ADD=add is not None, HAS_TRACE=trace is not None, HAS_SKIPS=skips is not None,
                             CB=max(1, min(BH, 32 * WARPS * SSM_ELEMS // BN)),
                             RO=_block(H, 2 * H if w.output == "glu" else H),  # GLU: two tiles per block
                             R1=_block(max(Fh, 1), H), R2=_block(H, max(Fh, 1)), **consts)
    return out
