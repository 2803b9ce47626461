"""One sequence split over the ranks of a process group (sequence parallelism by state passing).

Rank r holds the chunk u_r of length T (positions rT … rT + T − 1). An LTI SSM's output on it is its own
convolution from the zero state plus what the state carried in from the ranks before adds:

    y_r = K ∗ u_r + D u_r + carried_output(x_r)          x_r = Σ_{j<r} Ā^{T(r−1−j)} e_j,   e_j = end_state(u_j)

Each rank computes its chunk-end state e_r from zero (B, H, N/2), gathers the K states (small), and forms its
incoming x_r by the recurrence x ← Ā^T x + e_j over the ranks before it (the same few steps on every rank). The
gather is differentiable (ops.collectives): in backward each rank's e_r receives the sum of what every later rank's
outputs send back — the adjoint state, passed the other way. Gradients of the layer's parameters are then partial on
each rank; summed over the ranks (models.sequence_parallel.sum_gradients) they are the whole sequence's.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from ..ops.collectives import gather


def incoming_state(system, end: torch.Tensor, T: int, group) -> torch.Tensor:
    """x_r for this rank from every rank's chunk-end state ``end`` (B, H, N2) complex. Rank 0 gets zeros that still
    depend on the gathered states (times 0), so that the gather's backward runs on every rank."""
    ends = torch.view_as_complex(gather(torch.view_as_real(end), group))  # (K, B, H, N2)
    rank = dist.get_rank(group)
    if rank == 0:
        return 0 * ends[0]
    x = ends[0]
    for j in range(1, rank):
        x = system.advance(x, T) + ends[j]
    return x
