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
spreads them with a launch between stages (WIDE_ROWS, WIDE_WIDTH below). Where every product is one block,
ops/triton_block_step_prefetch.py runs the same stages with each stage's weights loaded a stage early, so that a stage
does not wait for them after its barrier (PREFETCH_ELEMS below).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .block_step import BlockWeights, block_step_torch, register
from .triton_chunkconv import ACT_CODE, _act

OUT_CODE = {"glu": 0, "linear": 1, "none": 2}
# warps per program; weights per thread in a block of a matrix-vector product; (channel, mode) pairs per thread in a
# block of the SSM stage (about 14 tiles of them are live). benchmarks/block_step.py measures the choices
WARPS, ROW_ELEMS, SSM_ELEMS = 16, 64, 8
# floats per thread that the kernel loading each stage's weights a stage early (ops/triton_block_step_prefetch.py) may
# hold at once, a layer's SSM inputs beside one matrix; it takes the stacks whose every product is one block and that
# fit (0: never). Compiled for sm_90 at 16 warps (benchmarks/kernel_registers.py): width 64, N2 = 32, R = 1 needs
# 64 and spills 24 B (5 scalars reloaded per layer); R = 2 (80) 104 B; width 128 (160) 1.1 kB. Its addresses and
# vectors take ~64 registers beside: at 8 warps width 64 holds 128 without a spill, at 32 warps 32 and spills 72 B.
# Not timed yet (benchmarks/block_step.py --prefetch both)
PREFETCH_ELEMS = 64
# at most WIDE_ROWS batch rows of a stack at least WIDE_WIDTH wide step with four kernels per layer over many programs
# (ops/triton_block_step_wide.py), where one program would read all of a layer's weights alone (SaShiMi's 128- and
# 256-wide levels at batch 1: 25-64 µs per layer on an H200). benchmarks/block_step.py at batch 1, one H100, 8 layers:
# width 128 94 µs against 187, 256 108 against 511, 64 98 against 89 (so 64-wide stacks keep one program). Batches
# 2-4 are not timed yet
WIDE_ROWS, WIDE_WIDTH = 4, 128
_TABLES: dict[tuple, torch.Tensor] = {}


@triton.jit
def _stats(x, H, eps, BH: tl.constexpr):
    """LayerNorm's (mean, 1/std) of x (BH,) (zero past H) over its H entries."""
    mean = tl.sum(x, axis=0) / H
    d = tl.where(tl.arange(0, BH) < H, x - mean, 0.0)
    return mean, 1.0 / tl.sqrt(tl.sum(d * d, axis=0) / H + eps)


@triton.jit
def _layer_norm(x, gamma, beta, H, eps, BH: tl.constexpr):
    """LayerNorm of x (BH,) (zero past H): (x − mean) / std · γ + β, with γ, β (BH,) in registers (zero past H)."""
    mean, inv = _stats(x, H, eps, BH)
    return tl.where(tl.arange(0, BH) < H, x - mean, 0.0) * inv * gamma + beta


@triton.jit
def _norm(x, NW, H, eps, BH: tl.constexpr):
    """LayerNorm of x (BH,) (zero past H) with γ at NW and β at NW + H."""
    return _layer_norm(x, _vector(NW, H, BH), _vector(NW + H, H, BH), H, eps, BH)


@triton.jit
def _weights(W, BIAS, o0, O, K, BO: tl.constexpr, BK: tl.constexpr):
    """Rows o0 .. o0 + BO of W (O, K) and of the bias (zero past O and K), and those rows' indices."""
    ro = o0 + tl.arange(0, BO)
    rk = tl.arange(0, BK)
    w = tl.load(W + ro[:, None] * K + rk[None, :], mask=(ro[:, None] < O) & (rk[None, :] < K), other=0.0)
    return w, tl.load(BIAS + ro, mask=ro < O, other=0.0), ro


@triton.jit
def _apply(w, bias, x):
    """W x + bias for a block of rows (w (BO, BK), bias (BO,) in registers) and x (BK,)."""
    return tl.sum(w * x[None, :], axis=1) + bias


