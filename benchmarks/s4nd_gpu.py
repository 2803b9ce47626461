"""S4ND on a GPU: correctness checks against float64 on the CPU, the layer's speed at CIFAR shape, and the paper's
isotropic CIFAR-2D model training (on CIFAR-10 when data/cifar holds it, else on generated images). Checks first
(each prints ok / FAIL), the tables last.

    PYTHONUNBUFFERED=1 python benchmarks/s4nd_gpu.py            # about 5 minutes on one H100
    python benchmarks/s4nd_gpu.py --tiny                        # the same on a CPU at toy sizes (a smoke test)

Checks: ops.fftconv_nd and the S4ND layer on CUDA (float32) against the same weights in float64 on the CPU; the
resolution identity (a ZOH S4ND at rate 1/2 on a 2x nearest-upsampled image repeats its output) in float32.
Speed: forward+backward of one S4ND layer at B=50, 32x32, d_model 512 (S4 and S4D kernels, fp32 and bf16 autocast),
beside a 3x3 Conv2D layer and a bidirectional 1-D S4 layer over the flattened 1024 pixels (the sCIFAR layer), with
peak memory. Training: ImageModel at the paper's CIFAR-2D shape (6 layers, d 512, prenorm, dropout 0.1, Δ in
[0.1, 1], AdamW lr 0.01, wd 0.05, cosine): with data/cifar, `ssmkit train s4nd-cifar` for 2 epochs; without, the
same model on generated 32x32 RGB images (10 classes of oriented gratings in noise) for a fixed number of steps.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from ssmkit.models import ImageModel
from ssmkit.ops import fftconv_nd
from ssmkit.train import param_groups

TINY = "--tiny" in sys.argv
DEVICE = "cpu" if TINY else "cuda"
B, SIDE, H = (2, 8, 16) if TINY else (50, 32, 512)
failures: list[str] = []
rows: list[tuple] = []


def rel(a, b) -> float:
    return ((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm()).item()


def check(name: str, ok: bool, detail: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok:
        failures.append(name)


@torch.no_grad()
def checks() -> None:
    u = torch.randn(2, 8, 20, 12, dtype=torch.float64)
    k = [torch.randn(2, 3, 8, n, dtype=torch.float64) for n in (20, 12)]
    k_rev = [torch.randn(2, 3, 8, n, dtype=torch.float64) for n in (20, 12)]
    y = fftconv_nd(u.float().to(DEVICE), [t.float().to(DEVICE) for t in k], [t.float().to(DEVICE) for t in k_rev])
    err = rel(y, fftconv_nd(u, k, k_rev))
    check("fftconv_nd float32 on device vs float64 CPU", err < 1e-5, f"rel err {err:.1e}")
    for kernel in ("s4", "s4d"):
        layer = ssmkit.S4ND(16, 16, l_max=(16, 16), kernel=kernel, dt_min=0.1, dt_max=1.0, n_ssm=1)
        x = torch.randn(2, 16, 16, 16)
        got = layer.to(DEVICE)(x.to(DEVICE))[0]
        err = rel(got, layer.cpu().double()(x.double())[0])
        check(f"S4ND ({kernel}) float32 on device vs float64 CPU", err < 1e-4, f"rel err {err:.1e}")
    layer = ssmkit.S4ND(8, 16, l_max=(8, 8), kernel="s4d", init="lin", dt_min=0.1, dt_max=1.0).to(DEVICE)
    x = torch.randn(2, 8, 8, 8, device=DEVICE)
    fine = layer(x.repeat_interleave(2, 1).repeat_interleave(2, 2), rate=0.5)[0][:, 1::2, 1::2]
    err = rel(fine, layer(x)[0])
    check("ZOH rate 1/2 on a 2x nearest-upsampled image repeats the output", err < 1e-5, f"rel err {err:.1e}")


def timed(fn, reps: int) -> float:
    """Median milliseconds of fn() over reps calls, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - t))
    return sorted(times)[len(times) // 2]


class Conv2D(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv = torch.nn.Conv2d(d, d, 3, padding=1)

    def forward(self, u):
        return self.conv(u.movedim(-1, 1)).movedim(1, -1), None


def speed() -> None:
    layers = {
        "S4ND, S4 kernel (DPLR, N 64)": lambda: ssmkit.S4ND(H, 64, l_max=(SIDE, SIDE), n_ssm=1, dt_min=0.1, dt_max=1.0),
        "S4ND, S4D-Lin kernel (N 64)": lambda: ssmkit.S4ND(H, 64, l_max=(SIDE, SIDE), kernel="s4d", init="lin",
                                                          n_ssm=1, dt_min=0.1, dt_max=1.0),
        "Conv2D 3x3": lambda: Conv2D(H),
        "1-D S4, bidirectional, L 1024": lambda: ssmkit.S4(H, 64, bidirectional=True, l_max=SIDE * SIDE, n_ssm=1),
    }
    for name, make in layers.items():
        layer = make().to(DEVICE)
        flat = name.startswith("1-D")
        shape = (B, SIDE * SIDE, H) if flat else (B, SIDE, SIDE, H)
        u = torch.randn(*shape, device=DEVICE, requires_grad=True)
        for precision in ("fp32", "bf16"):
            amp = torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=precision == "bf16")

            def step():
                with amp:
                    y = layer(u)[0]
                y.float().square().mean().backward()

            if DEVICE == "cuda":
                torch.cuda.reset_peak_memory_stats()
            ms = timed(step, 5 if TINY else 20)
            peak = torch.cuda.max_memory_allocated() / 2**30 if DEVICE == "cuda" else float("nan")
            rows.append((name, precision, ms, peak))
            print(f"{name} {precision}: {ms:.2f} ms, {peak:.2f} GiB", flush=True)


def gratings(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n RGB images (n, SIDE, SIDE, 3) of class y: a grating at angle π·y/10 with random frequency, phase and colour,
    in Gaussian noise (σ 0.5)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    angle = math.pi * y.float() / 10
    freq = 2 * math.pi * (0.1 + 0.15 * torch.rand(n, generator=g))
    phase = 2 * math.pi * torch.rand(n, generator=g)
    r = torch.arange(SIDE).float()
    rows_, cols = torch.meshgrid(r, r, indexing="ij")
    wave = torch.sin(freq[:, None, None] * (torch.cos(angle)[:, None, None] * cols + torch.sin(angle)[:, None, None]
                                            * rows_) + phase[:, None, None])
    colour = torch.rand(n, 1, 1, 3, generator=g)
    return wave[..., None] * colour + 0.5 * torch.randn(n, SIDE, SIDE, 3, generator=g), y


def train_generated(steps: int) -> None:
    """The CIFAR-2D model on generated gratings: step time, images/s, and test accuracy (chance 10 %)."""
    torch.manual_seed(0)
    model = ImageModel(3, 10, d_model=H, n_layers=6, dropout=0.1, layer_options=dict(
        d_state=64, l_max=(SIDE, SIDE), n_ssm=1, dt_min=0.1, dt_max=1.0, ssm_lr=0.001)).to(DEVICE)
    opt = torch.optim.AdamW(param_groups(model, 0.01, 0.05))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / (steps // 10 + 1))
                                              * 0.5 * (1 + math.cos(math.pi * s / steps)))
    x_test, y_test = gratings(1000, 1)
    start = time.perf_counter()
    for s in range(steps):
        x, y = gratings(B, 100 + s)
        with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=not TINY):
            loss = F.cross_entropy(model(x.to(DEVICE)).float(), y.to(DEVICE))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad(), torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=not TINY):
        pred = torch.cat([model(x_test[i:i + B].to(DEVICE)).argmax(-1).cpu() for i in range(0, 1000, B)])
    acc = (pred == y_test).float().mean().item()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\nCIFAR-2D model ({n_params:,} parameters) on generated gratings, bf16: {steps} steps of {B} in "
          f"{seconds:.0f} s ({1000 * seconds / steps:.0f} ms/step, {steps * B / seconds:,.0f} images/s; one CIFAR "
          f"epoch of 45k images would take {45000 / (steps * B / seconds):.0f} s); test accuracy {acc:.1%} "
          f"(chance 10 %)", flush=True)


def train_cifar() -> None:
    from ssmkit.train import load_experiment, make_config, train

    overrides = ["epochs=2", "precision=bf16", "out_dir=/tmp/ssmkit-s4nd", "run_name=s4nd-cifar-2ep"]
    results = train(make_config(overrides, load_experiment("s4nd-cifar"), source="s4nd-cifar"))
    print(f"\ns4nd-cifar, 2 epochs (bf16): test accuracy {results['test_acc']:.2%}", flush=True)


def main() -> None:
    if not TINY:
        require_cuda("--tiny")
    print(torch.__version__, torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu", flush=True)
    checks()
    speed()
    if not TINY and (Path("data/cifar/cifar-10-batches-py").is_dir() or Path("data/cifar/data_batch_1").is_file()):
        train_cifar()
    else:
        train_generated(20 if TINY else 1500)
    print(f"\nOne layer, forward + backward, B={B}, {SIDE}x{SIDE}, d_model {H} (median of {5 if TINY else 20}):")
    print("| layer | precision | ms | peak GiB |\n|---|---|---|---|")
    for name, precision, ms, peak in rows:
        print(f"| {name} | {precision} | {ms:.2f} | {peak:.2f} |")
    print("\nchecks:", "all ok" if not failures else f"FAILED: {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
