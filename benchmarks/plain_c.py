"""S4's plain C from its trained C̃ (kernels/dplr.py c_from_ctilde: C_f = C̃_f (I − Ā^L)^{-1}, the power by squaring
and a batched solve in float64, forward + backward) on the real form of the half-state map (real N×N), against the
same on the full complex N×N Ā (a quarter of the multiply-adds on the real form), alone and inside the S4 layer's
training step (B = 16, H = 256, N = 64, GELU + Linear(H→2H) + GLU, forward + backward; the layer with each version
patched in, timed A, B, B, A). One GPU:

    python benchmarks/plain_c.py [--lengths 1024 16384]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from triton.testing import do_bench

import ssmkit
from ssmkit.dense import conj_full
from ssmkit.kernels import dplr

sys.path.insert(0, str(Path(__file__).parent))
from needs_cuda import require_cuda  # noqa: E402
from speed import B, H, N, fwd_bwd, measure  # noqa: E402


def complex_c_from_ctilde(C_tilde, dA, L: int):
    """The baseline: C_f = C̃_f (I − Ā^L)^{-1} with the full complex N×N Ā (solves (I − Ā^L)ᵀ C_fᵀ = C̃_fᵀ)."""
    M = (torch.eye(dA.shape[-1], dtype=dA.dtype, device=dA.device) - torch.linalg.matrix_power(dA, L)).transpose(-1, -2)
    return torch.linalg.solve_ex(M, conj_full(C_tilde)[..., None])[0][..., 0][..., :C_tilde.shape[-1]]


VERSIONS = {"complex N×N": complex_c_from_ctilde, "real form": dplr.c_from_ctilde}


def alone(L: int) -> dict[str, float]:
    kernel = ssmkit.S4(d_model=H, d_state=N, l_max=L).cuda().kernel
    dA = kernel.transition(wide=True).detach().requires_grad_()
    C = dplr.widen(kernel.output_C())[0].detach().requires_grad_()
    ref = complex_c_from_ctilde(C, dA, L)
    out = {}
    for name, f in VERSIONS.items():
        err = ((f(C, dA, L) - ref).abs().norm() / ref.abs().norm()).item()
        assert err < 1e-10, f"{name}: {err:.1e} from the complex N×N solve"

        def run(f=f):
            torch.autograd.grad(f(C, dA, L).real.sum(), [C, dA])
        out[name] = do_bench(run, warmup=25, rep=100, return_mode="median")
    return out


def in_layer(L: int, bf16: bool) -> list[tuple[str, float]]:
    u = torch.randn(B, L, H, device="cuda", requires_grad=True)
    g = torch.randn(B, L, H, device="cuda")
    rows = []
    for name in ("complex N×N", "real form", "real form", "complex N×N"):
        dplr.c_from_ctilde = VERSIONS[name]  # read by the kernel at every build (a fresh layer: a fresh capture)
        rows.append((name, measure(fwd_bwd(ssmkit.S4(d_model=H, d_state=N, l_max=L).cuda(), u, g, bf16))[0]))
    dplr.c_from_ctilde = VERSIONS["real form"]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="*", default=[1024, 16384])
    a = p.parse_args()
    require_cuda()
    print("| L | plain C alone: complex N×N ms | real form ms | S4 layer fp32 (A, B, B, A) ms | bf16 ms |")
    print("|---|---|---|---|---|")
    for L in a.lengths:
        t = alone(L)
        layer = {bf16: " / ".join(f"{ms:.2f}" for _, ms in in_layer(L, bf16)) for bf16 in (False, True)}
        print(f"| {L} | {t['complex N×N']:.3f} | {t['real form']:.3f} | {layer[False]} | {layer[True]} |", flush=True)


if __name__ == "__main__":
    main()