@triton.jit
def _rows(W, BIAS, x, o0, O, K, BO: tl.constexpr, BK: tl.constexpr):
    """(W x + bias) for output rows o0 .. o0 + BO of W (O, K), x (BK,) in registers; and those rows' indices."""
    w, bias, ro = _weights(W, BIAS, o0, O, K, BO, BK)
    return _apply(w, bias, x), ro


@triton.jit
def _vector(SRC, K, BK: tl.constexpr):
    rk = tl.arange(0, BK)
    return tl.load(SRC + rk, mask=rk < K, other=0.0)


@triton.jit
def _modes(rc, H, N2, BN: tl.constexpr):
    """Index (channel · N2 + mode) and mask of the tile (channels rc, modes 0 .. BN) of an (H, N2) plane."""
    rn = tl.arange(0, BN)
    return rc[:, None] * N2 + rn[None, :], (rc[:, None] < H) & (rn[None, :] < N2)


@triton.jit
def _ssm_state(S, rc, H, N2, live, BN: tl.constexpr):
    """(Re x, Im x) on channels rc of the state at S (interleaved pairs); zero past H and N2, everywhere unless live."""
    idx, m2 = _modes(rc, H, N2, BN)
    return tl.load(S + 2 * idx, mask=m2 & live, other=0.0), tl.load(S + 2 * idx + 1, mask=m2 & live, other=0.0)


@triton.jit
def _plane(PL, p, idx, m2, H, N2):
    """Plane p of the (·, H, N2) planes at PL on the tile idx (mask m2)."""
    return tl.load(PL + p * H * N2 + idx, mask=m2, other=0.0)


@triton.jit
def _ssm_planes(PL, rc, H, N2, live, R: tl.constexpr, BN: tl.constexpr):
    """A layer's 6 + 4R planes at PL (kernels/step_form.py's layout: Re, Im of a, b, c, then of E_r, V_r for each r)
    on channels rc, as a tuple of tiles in the order the step uses them: a, b, E_r and V_r for each r, c (loaded in
    that order, they take fewer registers); zero past H and N2, everywhere unless live."""
    idx, m2 = _modes(rc, H, N2, BN)
    m2 = m2 & live
    planes = (_plane(PL, 0, idx, m2, H, N2), _plane(PL, 1, idx, m2, H, N2), _plane(PL, 2, idx, m2, H, N2),
              _plane(PL, 3, idx, m2, H, N2))
    for p in tl.static_range(6, 6 + 4 * R):
        planes = planes + (_plane(PL, p, idx, m2, H, N2),)
    return planes + (_plane(PL, 4, idx, m2, H, N2), _plane(PL, 5, idx, m2, H, N2))


@triton.jit
def _ssm_step(v, x, planes, d, rc, SOUT, H, N2, R: tl.constexpr, ACT: tl.constexpr, BN: tl.constexpr):
    """Channels rc, from their state x and planes in registers (_ssm_state, _ssm_planes) and D = d on them:
    x' = a ⊙ x − Σ_r E_r 2Re(V_r x) + b v, stored at SOUT (interleaved pairs); returns act(Re(c · x') + D v)."""
    xr, xi = x
    ar, ai, br, bi = planes[0], planes[1], planes[2], planes[3]
    nr = ar * xr - ai * xi + br * v[:, None]
    ni = ar * xi + ai * xr + bi * v[:, None]
    for r in tl.static_range(R):
        er, ei, vr, vi = planes[4 + 4 * r], planes[5 + 4 * r], planes[6 + 4 * r], planes[7 + 4 * r]
        w = 2.0 * tl.sum(vr * xr - vi * xi, axis=1)
        nr -= er * w[:, None]
        ni -= ei * w[:, None]
    y = tl.sum(planes[4 + 4 * R] * nr - planes[5 + 4 * R] * ni, axis=1) + d * v
    idx, m2 = _modes(rc, H, N2, BN)
    tl.store(SOUT + 2 * idx, nr, mask=m2)
    tl.store(SOUT + 2 * idx + 1, ni, mask=m2)
    return _act(y, ACT)


