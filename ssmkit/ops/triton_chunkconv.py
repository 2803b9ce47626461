"""Triton version of ops.chunkconv_act: the chunked SSM convolution with the activation fused.

The input is copied once (a tiled transpose) into the channel-major layout (H, B, L') (L' = L front-padded to whole
chunks of T; under autocast in its dtype, which halves the bytes of the copy and of its three reads), where each
channel's chunks are the rows of one contiguous matrix: every tile a kernel reads is contiguous, and the products
whose reduction runs over batch and chunks are single batched GEMMs. Under autocast the chunks' state increments S and
R are kept in its dtype too where every part's A is diagonal; the states X and ∂S, carried by the scans, stay float32.
All parts work on that one copy: a reversed part (the anti-causal half of a bidirectional layer) becomes, on the
unreversed chunks, the reversed matrices (_unreversed) and a scan from the last chunk, so the parts' Toeplitz matrices
add into one and their states sit side by side (S = Σ S_part columns, each scanned in its own direction):

    forward   S = U Win                         _project_kernel                      U: (H, B·n, T) view of the input
              X_c = A X_{c∓1} + S_{c∓1}         ops/triton_chunk_scan.py, per part
              y = U ToepT + X WoutT             _outputs_kernel (+ act, and act'(y) kept for backward)
    backward  Ġ = ∂out ⊙ act'(y), R = Ġ Wout    _project_kernel (one pass)
              ∂S = scan of R the other way with Aᵀ
              ∂U = Ġ ToepTᵀ + ∂S Winᵀ           _outputs_kernel with the transposed matrices
              ∂ToepT = UᵀĠ, ∂WoutT = XᵀĠ, ∂Win = Uᵀ∂S (cuBLAS bmm, K = B·n), ∂A inside the adjoint scan.

The output is returned as a (B, L, H) view of the channel-major result: a Linear takes it without a copy. Products
inside the kernels use tl.dot with 3xTF32 (float32 accuracy on tensor cores), or with TF32 for precision "tf32",
where the chunk matrices' gradients also come from one Triton pass (ops/triton_chunk_grads.py).
"""
from __future__ import annotations

import functools
import itertools
import operator

import torch
import triton
import triton.language as tl

from .chunkconv_act import ACTIVATIONS, ChunkPart, chunkconv_act_torch
from .dispatch import register
from .float32_backward import float32_backward
from .grid_math import cdiv, next_power_of_2
from .triton_chunk_grads import chunk_matrix_grads
from .triton_chunk_scan import scan_launch

ACT_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}  # gelu 0, silu 1, relu 2, id 3
DOT_PRECISION = {"float32": "tf32x3", "tf32": "tf32"}  # ops.chunkconv_act's precision -> tl.dot's
# (most chunks per program, warps) of the _outputs and _gate kernels: benchmarks/chunk_tiles.py measures the choices
TILE = (64, 4)


@triton.jit
def _act(y, ACT: tl.constexpr):
    if ACT == 0:
        y = 0.5 * y * (1.0 + tl.math.erf(y * 0.7071067811865476))
    elif ACT == 1:
        y = y * tl.sigmoid(y)
    elif ACT == 2:
        y = tl.maximum(y, 0.0)
    return y


@triton.jit
def _act_grad(y, ACT: tl.constexpr):
    if ACT == 0:
        d = 0.5 * (1.0 + tl.math.erf(y * 0.7071067811865476)) + y * tl.exp(-0.5 * y * y) * 0.3989422804014327
    elif ACT == 1:
        s = tl.sigmoid(y)
        d = s * (1.0 + y * (1.0 - s))
    elif ACT == 2:
        d = (y > 0).to(tl.float32)
    else:
        d = y * 0.0 + 1.0
    return d


