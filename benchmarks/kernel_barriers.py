"""The block barriers of the fused generation step (ops/triton_block_step.py `_block_step_kernel`) by the source line
of the kernel that causes them, from an offline compile for sm_90 (no GPU needed: triton.compile for a CUDA target
and the cuobjdump that Triton ships, as kernel_registers.py). A barrier the compiler adds (a reduction across warps,
a layout conversion through shared memory) is attributed to the kernel's line whose call it was inlined from. A
benchmark, not a test.

    python benchmarks/kernel_barriers.py [--width 64] [--state 64] [--ff 128]

The compile is specialized as a launch specializes it (pointers 16-byte aligned, the sizes that divide by 16): without
that the compiler picks other layouts and the count is not the launched kernel's (it read 44 where the launched kernel
had 33). At SaShiMi's top level (width 64, N = 64, FF 128, GLU output, one low-rank term): 19 barriers a layer since
the step's complex numbers are packed as (Re, Im) pairs, 33 before (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import collections
import re

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from kernel_registers import resources  # benchmarks/kernel_registers.py
from ssmkit.ops import triton_block_step as tbs
from ssmkit.ops.triton_chunkconv import ACT_CODE

POINTERS = ["HIN", "ADD", "HOUT", "SIN", "SOUT", "NORM1", "SSM", "D", "WO", "BO", "NORM2", "W1", "B1", "W2", "B2", "SCRATCH",
            "TRACE", "SKIPS"]


def compile_step(H: int, N2: int, F: int):
    """The kernel compiled as block_step_triton launches it for a stack of width H, N2 modes, FF width F."""
    signature = {p: "*fp32" for p in POINTERS} | {"SIN": "*i64", "SOUT": "*i64"}
    signature |= {"n": "i32", "H": "i32", "N2": "i32", "F": "i32", "eps": "fp32", "stride_h": "i32", "stride_add": "i32",
                  "stride_block": "i32"}
    BH, BN, BF = (max(16, triton.next_power_of_2(k)) for k in (H, N2, F))
    consts = dict(R=1, ACT=ACT_CODE["gelu"], OUT=tbs.OUT_CODE["glu"], FF=True, OUTER=True, HAS_ADD=True, HAS_TRACE=False,
                  HAS_SKIPS=False,
                  BH=BH, BN=BN, BF=BF,
                  CB=max(1, min(BH, 32 * tbs.WARPS * tbs.SSM_ELEMS // BN)), RO=tbs._block(H, 2 * H),
                  R1=tbs._block(F, H), R2=tbs._block(H, F), REPLICAS=tbs.WARPS)  # in the kernel's order
    names = list(signature) + list(consts)
    signature |= {k: "constexpr" for k in consts}
    # what a launch specializes: 16-byte aligned storage, and the sizes that are multiples of 16
    aligned = POINTERS + [k for k, v in (("H", H), ("N2", N2), ("F", F)) if v % 16 == 0]
    src = ASTSource(fn=tbs._block_step_kernel, signature=signature,
                    constexprs={(names.index(k),): v for k, v in consts.items()},
                    attrs={(names.index(k),): [["tt.divisibility", 16]] for k in aligned})
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=tbs.WARPS))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--state", type=int, default=64, help="N (N/2 complex modes)")
    p.add_argument("--ff", type=int, default=128)
    a = p.parse_args()
    kernel = compile_step(a.width, a.state // 2, a.ff)
    print(resources(kernel))
    location, by_line = "", collections.Counter()
    for line in kernel.asm["ptx"].splitlines():
        if ".loc" in line and "//" in line:
            location = line.split("//", 1)[1]
        elif "bar.sync" in line:
            sites = re.findall(r"triton_block_step\.py:(\d+)", location)  # the kernel's line is the outermost
            by_line[int(sites[-1]) if sites else 0] += 1
    source = open(tbs.__file__).read().splitlines()
    print("| line | barriers | source |\n|---|---|---|")
    for number, count in sorted(by_line.items()):
        print(f"| {number} | {count} | `{source[number - 1].strip() if number else '?'}` |")
    print(f"| all | {sum(by_line.values())} | (the loop over layers holds all but the first) |")


if __name__ == "__main__":
    main()
