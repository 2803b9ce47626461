"""Registers and spilled stack per thread of the Triton kernel sums (ops.cauchy, ops.vandermonde) at a few tiles,
from an offline compile for sm_90 (no GPU needed: triton.compile for a CUDA target and the cuobjdump that Triton
ships). Spills show as STACK beyond the ~32-48 bytes of the library calls' frames. A benchmark, not a test.

    python benchmarks/kernel_registers.py
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from ssmkit.ops import triton_cauchy, triton_vandermonde

CUOBJDUMP = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
KERNELS = {
    "cauchy forward": (triton_cauchy._forward_kernel, ["Z", "W", "V", "OUT"]),
    "cauchy backward": (triton_cauchy._backward_kernel, ["Z", "W", "V", "G", "GV", "GW"]),
    "vandermonde forward": (triton_vandermonde._forward_kernel, ["X", "V", "OUT"]),
    "vandermonde backward": (triton_vandermonde._backward_kernel, ["X", "V", "G", "GV", "GX"]),
}


def usage(fn, pointers: list[str], dtype: str, BLK_L: int, BLK_N: int) -> str:
    """cuobjdump's resource line (REG, STACK, ...) for the kernel compiled at this tile, 4 warps, sm_90."""
    signature = {p: f"*{dtype}" for p in pointers} | {"L": "i32", "N": "i32", "BLK_L": "constexpr",
                                                      "BLK_N": "constexpr"}
    names = list(signature)
    src = ASTSource(fn=fn, signature=signature,
                    constexprs={(names.index("BLK_L"),): BLK_L, (names.index("BLK_N"),): BLK_N})
    return resources(triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=4)))


def resources(kernel) -> str:
    """cuobjdump's resource line (REG, STACK, SHARED, ...) of a kernel compiled by triton.compile."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(kernel.asm["cubin"])
        f.flush()
        out = subprocess.run([CUOBJDUMP, "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    return next(line.strip() for line in out.splitlines() if "REG:" in line)


def main() -> None:
    print("| kernel | dtype | tile (points or positions × modes) | registers, stack |\n|---|---|---|---|")
    for name, (fn, pointers) in KERNELS.items():
        for dtype in ("fp32", "fp64"):
            for tile in ((64, 32), (32, 16)):
                fields = dict(f.split(":") for f in usage(fn, pointers, dtype, *tile).split())
                print(f"| {name} | {dtype} | {tile[0]} × {tile[1]} | {fields['REG']}, {fields['STACK']} B |",
                      flush=True)


if __name__ == "__main__":
    main()
