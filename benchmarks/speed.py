"""GPU speed of ssmkit's SSM layers and ops: torch backend (FFT) vs triton backend (chunked), optionally beside the
official state-spaces/s4 S4Block, with the floors each time is measured against. A benchmark, not a test.

    python benchmarks/speed.py [--lengths 1024,4096,16384,65536] [--kinds S4,S4D,S5] [--official DIR] [--bf16]
        [--million] [--out FILE]

Layer rows: one layer with GELU + Linear(H→2H) + GLU output (S5: its own output), B=16, H=256, N=64, forward+backward,
float32 with TF32
off (and under bf16 autocast with --bf16), each library in this process on this GPU. --official DIR: a checkout of
github:state-spaces/s4 whose extensions/kernels were built (python setup.py build_ext --inplace). --million: a
4-layer S4D model of width 256 trains one step (forward, backward, AdamW) at L = 2^20, batch 1.
Correctness comes first: the triton path against the torch path (values and gradients) for each layer.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

import torch
from triton.testing import do_bench

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from fftconv_backward import autograd_fftconv  # benchmarks/fftconv_backward.py

B, H, N = 16, 256, 64


@contextlib.contextmanager
def backend(name: str | None):
    old = os.environ.pop("SSMKIT_BACKEND", None)
    if name:
        os.environ["SSMKIT_BACKEND"] = name
    try:
        yield
    finally:
        os.environ.pop("SSMKIT_BACKEND", None)
        if old:
            os.environ["SSMKIT_BACKEND"] = old


def bandwidth() -> float:
    """Measured device-to-device copy rate, bytes/s (read + write)."""
    x = torch.empty(1 << 28, device="cuda")
    y = torch.empty_like(x)
    return 2 * x.numel() * 4 / (do_bench(lambda: y.copy_(x), return_mode="median") * 1e-3)


def ceilings() -> tuple[float, float]:
    """Measured device-to-device bandwidth (bytes/s, read + write) and float32 matmul rate (FLOP/s, TF32 off)."""
    bw = bandwidth()
    a, b = torch.randn(8192, 8192, device="cuda"), torch.randn(8192, 8192, device="cuda")
    flops = 2 * 8192 ** 3 / (do_bench(lambda: a @ b, return_mode="median") * 1e-3)
    return bw, flops


def fresh(run, *leaves):
    """run() with the leaves' gradients cleared first, as a training step's zero_grad(set_to_none=True) does: each
    backward writes them anew instead of adding to the last call's (for u a full extra pass over its bytes, 0.27 ms at
    B = 16, L = 16k, H = 256 in float32, that belongs to neither implementation being compared)."""
    def go():
        for t in leaves:
            t.grad = None
        run()
    return go


def fwd_bwd(module, u, g, bf16: bool):
    def run():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            y = module(u)[0]
        y.backward(g)
    return fresh(run, u, *module.parameters())


def measure(run) -> tuple[float, float]:
    """(median ms, peak MiB above what was allocated before)."""
    run()
    torch.cuda.synchronize()
    ms = do_bench(run, warmup=50, rep=200, return_mode="median")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return ms, (torch.cuda.max_memory_allocated() - base) / 2 ** 20


def ours(kind: str, L: int, **options):
    if kind == "S4":
        return ssmkit.S4(d_model=H, d_state=N, l_max=L, **options)
    if kind == "S5":
        return ssmkit.S5(d_model=H, d_state=N)
    return ssmkit.S4D(d_model=H, d_state=N, init="lin", **options)


def official(kind: str, L: int, directory: str):
    sys.path[:0] = [directory, os.path.join(directory, "extensions", "kernels")]
    from models.s4.s4 import S4Block  # noqa: E402  (the official code, from the checkout given)
    mode = "dplr" if kind == "S4" else "diag"
    return S4Block(d_model=H, l_max=L, mode=mode, d_state=N, transposed=False, final_act="glu")


def check_correctness(L: int = 4096, batch: int = 4) -> list[str]:
    """The triton path against the torch path for each chunkable layer: forward and every parameter gradient."""
    lines = []
    for name, options in [("s4", dict(l_max=L)), ("s4d", dict(init="lin")), ("s4d", dict(bidirectional=True)),
                          ("s4", dict(l_max=L, bidirectional=True, channels=2)), ("dss", dict(variant="exp")),
                          ("dlr", dict()), ("ema", dict())]:
        layer = ssmkit.layer(name, d_model=64, **options).cuda()
        u = torch.randn(batch, L - 37, 64, device="cuda")
        results = {}
        for be in ("torch", None):  # the reference, then what ssmkit picks on CUDA
            layer.zero_grad()
            with backend(be):
                y = layer(u)[0]
            y.square().mean().backward()
            results[be] = [y.detach()] + [p.grad.clone() for p in layer.parameters()]
        errs = [((a - b).norm() / b.norm()).item() for a, b in zip(results[None], results["torch"])]
        lines.append(f"{name} {options}: y rel {errs[0]:.1e}, grads max rel {max(errs[1:]):.1e}")
        assert errs[0] < 1e-4 and max(errs[1:]) < 1e-3, lines[-1]
    return lines


def layer_rows(lengths, official_dir, bf16, bw, flops, kinds=("S4", "S4D", "S5")):
    rows = []
    for L in lengths:
        for kind in kinds:
            u = torch.randn(B, L, H, device="cuda", requires_grad=True)
            g = torch.randn(B, L, H, device="cuda")
            row = {"layer": kind, "L": L, "precision": "bf16" if bf16 else "fp32"}
            for label, be in (("torch", "torch"), ("triton", None)):
                with backend(be):
                    row[label] = measure(fwd_bwd(ours(kind, L).cuda(), u, g, bf16))
            if kind != "S5":  # the layer keeping only its input, recomputing the rest in backward; whole-layer graphs
                row["recompute"] = measure(fwd_bwd(ours(kind, L, recompute=True).cuda(), u, g, bf16))
                row["graph"] = measure(fwd_bwd(ours(kind, L, cuda_graph=True).cuda(), u, g, bf16))
            if official_dir and kind != "S5":  # S5's official code is JAX
                row["official"] = measure(fwd_bwd(official(kind, L, official_dir).cuda(), u, g, bf16))
            # floor: u, y, ∂y, ∂u once each, and the three GEMMs of the output Linear (H -> 2H)
            row["floor"] = max(4 * B * L * H * 4 / bw, 3 * 2 * B * L * H * 2 * H / flops) * 1e3
            rows.append(row)
            print(json.dumps(row), flush=True)
            del u, g
            torch.cuda.empty_cache()
    return rows


def conv_rows(lengths, bw):
    """The long convolution alone (no kernel generation), y = K ∗ u + D u, fwd+bwd: torch.fft (2L) on (B, H, L);
    chunked state passing as the general op ops.chunkconv (channel-major, torch products and the Triton scan) and as
    the layers' fused op ops.chunkconv_act (batch-first (B, L, H), activation 'id'), in float32 accuracy (3xTF32) and
    with the TF32 products the layers ask for under bf16 autocast (~5e-4 relative: beside torch.fft in float32, the
    like of FlashFFTConv's half-precision comparison)."""
    from ssmkit.layers.chunk_parts import build_parts
    from ssmkit.ops import ChunkPart, chunkconv, chunkconv_act
    rows = []
    layer = ssmkit.S4D(d_model=H, d_state=N, init="lin").cuda()
    for L in lengths:
        u = torch.randn(B, H, L, device="cuda", requires_grad=True)
        k = layer.kernel(L).detach().requires_grad_()
        s = layer.kernel.recurrence().chunks(64)
        sys_t = [t.detach().requires_grad_() for t in (s.Kt, s.Win, s.Wout)] + [s.A.detach().requires_grad_()]
        x = u.detach().transpose(0, 1).contiguous().requires_grad_()
        ub = u.detach().transpose(1, 2).contiguous().requires_grad_()
        part = ChunkPart(*(t.detach().requires_grad_() for t in build_parts(layer.kernel, layer.D, False, 1.0)))
        leaves = (part.ToepT, part.Win, part.WoutT, part.A)
        g = torch.randn(B, 1, H, L, device="cuda")
        gx = g[:, 0].permute(1, 0, 2)[..., None].contiguous()
        gb = g[:, 0].transpose(1, 2).contiguous()
        fft = measure(fresh(lambda: autograd_fftconv(u, k).backward(g), u, k))  # torch.fft as the issue names it
        chk = measure(fresh(lambda: chunkconv(x, *sys_t).backward(gx), x, *sys_t))
        fused = measure(fresh(lambda: chunkconv_act(ub, [part], "id").backward(gb), ub, *leaves))
        tf32 = measure(fresh(lambda: chunkconv_act(ub, [part], "id", "tf32").backward(gb), ub, *leaves))
        floor = 4 * B * H * L * 4 / bw * 1e3
        rows.append({"op": "conv", "L": L, "torch.fft": fft, "chunked": chk, "fused": fused, "tf32": tf32,
                     "floor": floor})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def million() -> dict:
    """A 4-layer S4D model of width 256 trains one step at L = 2^20, batch 1 (forward, backward, AdamW)."""
    L = 1 << 20
    model = ssmkit.models.SequenceModel(1, 10, layer="s4d", d_model=H, n_layers=4, pool="mean").cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(1, L, 1, device="cuda"), torch.tensor([3], device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    ms, mib = measure(step)
    return {"model": "4 x S4D(256), L=2^20, B=1", "ms/step": ms, "peak MiB": mib}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="1024,4096,16384,65536")
    p.add_argument("--official", default=None, help="checkout of github:state-spaces/s4 (extension built)")
    p.add_argument("--bf16", action="store_true", help="also time under bf16 autocast")
    p.add_argument("--kinds", default="S4,S4D,S5", help="the layers of the layer table (a subset of S4,S4D,S5)")
    p.add_argument("--million", action="store_true")
    p.add_argument("--out", default=None, help="write all rows as JSON here")
    a = p.parse_args()
    require_cuda()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    lengths = [int(v) for v in a.lengths.split(",")]
    kinds = a.kinds.split(",")
    if not kinds or set(kinds) - {"S4", "S4D", "S5"}:
        raise SystemExit(f"--kinds: expected names from S4,S4D,S5, got {a.kinds!r}")
    print(torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    for line in check_correctness():
        print("correct:", line, flush=True)
    bw, flops = ceilings()
    print(f"measured: copy {bw / 1e12:.2f} TB/s, fp32 matmul {flops / 1e12:.1f} TFLOP/s", flush=True)
    result = {"conv": conv_rows(lengths, bw), "layers": layer_rows(lengths, a.official, False, bw, flops, kinds)}
    if a.bf16:
        result["layers_bf16"] = layer_rows(lengths, a.official, True, bw, flops, kinds)
    if a.million:
        result["million"] = million()
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    print_tables(result)


def print_tables(result: dict) -> None:
    print("\n| op | L | torch.fft ms | chunkconv ms | speed-up | chunkconv_act ms (fused, batch-first) | speed-up | "
          "chunkconv_act tf32 ms | speed-up | floor ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in result["conv"]:
        fft = r["torch.fft"][0]
        print(f"| conv | {r['L']} | {fft:.2f} | {r['chunked'][0]:.2f} | {fft / r['chunked'][0]:.1f}x | "
              f"{r['fused'][0]:.2f} | {fft / r['fused'][0]:.1f}x | {r['tf32'][0]:.2f} | {fft / r['tf32'][0]:.1f}x | "
              f"{r['floor']:.2f} |")
    for key in ("layers", "layers_bf16"):
        if key not in result:
            continue
        print("\n| layer | L | prec | torch ms (MiB) | triton ms (MiB) | recompute ms (MiB) | cuda_graph ms (MiB) | "
              "official ms (MiB) | triton vs official | recompute vs official: time, memory | floor ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in result[key]:
            off, rec = r.get("official"), r.get("recompute")
            cells = [f"{r[k][0]:.2f} ({r[k][1]:.0f})" if k in r else "-"
                     for k in ("torch", "triton", "recompute", "graph")]
            cells.append(f"{off[0]:.2f} ({off[1]:.0f})" if off else "-")
            cells.append(f"{off[0] / r['triton'][0]:.2f}x" if off else "-")
            cells.append(f"{off[0] / rec[0]:.2f}x, {rec[1] / off[1]:.2f}" if off and rec else "-")
            print(f"| {r['layer']} | {r['L']} | {r['precision']} | " + " | ".join(cells) + f" | {r['floor']:.2f} |")
    if "million" in result:
        print("\n", result["million"])


if __name__ == "__main__":
    main()
