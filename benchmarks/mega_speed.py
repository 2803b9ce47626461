"""Mega's layer beside the official one: forward + backward time and peak memory, one GPU, one process.

    python benchmarks/mega_speed.py --official DIR [--lengths 1024,2048,4096,8192] [--bf16] [--profile]

DIR holds facebookresearch/mega (a folder named mega, as for versus_official.py). The layer is the one of the official
LRA ListOps and Text models (full softmax attention, bidirectional EMA truncated at 1024 lags, postnorm; ListOps'
LayerNorm), at B = 8, width 128, z 64, v 256, EMA ndim 16. The official layer writes the (B, L, L) attention out;
ours runs it through F.scaled_dot_product_attention (layers/mega.py). Correctness first: with the official weights
copied into ours (versus_official.copy_mega_layer), the outputs and input gradients agree in float32. On a CPU
(--device cpu, short lengths) the script checks and times as a smoke test; the numbers that count are a GPU's.
--profile also prints, per length and precision, the kernels of both layers that take the most time (torch.profiler,
per forward + backward).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import ssmkit
from versus_official import copy_mega_layer, load_mega  # benchmarks/versus_official.py

B, H, Z, NDIM = 8, 128, 64, 16


def layers(modules, L: int, device: str):
    """(official, ours) with the same weights, ListOps' setting, in training mode without dropout."""
    official = modules.Layer(H, 2 * H, 2 * H, Z, NDIM, chunk_size=-1, truncation=min(L, 1024), max_positions=L,
                             attention_activation="softmax", norm_type="layernorm", prenorm=False)
    ours = ssmkit.Mega(H, NDIM, z_dim=Z, v_dim=2 * H, attention="softmax", causal=False, l_max=L, norm="layer",
                       prenorm=False, truncation=min(L, 1024))
    copy_mega_layer(ours, official)
    return official.to(device).train(), ours.to(device).train()


def step(layer, u, g, official: bool, bf16: bool):
    def run():
        u.grad = None
        with torch.autocast(u.device.type, dtype=torch.bfloat16, enabled=bf16):
            y = layer(u.transpose(0, 1), None)[0].transpose(0, 1) if official else layer(u)[0]
        y.backward(g)
        return y
    return run


def measure(run, device: str) -> tuple[float, float]:
    """(median ms of 10 runs after 3, peak MiB above what was allocated before; 0 on a CPU)."""
    for _ in range(3):
        run()
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 20 if cuda else 0.0
    return sorted(times)[len(times) // 2] * 1e3, peak


def print_profile(label: str, run, device: str, top: int = 12) -> None:
    """The kernels (CPU ops on a CPU) of ``run`` by their own time, per call, over 3 calls after 3."""
    for _ in range(3):
        run()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(3):
            run()
        if device == "cuda":
            torch.cuda.synchronize()
    events = prof.key_averages()
    if device == "cuda":
        events = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    key = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    events = sorted(events, key=lambda e: -getattr(e, key))
    print(f"=== {label}: {sum(getattr(e, key) for e in events) / 3e3:.2f} ms per call in {len(events)} kinds")
    for e in events[:top]:
        print(f"  {getattr(e, key) / 3e3:7.3f} ms {e.count // 3:4d}x  {e.key[:100]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", required=True, type=Path, help="folder holding facebookresearch/mega as mega")
    parser.add_argument("--lengths", default="1024,2048,4096,8192")
    parser.add_argument("--bf16", action="store_true", help="also time both under bf16 autocast")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--profile", action="store_true", help="also print each layer's most costly kernels")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("mega_speed.py: needs a CUDA GPU (torch.cuda.is_available() is False); on a CPU: "
                         "--device cpu --lengths 256")
    modules = load_mega(args.official / "mega")
    rows = []
    for L in (int(n) for n in args.lengths.split(",")):
        torch.manual_seed(0)
        official, ours = layers(modules, L, args.device)
        u = torch.randn(B, L, H, device=args.device, requires_grad=True)
        g = torch.randn(B, L, H, device=args.device)
        y_off, grad_off = step(official, u, g, True, False)().detach(), u.grad.clone()
        y, grad = step(ours, u, g, False, False)().detach(), u.grad.clone()
        errs = [((a - b).norm() / b.norm()).item() for a, b in ((y, y_off), (grad, grad_off))]
        assert max(errs) < 1e-4, f"L={L}: ours against the official: output {errs[0]:.1e}, ∂u {errs[1]:.1e}"
        for bf16 in (False, True) if args.bf16 else (False,):
            if bf16:  # both under the same autocast: they agree to bf16 rounding
                b_off, b = (step(layer, u, g, off, True)().detach().float() for layer, off in ((official, True),
                                                                                            (ours, False)))
                bf16_err = ((b - b_off).norm() / b_off.norm()).item()
                assert bf16_err < 5e-2, f"L={L}, bf16: ours against the official: output {bf16_err:.1e}"
            (t_off, m_off), (t, m) = (measure(step(layer, u, g, off, bf16), args.device)
                                      for layer, off in ((official, True), (ours, False)))
            if args.profile:
                for layer, off in ((official, True), (ours, False)):
                    print_profile(f"{'official' if off else 'ssmkit'}, L={L}, {'bf16' if bf16 else 'fp32'}",
                                  step(layer, u, g, off, bf16), args.device)
            rows.append(f"| {L} | {'bf16' if bf16 else 'fp32'} | {t_off:.2f} ({m_off:.0f}) | {t:.2f} ({m:.0f}) | "
                        f"{t_off / t:.2f}x | {m / m_off if m_off else float('nan'):.2f} | {max(errs):.1e} |")
            print(rows[-1], flush=True)
        del official, ours, u, g
        if args.device == "cuda":
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"\n{name}, B={B}, H={H}, z={Z}, v={2 * H}, ndim={NDIM}, forward + backward, ms (peak MiB)")
    print("| L | precision | official | ssmkit | speed-up | memory, ours / official | fp32 rel. diff |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