@triton.jit(do_not_specialize=["n"])
def _outputs_kernel(V, M1, X, M2, DACT, OUT, n, s1h, s1r, s1c, s2h, s2r, s2c, SR: tl.constexpr,
                    ACT: tl.constexpr, STORE_GRAD: tl.constexpr, BC: tl.constexpr, T: tl.constexpr,
                    SD: tl.constexpr, PREC: tl.constexpr):
    """OUT = act(y), y = V M1 + X M2, over a tile of BC chunks of row (h, b), and with STORE_GRAD DACT = act'(y) for
    the backward (formed here, where erf(y) is at hand: in the gate kernel it took half of the registers);
    V, DACT, OUT (H, B, n·T), X (H, B, n, SR);
    the state axis in blocks of SD."""
    h, b, c0 = tl.program_id(0), tl.program_id(1), tl.program_id(2) * BC
    B = tl.num_programs(1)
    ri, rs, rows = tl.arange(0, T), tl.arange(0, SD), c0 + tl.arange(0, BC)
    rmask = rows < n
    row = h * B + b
    offs = row * n * T + rows[:, None] * T + ri[None, :]
    v = tl.load(V + offs, mask=rmask[:, None], other=0.0).to(tl.float32)  # the backward's V, Ġ, may be bf16 or fp16
    m1 = tl.load(M1 + h * s1h + ri[:, None] * s1r + ri[None, :] * s1c)
    y = tl.dot(v, m1, input_precision=PREC)
    for s0 in tl.static_range(0, SR, SD):
        smask = s0 + rs < SR
        x = tl.load(X + (row * n + rows[:, None]) * SR + s0 + rs[None, :], mask=rmask[:, None] & smask[None, :],
                    other=0.0)
        m2 = tl.load(M2 + h * s2h + (s0 + rs[:, None]) * s2r + ri[None, :] * s2c, mask=smask[:, None], other=0.0)
        y += tl.dot(x, m2, input_precision=PREC)
    if STORE_GRAD:
        tl.store(DACT + offs, _act_grad(y, ACT).to(DACT.dtype.element_ty), mask=rmask[:, None])
    tl.store(OUT + offs, _act(y, ACT).to(OUT.dtype.element_ty), mask=rmask[:, None])


@triton.jit(do_not_specialize=["n"])
def _project_kernel(G, DACT, GD, W, R, n, swh, swi, sws, SR: tl.constexpr, GATE: tl.constexpr, BC: tl.constexpr,
                    T: tl.constexpr, SD: tl.constexpr, PREC: tl.constexpr):
    """R = G' W over a tile of BC chunks, W[i, s] at W + h·swh + i·swi + s·sws; with GATE, G' = GD = G ⊙ DACT (also
    stored), else G' = G."""
    h, b, c0 = tl.program_id(0), tl.program_id(1), tl.program_id(2) * BC
    B = tl.num_programs(1)
    ri, rs, rows = tl.arange(0, T), tl.arange(0, SD), c0 + tl.arange(0, BC)
    rmask = rows < n
    row = h * B + b
    offs = row * n * T + rows[:, None] * T + ri[None, :]
    g = tl.load(G + offs, mask=rmask[:, None], other=0.0).to(tl.float32)  # the gate's G may be bf16 or fp16
    if GATE:
        g = g * tl.load(DACT + offs, mask=rmask[:, None], other=0.0).to(tl.float32)
        tl.store(GD + offs, g.to(GD.dtype.element_ty), mask=rmask[:, None])  # R below: from g before rounding
    for s0 in tl.static_range(0, SR, SD):
        smask = s0 + rs < SR
        w = tl.load(W + h * swh + ri[:, None] * swi + (s0 + rs[None, :]) * sws, mask=smask[None, :], other=0.0)
        r = tl.dot(g, w, input_precision=PREC)
        tl.store(R + (row * n + rows[:, None]) * SR + s0 + rs[None, :], r.to(R.dtype.element_ty),
                 mask=rmask[:, None] & smask[None, :])


