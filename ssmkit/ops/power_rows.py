"""The rows of a dense system's powers that its chunked form needs (kernels/chunked.py dense_chunks): for M (H, S, S),
b (H, S) and c (Cch, H, S),

    V_j = (M^j b)ᵀ,   R_j = c M^j   (j < n),   and M^m, m the largest power of two below n,

by doubling over M alone (the reference, _PowerRows below: log2 n levels of batched products, ~35 kernels forward and
~42 backward for n = 65). On the GPU the Triton version (ops/triton_power_rows.py) runs each channel's whole chain in
one program, forward and backward. While torch.compile, torch.export, ONNX export or the JIT tracer records the op,
the reference runs.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .dispatch import implementation, recording, register
from .float32_backward import float32_backward


class _PowerRows(torch.autograd.Function):
    """V_j = (M^j b)ᵀ (H, n, S), R_j = c M^j (H, Cch, n, S) for j < n, and the last power used, M^m (m the largest
    power of two below n), by doubling over M alone (log2 n levels): with P = M^(2^i),

        V ← [V, V Pᵀ],   R ← [R, R P],   P ← P²

    (V is bᵀ (Mᵀ)^j: the powers of Mᵀ are those of M transposed, so one chain serves both; R keeps row j's channels
    side by side, so each level is one batched matmul over H). The backward walks the levels down with the adjoints
    written out, each a fused multiply-add into the gradient it updates (baddbmm):

        Ṗ += V̇_hiᵀ V_lo + R_loᵀ Ṙ_hi,   V̇_lo += V̇_hi P,   Ṙ_lo += Ṙ_hi Pᵀ,   Q̇ = Ṗ Qᵀ + Qᵀ Ṗ  (P = Q²)

    about 42 kernels for n = 65 where autograd's backward of the same chain ran about 76 (slices, pads and sums). The
    top level forms only the rows that are kept. Once differentiable (no second derivative)."""

    generate_vmap_rule = True  # a group of layers builds its chunk matrices under torch.func.vmap (stack_parts)

    @staticmethod
    def forward(b, c, M, n: int):
        if n < 2:
            raise ValueError(f"n: expected at least 2 rows, got {n}")
        Cch, H, S = c.shape
        V, R, Ps = b[:, None, :], c.transpose(0, 1), [M]  # (H, k, S), (H, k·Cch, S) with k = 1
        while True:
            k = V.shape[1]
            m = min(k, n - k)  # the rows of the upper half that are kept (fewer than k at the top level only)
            V = torch.cat([V, V[:, :m] @ Ps[-1].transpose(-1, -2)], dim=1)
            R = torch.cat([R, R[:, :m * Cch] @ Ps[-1]], dim=1)
            if 2 * k >= n:
                break
            Ps.append(Ps[-1] @ Ps[-1])
        last = Ps[-1] if len(Ps) > 1 else M.clone()
        # the outputs hold every row the backward reads; the squarings between come out for it too
        return V, R.view(H, n, Cch, S).transpose(1, 2), last, *Ps[1:-1]

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.n = inputs[3]
        ctx.mark_non_differentiable(*output[3:])
        ctx.set_materialize_grads(False)  # no zeros formed for the squarings' (never used) gradients
        ctx.save_for_backward(inputs[2], *output)

    @staticmethod
    @float32_backward
    @once_differentiable  # the squarings between are saved as plain outputs: no second derivative through them
    def backward(ctx, dV, dR, dP, *_):
        M, V, R, last, *Ps = ctx.saved_tensors
        n, (H, Cch, _, S) = ctx.n, R.shape
        dV, dR, dP = (torch.zeros_like(t) if d is None else d for d, t in ((dV, V), (dR, R), (dP, last)))
        Ps = [M, *Ps, last] if n > 2 else [M]  # P = M^(2^i) at level i; n = 2 takes one level, M itself
        R = R.transpose(1, 2).reshape(H, n * Cch, S)  # row j's channels side by side (a view of the forward's R)
        dR = dR.transpose(1, 2).reshape(H, n * Cch, S)
        for i in reversed(range(len(Ps))):
            P, k = Ps[i], 2 ** i
            m = min(k, n - k)  # the rows of the upper half that reach the output (fewer than k at the top only)
            dV_hi, dR_hi = dV[:, k:k + m], dR[:, k * Cch:(k + m) * Cch]
            dP = torch.baddbmm(dP, dV_hi.transpose(1, 2), V[:, :m])
            dP = torch.baddbmm(dP, R[:, :m * Cch].transpose(1, 2), dR_hi)
            dV_lo = torch.baddbmm(dV[:, :m], dV_hi, P)
            dR_lo = torch.baddbmm(dR[:, :m * Cch], dR_hi, P.transpose(1, 2))
            if m < k:
                dV_lo, dR_lo = torch.cat([dV_lo, dV[:, m:k]], 1), torch.cat([dR_lo, dR[:, m * Cch:k * Cch]], 1)
            dV, dR = dV_lo, dR_lo
            if i:
                Q = Ps[i - 1].transpose(1, 2)
                dP = torch.baddbmm(dP @ Q, Q, dP)
        return dV[:, 0], dR.view(H, Cch, S).transpose(0, 1), dP, None


@register("power_rows", "torch")
def power_rows_torch(b, c, M, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _PowerRows.apply(b, c, M, n)[:3]


def power_rows(b: torch.Tensor, c: torch.Tensor, M: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  torch.Tensor]:
    """(V, R, M^m): V_j = (M^j b)ᵀ (H, n, S), R_j = c M^j (H, Cch, n, S) for j < n, and M^m, m the largest power of
    two below n. b (H, S), c (Cch, H, S), M (H, S, S)."""
    if recording():
        return power_rows_torch(b, c, M, n)
    return implementation("power_rows", M.device)(b, c, M, n)
