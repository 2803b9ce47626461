"""What the Triton kernel sums (triton_cauchy.py, triton_vandermonde.py) share: their operands as rows of interleaved
(re, im) numbers and their loads, their tile sides, and the store of their two per-mode gradients ∂v = s_v and
∂w = conj(v)·s_w."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._chunks import sum_to_shape
from .grid_math import next_power_of_2


def tile_side(n: int, most: int) -> int:
    """A tile side: a power of two, at least 16, no more than ``most`` or than n needs."""
    return max(16, min(most, next_power_of_2(n)))


def as_rows(v: torch.Tensor, w: torch.Tensor) -> tuple[torch.Size, torch.Tensor, torch.Tensor]:
    """(batch, V, W): the two (..., N) complex operands in their common dtype, expanded to their broadcast batch and
    viewed as (*batch, N, 2) real numbers."""
    dtype = torch.promote_types(v.dtype, w.dtype)
    batch = torch.broadcast_shapes(v.shape[:-1], w.shape[:-1])
    V, W = (torch.view_as_real(t.to(dtype).expand(*batch, t.shape[-1]).contiguous()) for t in (v, w))
    return batch, V, W


def gradients(gv: torch.Tensor, gw: torch.Tensor, v_shape, w_shape, needs: tuple[bool, bool]):
    """The kernels' per-row gradients (*batch, N, 2) summed back to the operands' broadcast shapes."""
    return tuple(sum_to_shape(torch.view_as_complex(g), shape) if need else None
                 for g, shape, need in ((gv, v_shape, needs[0]), (gw, w_shape, needs[1])))


@triton.jit
def load_pairs(BASE, idx, mask):
    """(re, im) of the interleaved complex numbers BASE[idx] (zero where masked)."""
    return tl.load(BASE + 2 * idx, mask=mask, other=0.0), tl.load(BASE + 2 * idx + 1, mask=mask, other=0.0)


@triton.jit
def mode_block(V, N, BLK_N: tl.constexpr):
    """A backward program's row, block of modes (n0, indices, mask) and v there (re, im)."""
    row = tl.program_id(0)
    n0 = tl.program_id(1) * BLK_N
    rn = n0 + tl.arange(0, BLK_N)
    mn = rn < N
    vr, vi = load_pairs(V + row * 2 * N, rn, mn)
    return row, n0, rn, mn, vr, vi


@triton.jit
def store_gradients(GV, GW, row, N, rn, mn, vr, vi, svr, svi, swr, swi):
    """GV[row, n] = s_v and GW[row, n] = conj(v)·s_w for the modes rn (mask mn)."""
    tl.store(GV + row * 2 * N + 2 * rn, svr, mask=mn)
    tl.store(GV + row * 2 * N + 2 * rn + 1, svi, mask=mn)
    tl.store(GW + row * 2 * N + 2 * rn, vr * swr + vi * swi, mask=mn)
    tl.store(GW + row * 2 * N + 2 * rn + 1, vr * swi - vi * swr, mask=mn)