@triton.jit(do_not_specialize=["L", "pad", "s0"])  # one compilation for every length
def _transpose_kernel(SRC, DST, L, H, pad, s0, s1, s2, TO_CHANNEL_MAJOR: tl.constexpr, BL: tl.constexpr,
                      BH: tl.constexpr):
    """(B, L, H) <-> (H, B, pad + L) through a (BL, BH) tile: coalesced on both sides (the compiler stages the tile
    through shared memory); casts to the destination's dtype. s0..s2: the strides of the batch-first side."""
    # the length blocks on grid axis 0 (up to 2^31 − 1 programs; axes 1 and 2 stop at 65,535: L = 4M has 65,536)
    rl, b, rh = tl.program_id(0) * BL + tl.arange(0, BL), tl.program_id(1), tl.program_id(2) * BH + tl.arange(0, BH)
    B = tl.num_programs(1)
    mask = (rl < L)[:, None] & (rh < H)[None, :]
    batch_first = b * s0 + rl[:, None] * s1 + rh[None, :] * s2
    channel_major = (rh[None, :] * B + b) * (L + pad) + pad + rl[:, None]
    if TO_CHANNEL_MAJOR:
        tile = tl.load(SRC + batch_first, mask=mask)
        tl.store(DST + channel_major, tile.to(DST.dtype.element_ty), mask=mask)
    else:
        tile = tl.load(SRC + channel_major, mask=mask)
        tl.store(DST + batch_first, tile.to(DST.dtype.element_ty), mask=mask)


def to_channel_major(u: torch.Tensor, pad: int, any_dtype: bool = False, dtype: torch.dtype = torch.float32
                     ) -> torch.Tensor:
    """u (B, L, H), any float dtype and strides -> (H, B, pad + L) of ``dtype``, zeros in front; u itself (as a view)
    where it is already stored channel-major without padding and is float32, or of any dtype with ``any_dtype`` (for
    a reader that converts as it loads: the backward's gate). Such is the gradient that an output map hands back for
    the channel-major output of this op: the float32 tiles of ops/triton_linear_glu.py, and under autocast cuBLAS
    through PyTorch's matmul backward, which returns a column-major input's gradient column-major."""
    if (pad == 0 and (any_dtype or u.dtype == torch.float32) and u.dtype.is_floating_point
            and u.permute(2, 0, 1).is_contiguous()):
        return u.permute(2, 0, 1)
    B, L, H = u.shape
    x = (torch.zeros if pad else torch.empty)(H, B, pad + L, device=u.device, dtype=dtype)
    _transpose_kernel[(cdiv(L, 64), B, cdiv(H, 64))](u, x, L, H, pad, *u.stride(),
                                                     TO_CHANNEL_MAJOR=True, BL=64, BH=64)
    return x


def to_batch_first(x: torch.Tensor, pad: int, dtype: torch.dtype) -> torch.Tensor:
    """x (H, B, pad + L) -> contiguous (B, L, H) of ``dtype``, the padding dropped."""
    H, B, Lp = x.shape
    u = torch.empty(B, Lp - pad, H, device=x.device, dtype=dtype)
    _transpose_kernel[(cdiv(Lp - pad, 64), B, cdiv(H, 64))](x, u, Lp - pad, H, pad, *u.stride(),
                                                             TO_CHANNEL_MAJOR=False, BL=64, BH=64)
    return u


def _tiles(H: int, B: int, n: int, SR: int) -> tuple[tuple, int, int, int]:
    """The grid over (channel, batch row, blocks of BC chunks), BC, the state block SD and the warps (TILE)."""
    BC = max(16, min(TILE[0], next_power_of_2(n)))
    return (H, B, cdiv(n, BC)), BC, max(16, min(64, next_power_of_2(SR))), TILE[1]


