"""The math as pure functions of explicit tensors — compute a kernel without a module — and the dense oracle.

    dplr_kernel(Lambda, P, B, C, dt, L, disc, Q=None)     S4: K_k = C_f Ā^k B̄_f of the full DPLR system (plain C),
                                                          A = diag(Λ_f) − P_f Q_f* (Q None: Q = P)
    diag_kernel(Lambda, B, C, dt, L, disc="zoh")          S4D: K_k = 2·Re Σ_n C_n B̄_n Ā_n^k
    dplr_generating_kernel(..., C_tilde, ...)             S4 from C̃ (what the S4 layer trains)
    ctilde_from_c / c_from_ctilde                         C̃ = C_f (I − Ā^L) and back

Shapes: Lambda (H, N2), P (R, H, N2), B (H, N2), C (Cch, H, N2) complex; dt (H,) real > 0 -> K (Cch, H, L) real.

The oracle (ssmkit.dense): dplr_dense / diag_dense materialize the full N×N system, dense_discretize applies the
matrix-function formulas, dense_kernel and dense_recurrence run it step by step. Tests hold every fast path to it.
"""
from .dense import dense_discretize, dense_kernel, dense_recurrence, diag_dense, dplr_dense
from .kernels.diag import diag_kernel
from .kernels.dplr import c_from_ctilde, ctilde_from_c, dplr_generating_kernel, dplr_kernel

__all__ = ["dplr_kernel", "diag_kernel", "dplr_generating_kernel", "ctilde_from_c", "c_from_ctilde", "dplr_dense",
           "diag_dense", "dense_discretize", "dense_kernel", "dense_recurrence"]
