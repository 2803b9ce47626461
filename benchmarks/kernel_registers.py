"""Registers and spilled stack per thread of Triton kernels, from an offline compile for sm_90 (no GPU needed:
triton.compile for a CUDA target and the cuobjdump that Triton ships): the kernel sums (ops.cauchy, ops.vandermonde)
at a few tiles, and the one-program stack steps (ops.block_step: the kernel that loads a stage's weights when the
stage runs, and the one that loads them a stage early) at SaShiMi's widths. Spills show as STACK beyond the ~32-48
bytes of the library calls' frames (the stack steps call none). A benchmark, not a test.

    python benchmarks/kernel_registers.py
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from ssmkit.ops import triton_block_step as tb
from ssmkit.ops import triton_block_step_prefetch, triton_cauchy, triton_vandermonde

CUOBJDUMP = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
KERNELS = {
    "cauchy forward": (triton_cauchy._forward_kernel, ["Z", "W", "V", "OUT"]),
    "cauchy backward": (triton_cauchy._backward_kernel, ["Z", "W", "V", "G", "GV", "GW"]),
    "vandermonde forward": (triton_vandermonde._forward_kernel, ["X", "V", "OUT"]),
    "vandermonde backward": (triton_vandermonde._backward_kernel, ["X", "V", "G", "GV", "GX"]),
}


def resources(fn, signature: dict[str, str], constexprs: dict, num_warps: int, multiples_of_16=()) -> dict[str, str]:
    """cuobjdump's resource fields (REG, STACK, ...) of fn compiled for sm_90: signature by argument name (constexprs
    given by value), the arguments named in multiples_of_16 taken as such (as Triton specializes them at launch)."""
    names = list(signature) + list(constexprs)
    src = ASTSource(fn=fn, signature=signature | {k: "constexpr" for k in constexprs},
                    constexprs={(names.index(k),): v for k, v in constexprs.items()},
                    attrs={(names.index(k),): [["tt.divisibility", 16]] for k in multiples_of_16})
    kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=num_warps))
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(kernel.asm["cubin"])
        f.flush()
        out = subprocess.run([CUOBJDUMP, "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    line = next(line.strip() for line in out.splitlines() if "REG:" in line)
    return dict(f.split(":") for f in line.split())


def usage(fn, pointers: list[str], dtype: str, BLK_L: int, BLK_N: int) -> dict[str, str]:
    """A kernel sum's resources at this tile, 4 warps."""
    return resources(fn, {p: f"*{dtype}" for p in pointers} | {"L": "i32", "N": "i32"}, dict(BLK_L=BLK_L, BLK_N=BLK_N),
                     num_warps=4)


def block_step_usage(prefetch: bool, H: int, N2: int, R: int) -> dict[str, str]:
    """A one-program stack step's resources at width H, N2 modes, rank R, FF ×2, GLU, with the module's warps and
    blocks, the sizes and pointers multiples of 16."""
    F = 2 * H
    BH, BN, BF = tb._tiles(H, N2, F)
    pointers = "HIN HOUT SIN SOUT NORM1 SSM D WO BO NORM2 W1 B1 W2 B2 SCRATCH".split()
    signature = {p: "*i64" if p in ("SIN", "SOUT") else "*fp32" for p in pointers}
    signature |= {"n": "i32", "H": "i32", "N2": "i32", "F": "i32", "eps": "fp32"}
    constexprs = dict(R=R, ACT=0, OUT=tb.OUT_CODE["glu"], FF=True, OUTER=True, BH=BH, BN=BN, BF=BF)
    fn = triton_block_step_prefetch._block_step_prefetch_kernel
    if not prefetch:
        fn, constexprs = tb._block_step_kernel, constexprs | tb._blocks(H, N2, F, "glu")
    return resources(fn, signature, constexprs, tb.WARPS, pointers + ["H", "N2", "F"])


def main() -> None:
    print("| kernel | dtype | tile (points or positions × modes) | registers, stack |\n|---|---|---|---|")
    for name, (fn, pointers) in KERNELS.items():
        for dtype in ("fp32", "fp64"):
            for tile in ((64, 32), (32, 16)):
                fields = usage(fn, pointers, dtype, *tile)
                print(f"| {name} | {dtype} | {tile[0]} × {tile[1]} | {fields['REG']}, {fields['STACK']} B |",
                      flush=True)
    print(f"\n| stack step ({tb.WARPS} warps, FF ×2, GLU) | width, modes, rank | registers, stack |\n|---|---|---|")
    for H, N2, R in ((64, 32, 1), (64, 32, 2), (128, 32, 1)):
        for prefetch in (False, True):
            fields = block_step_usage(prefetch, H, N2, R)
            print(f"| {'weights a stage early' if prefetch else 'weights when needed'} | {H}, {N2}, {R} | "
                  f"{fields['REG']}, {fields['STACK']} B |", flush=True)


if __name__ == "__main__":
    main()