@triton.jit
def _ssm(v, rc, SIN, SOUT, PL, D, H, N2, R: tl.constexpr, ACT: tl.constexpr, BN: tl.constexpr):
    """Channels rc: the structured step of their states (SIN -> SOUT, interleaved pairs) driven by the normed input
    v (one per channel), and act(Re(c · x') + D v)."""
    return _ssm_step(v, _ssm_state(SIN, rc, H, N2, True, BN), _ssm_planes(PL, rc, H, N2, True, R, BN),
                     tl.load(D + rc, mask=rc < H, other=0.0), rc, SOUT, H, N2, R, ACT, BN)


@triton.jit
def _state(TABLE, l, row, H, N2):
    """Row ``row`` of layer l's state, found through the address table."""
    return tl.load(TABLE + l).to(tl.pointer_type(tl.float32)) + row * H * N2 * 2


@triton.jit
def _write_out(cur, HIN, HOUT, row, H, OUTER: tl.constexpr, BH: tl.constexpr):
    """Row ``row`` of HOUT: the h at cur, + h_in with ``outer``."""
    rh = tl.arange(0, BH)
    h = tl.load(cur + rh, mask=rh < H, other=0.0)
    if OUTER:
        h += tl.load(HIN + row * H + rh, mask=rh < H, other=0.0)
    tl.store(HOUT + row * H + rh, h, mask=rh < H)


