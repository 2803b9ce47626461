"""One GPU session: correctness on CUDA against the float64 CPU reference, then timings, table last.

    PYTHONUNBUFFERED=1 python benchmarks/gpu_check.py

Checks: every layer's CUDA float32 output against the same layer in float64 on the CPU; step == forward on CUDA;
bf16 autocast output. Timings (CUDA events, median of repeats): kernel forward+backward for S4 and S4D against the naive
broadcast form that materializes (H, N/2, L) (the form the official code falls back to without its extensions), and
recurrent generation throughput of a stack of layers.
"""
from __future__ import annotations

import statistics
import sys

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit


def rel(a, b):
    return ((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm()).item()


def timed(fn, repeat=10, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


LAYER_OPTIONS = {
    "s4": dict(d_state=32, l_max=512), "s4d": dict(d_state=32, l_max=512), "dss": dict(d_state=32, l_max=512),
    "dlr": dict(d_state=32, l_max=512), "s5": dict(d_state=32, l_max=512), "liquid_s4": dict(d_state=32, l_max=512),
    "gss": dict(d_state=64, l_max=512), "ema": dict(ndim=8), "mega": dict(ndim=8, chunk_size=64),
    "attention": dict(n_heads=4), "sgconv": dict(l_max=512),
}


def correctness():
    rows = []
    for name in sorted(ssmkit.LAYERS):
        torch.manual_seed(0)
        layer = ssmkit.layer(name, d_model=16, **LAYER_OPTIONS[name]).eval()
        u = torch.randn(4, 512, 16)
        ref, _ = layer.double()(u.double())
        layer = layer.float().cuda()
        y, _ = layer(u.cuda())
        step_err, state_dtype = float("nan"), "-"
        if name != "sgconv":  # no recurrent view
            with torch.no_grad():
                state, steps = layer.default_state(4), []
                for t in range(64):
                    y_t, state = layer.step(u[:, t].cuda(), state)
                    steps.append(y_t)
            step_err = rel(torch.stack(steps, 1), y[:, :64])
            first = state[0] if isinstance(state, tuple) else state
            state_dtype = str(first.dtype)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y_bf16, _ = layer(u.cuda())
        rows.append((name, rel(y, ref), step_err, rel(y_bf16.float(), ref), state_dtype))
    print("\ncorrectness (relative errors)")
    print(f"{'layer':10} {'cuda f32 vs cpu f64':>20} {'step vs forward':>16} {'bf16 autocast':>14} state dtype")
    for r in rows:
        print(f"{r[0]:10} {r[1]:20.2e} {r[2]:16.2e} {r[3]:14.2e} {r[4]}")
    return rows


def naive_s4d_kernel(k, L):
    sys = k.system()
    powers = torch.exp(sys.log_dA[..., None] * torch.arange(L, device=sys.log_dA.device))  # (H, N2, L)
    return 2 * torch.einsum("chn,hnl->chl", sys.C * sys.dB, powers).real


def naive_cauchy(v, z, w):
    return (v[..., None] / (z - w[..., None]) + v.conj()[..., None] / (z - w.conj()[..., None])).sum(-2)


def kernel_timings():
    rows = []
    H, N = 256, 64
    for L in [1024, 4096, 16384, 65536]:
        for kind in ["s4d", "s4"]:
            torch.manual_seed(0)
            k = (ssmkit.kernels.S4DKernel(H, N) if kind == "s4d" else ssmkit.kernels.DPLRKernel(H, N, l_max=L)).cuda()

            def ours():
                k(L).square().sum().backward()

            torch.cuda.reset_peak_memory_stats()
            ms = timed(ours)
            mem = torch.cuda.max_memory_allocated() / 2**20
            naive_ms = naive_mem = float("nan")
            try:
                if kind == "s4d":
                    def naive():
                        naive_s4d_kernel(k, L).square().sum().backward()
                else:
                    import ssmkit.kernels.dplr as dplr
                    original = dplr.cauchy

                    def naive():
                        dplr.cauchy = naive_cauchy
                        try:
                            k(L).square().sum().backward()
                        finally:
                            dplr.cauchy = original
                torch.cuda.reset_peak_memory_stats()
                naive_ms = timed(naive)
                naive_mem = torch.cuda.max_memory_allocated() / 2**20
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
            rows.append((kind, L, ms, mem, naive_ms, naive_mem))
    return rows


def generation_timings():
    rows = []
    for name in ["s4", "s4d"]:
        for batch in [1, 64]:
            torch.manual_seed(0)
            layers = [ssmkit.layer(name, d_model=256, d_state=64).cuda().eval() for _ in range(6)]
            states = [lay.default_state(batch) for lay in layers]
            x = torch.randn(batch, 256, device="cuda")
            for lay in layers:
                lay.setup_step()

            def one_token():
                with torch.no_grad():
                    h = x
                    for i, lay in enumerate(layers):
                        y, states[i] = lay.step(h, states[i])
                        h = h + y

            ms = timed(lambda: [one_token() for _ in range(100)], repeat=5, warmup=1) / 100
            rows.append((name, batch, ms, batch / ms * 1e3))
    return rows


def main():
    require_cuda()
    print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())
    correctness()
    if "--correctness-only" in sys.argv:
        return
    krows = kernel_timings()
    grows = generation_timings()
    print("\nkernel forward+backward, H=256 N=64 float32 (ours: chunked custom-backward ops; naive: broadcast (H,N/2,L))")
    print(f"{'kernel':6} {'L':>6} {'ours ms':>9} {'ours MiB':>9} {'naive ms':>9} {'naive MiB':>10} {'speed x':>8}")
    for kind, L, ms, mem, nms, nmem in krows:
        print(f"{kind:6} {L:6d} {ms:9.2f} {mem:9.0f} {nms:9.2f} {nmem:10.0f} {nms / ms:8.2f}")
    print("\nrecurrent generation: 6 layers, d_model=256, d_state=64, residual stack, one token per step")
    print(f"{'layer':6} {'batch':>5} {'ms/token':>9} {'tokens/s':>10}")
    for name, batch, ms, tps in grows:
        print(f"{name:6} {batch:5d} {ms:9.3f} {tps:10.0f}")


if __name__ == "__main__":
    main()