def _outputs(V, M1, X, M2, n, act: int, store_grad: bool, transpose: bool, prec: str, out_dtype=None,
             grad_dtype=None):
    """act(y), y = V M1 + X M2, in out_dtype (default V's) (and act'(y) with store_grad, in grad_dtype, default V's);
    transpose: use M1ᵀ and M2ᵀ (the backward's ∂U)."""
    H, B, Lp = V.shape
    T, SR = M1.shape[-1], X.shape[-1]
    out = torch.empty_like(V, dtype=out_dtype)
    dact = torch.empty_like(V, dtype=grad_dtype) if store_grad else V
    s1 = (M1.stride(0), M1.stride(2), M1.stride(1)) if transpose else M1.stride()
    s2 = (M2.stride(0), M2.stride(2), M2.stride(1)) if transpose else M2.stride()
    grid, BC, SD, warps = _tiles(H, B, n, SR)
    _outputs_kernel[grid](V, M1, X, M2, dact, out, n, *s1, *s2, SR=SR, ACT=act, STORE_GRAD=store_grad, BC=BC, T=T,
                          SD=SD, PREC=prec, num_warps=warps)
    return out, (dact if store_grad else None)


def _project(G, W, n, SR, prec: str, dact=None, transpose=False, r_dtype=torch.float32):
    """(G' = G ⊙ dact if dact is given, else G itself; R = G' W) over the chunk rows of G (H, B, n·T): W (H, T, SR),
    or transpose: W (H, SR, T) used as its transpose. R in r_dtype (from G' before it is rounded); G' in dact's dtype;
    G float32, bf16 or fp16 (the forward's input copy under autocast, the backward's gradient)."""
    H, B, _ = G.shape
    T = W.shape[-1] if transpose else W.shape[1]
    gd = torch.empty_like(G, dtype=dact.dtype) if dact is not None else None
    R = torch.empty(H, B, n, SR, device=G.device, dtype=r_dtype)
    swi, sws = (W.stride(2), W.stride(1)) if transpose else (W.stride(1), W.stride(2))
    grid, BC, SD, warps = _tiles(H, B, n, SR)
    _project_kernel[grid](G, G if dact is None else dact, G if gd is None else gd, W, R, n, W.stride(0), swi, sws,
                          SR=SR, GATE=dact is not None, BC=BC, T=T, SD=SD, PREC=prec, num_warps=warps)
    return (G if gd is None else gd), R


def _state_columns(As) -> list[slice]:
    """Each part's columns in the side-by-side states: a dense A (H, S, S) has S, a complex diagonal (H, S/2) S."""
    widths = [a.shape[-1] * (2 if a.is_complex() else 1) for a in As]
    return [slice(end - w, end) for end, w in zip(itertools.accumulate(widths), widths)]