@triton.jit
def _block_step_kernel(HIN, HOUT, SIN, SOUT, NORM1, SSM, D, WO, BO, NORM2, W1, B1, W2, B2, SCRATCH,
                       n, H, N2, F, eps,
                       R: tl.constexpr, ACT: tl.constexpr, OUT: tl.constexpr, FF: tl.constexpr, OUTER: tl.constexpr,
                       BH: tl.constexpr, BN: tl.constexpr, BF: tl.constexpr, CB: tl.constexpr,
                       RO: tl.constexpr, R1: tl.constexpr, R2: tl.constexpr):
    row = tl.program_id(0)
    rh = tl.arange(0, BH)
    mh = rh < H
    # this row's scratch: h (two rows, alternating), v (the normed input), y (SSM outputs), g (FF hidden units)
    cur = SCRATCH + row * (4 * H + F)
    nxt = cur + H
    V = cur + 2 * H
    Y = cur + 3 * H
    G = cur + 4 * H
    tl.store(cur + rh, tl.load(HIN + row * H + rh, mask=mh, other=0.0), mask=mh)
    tl.debug_barrier()
    for l in range(n):
        tl.store(V + rh, _norm(_vector(cur, H, BH), NORM1 + l * 2 * H, H, eps, BH), mask=mh)
        tl.debug_barrier()
        sin, sout = _state(SIN, l, row, H, N2), _state(SOUT, l, row, H, N2)
        for c0 in range(0, H, CB):
            rc = c0 + tl.arange(0, CB)
            y = _ssm(tl.load(V + rc, mask=rc < H, other=0.0), rc, sin, sout, SSM + l * (6 + 4 * R) * H * N2,
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
            tl.store(nxt + ro, tl.load(cur + ro, mask=ro < H, other=0.0) + delta, mask=ro < H)
        tl.debug_barrier()
        cur, nxt = nxt, cur
        if FF:
            tl.store(V + rh, _norm(_vector(cur, H, BH), NORM2 + l * 2 * H, H, eps, BH), mask=mh)
            tl.debug_barrier()
            v = _vector(V, H, BH)
            for o0 in range(0, F, R1):
                hidden, ro = _rows(W1 + l * F * H, B1 + l * F, v, o0, F, H, R1, BH)
                tl.store(G + ro, _act(hidden, 0), mask=ro < F)
            tl.debug_barrier()
            g = _vector(G, F, BF)
            for o0 in range(0, H, R2):
                delta, ro = _rows(W2 + l * H * F, B2 + l * H, g, o0, H, F, R2, BF)
                tl.store(nxt + ro, tl.load(cur + ro, mask=ro < H, other=0.0) + delta, mask=ro < H)
            tl.debug_barrier()
            cur, nxt = nxt, cur
    _write_out(cur, HIN, HOUT, row, H, OUTER, BH)


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
    return max(1, min(triton.next_power_of_2(rows), 32 * WARPS * ROW_ELEMS // triton.next_power_of_2(K)))


def _tiles(H: int, N2: int, Fh: int) -> tuple[int, ...]:
    """BH, BN, BF: the tiles of the width, the modes and the FF hidden units (powers of two, at least 16)."""
    return tuple(max(16, triton.next_power_of_2(k)) for k in (H, N2, max(Fh, 1)))


def _blocks(H: int, N2: int, Fh: int, output: str) -> dict[str, int]:
    """The one-program kernel's blocks: channels per SSM block (CB), output rows per block of the output map (RO), of
    the FF's first and second products (R1, R2)."""
    BH, BN, _ = _tiles(H, N2, Fh)
    return dict(CB=max(1, min(BH, 32 * WARPS * SSM_ELEMS // BN)),
                RO=_block(H, 2 * H if output == "glu" else H),  # GLU: two tiles per block
                R1=_block(max(Fh, 1), H), R2=_block(H, max(Fh, 1)))


def prefetches(w: BlockWeights) -> bool:
    """Whether block_step_triton's one program per row loads each stage's weights a stage early for this stack
    (ops/triton_block_step_prefetch.py): each product is one block (CB, RO, R1, R2 cover H, H, F, H), and a layer's
    SSM inputs ((8 + 4R) BH·BN floats: its state and planes) beside the largest matrix take at most PREFETCH_ELEMS
    per thread."""
    _, _, H, N2 = w.ssm.shape
    Fh = w.ff1_w.shape[1] if w.has_ff else 0
    BH, BN, BF = _tiles(H, N2, Fh)
    blocks = _blocks(H, N2, Fh, w.output)
    one = min(blocks["CB"], blocks["RO"], blocks["R2"]) >= H and blocks["R1"] >= Fh
    return one and (8 + 4 * w.rank) * BH * BN + max(2 * BH * BH, BF * BH) <= 32 * WARPS * PREFETCH_ELEMS


@register("block_step", "triton")
def block_step_triton(h, states, out_states, w, outer: bool):
    if h.dtype != torch.float32 or not all(t.is_contiguous() for t in [h, *states, *out_states]):
        return block_step_torch(h, states, out_states, w, outer)
    B, H = h.shape
    if B <= WIDE_ROWS and H >= WIDE_WIDTH:
        from .triton_block_step_wide import block_step_wide  # it builds on this module's helpers
        return block_step_wide(h, states, out_states, w, outer)
    n, _, _, N2 = w.ssm.shape
    Fh = w.ff1_w.shape[1] if w.has_ff else 0
    BH, BN, BF = _tiles(H, N2, Fh)
    out = torch.empty_like(h)
    none = w.ssm  # a placeholder pointer for the weights a stack does not have (never read)
    args = (h, out, _table(states), _table(out_states), w.norm1, w.ssm, w.D,
            none if w.out_w is None else w.out_w, none if w.out_b is None else w.out_b,
            *[t if w.has_ff else none for t in (w.norm2, w.ff1_w, w.ff1_b, w.ff2_w, w.ff2_b)])
    consts = dict(R=w.rank, ACT=ACT_CODE[w.activation], OUT=OUT_CODE[w.output], FF=w.has_ff, OUTER=outer, BH=BH,
                  BN=BN, BF=BF, num_warps=WARPS)
    scratch = torch.empty(B, 4 * H + Fh, device=h.device, dtype=torch.float32)
    if prefetches(w):
        from .triton_block_step_prefetch import _block_step_prefetch_kernel  # it builds on this module's helpers
        _block_step_prefetch_kernel[(B,)](*args, scratch, n, H, N2, Fh, w.eps, **consts)
    else:
        _block_step_kernel[(B,)](*args, scratch, n, H, N2, Fh, w.eps, **_blocks(H, N2, Fh, w.output), **consts)
    return out