class _ChunkConvAct(torch.autograd.Function):
    """act(U ToepT + X WoutT) with the parts' states X side by side, each scanned in its own direction
    (chunkconv_act_triton gives the parts' matrices in the order of the unreversed chunks)."""

    @staticmethod
    def forward(ctx, u, activation, reverses, precision, out_dtype, ToepT, Win, WoutT, *As):
        B, L, H = u.shape
        T = ToepT.shape[-1]
        n = cdiv(L, T)
        pad = n * T - L
        # under autocast (TF32 products) the channel-major copy of the input, the chunks' state increments S (and in
        # backward R), act'(y) and the gated gradient Ġ are kept in its dtype, as the gradient G that reaches this op
        # is: half the bytes of the largest reads and writes. The scans carry and store the states in float32. S and
        # R stay float32 where a part's A is dense: its scan's chain of 64 x 64 products is bound by latency, and
        # converting the increments inside it cost S4 0.15 ms at 16k, where S4D's diagonal scans saved 0.21 (H100).
        half = precision == "tf32" and out_dtype in (torch.bfloat16, torch.float16)
        store = out_dtype if half else torch.float32
        ctx.increments = store if all(A.is_complex() for A in As) else torch.float32
        x = to_channel_major(u, pad, dtype=store)
        prec = DOT_PRECISION[precision]
        S = _project(x, Win, n, Win.shape[-1], prec, r_dtype=ctx.increments)[1]
        X = torch.empty_like(S, dtype=torch.float32)
        for A, reverse, cols in zip(As, reverses, _state_columns(As)):
            scan_launch(A, S[..., cols], reverse=reverse, adjoint=False, X=X[..., cols])
        act = ACT_CODE[activation]
        out, dact = _outputs(x, ToepT, X, WoutT, n, act, act != ACT_CODE["id"], transpose=False, prec=prec,
                             out_dtype=out_dtype, grad_dtype=store)
        ctx.activation, ctx.reverses, ctx.precision, ctx.pad, ctx.dtype = activation, reverses, precision, pad, u.dtype
        ctx.save_for_backward(x, dact, X, ToepT, Win, WoutT, *As)
        return out[..., pad:].permute(1, 2, 0)

    @staticmethod
    @float32_backward
    def backward(ctx, grad):
        x, dact, X, ToepT, Win, WoutT, *As = ctx.saved_tensors
        pad, prec = ctx.pad, DOT_PRECISION[ctx.precision]
        H, B, Lp = x.shape
        T, SR = ToepT.shape[-1], Win.shape[-1]
        n = Lp // T
        g = to_channel_major(grad, pad, any_dtype=dact is not None)
        gd, R = _project(g, WoutT, n, SR, prec, dact, transpose=True, r_dtype=ctx.increments)
        dS, dAs = torch.empty_like(R, dtype=torch.float32), []
        for A, reverse, cols in zip(As, ctx.reverses, _state_columns(As)):  # the adjoint runs the other way with Aᵀ
            dAs.append(scan_launch(A, R[..., cols], reverse=not reverse, adjoint=True, X=dS[..., cols],
                                   forward_states=X[..., cols])[1])
        du = _outputs(gd, ToepT, dS, Win, n, ACT_CODE["id"], False, transpose=True, prec=prec,
                      out_dtype=torch.float32)[0]
        U, G2, X2, S2 = (t.view(H, B * n, -1) for t in (x, gd, X, dS))
        if ctx.precision == "tf32":
            grads = chunk_matrix_grads(U, G2, S2, X2, prec)
        else:  # cuBLAS in float32 (the float32 accuracy of chunk_matrix_grads is slower: its module docstring)
            grads = [U.transpose(1, 2) @ G2, U.transpose(1, 2) @ S2, X2.transpose(1, 2) @ G2]
        return (to_batch_first(du, pad, ctx.dtype), None, None, None, None, *grads, *dAs)


def _unreversed(p: ChunkPart) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ToepT, Win, WoutT) of a part as products over the chunks in their own order. A reversed part runs the causal
    products on the reversed sequence; on one chunk u (a row of T steps), with J the reversal of its steps, that is
    y = (u J ToepT + X WoutT) J and S = u J Win: the matrices J ToepT J, J Win and WoutT J, with the state carried
    from the last chunk to the first."""
    if not p.reverse:
        return p.ToepT, p.Win, p.WoutT
    return p.ToepT.flip(-2, -1), p.Win.flip(-2), p.WoutT.flip(-1)


def _joined(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    return tensors[0].contiguous() if len(tensors) == 1 else torch.cat(tensors, dim)


@register("chunkconv_act", "triton")
def chunkconv_act_triton(u: torch.Tensor, parts: list[ChunkPart], activation: str, precision: str = "float32",
                         out_dtype: torch.dtype | None = None) -> torch.Tensor:
    if parts[0].Win.dtype != torch.float32:  # float64 (tests, oracles) takes the reference
        return chunkconv_act_torch(u, parts, activation, precision, out_dtype)
    mats = [_unreversed(p) for p in parts]
    ToepT = functools.reduce(operator.add, (m[0] for m in mats)).contiguous()  # the parts read the same chunks
    Win, WoutT = _joined([m[1] for m in mats], -1), _joined([m[2] for m in mats], -2)
    return _ChunkConvAct.apply(u, activation, tuple(p.reverse for p in parts), precision, out_dtype, ToepT, Win, WoutT,
                               *(p.A.contiguous() for p in parts))
