"""The first-hour features on a GPU: half-precision layers through the fused CUDA paths, fp16 training with loss
scaling, compile=true, and the frozen export form. Checks first (each prints ok / FAIL), the table last.

    PYTHONUNBUFFERED=1 python benchmarks/usability_gpu.py            # about 3 minutes on one H100
    python benchmarks/usability_gpu.py --tiny                        # the same on a CPU at toy sizes (a smoke test)

Checks: every SSMConv layer cast to bf16 and fp16 (forward through the chunked Triton convolution, step through the
fused step) returns its input's dtype and agrees with a float32 copy of the same rounded weights; the frozen
(conv1d) form equals the layer. Runs: `digits` for 3 epochs at fp32, bf16, fp16 (GradScaler) and fp32 with
compile=true: test accuracy, and seconds per epoch (the first apart: it includes compilation).
"""
from __future__ import annotations

import copy
import csv
import statistics
import sys
import tempfile

import torch

from needs_cuda import require_cuda  # benchmarks/needs_cuda.py
import ssmkit
from ssmkit.export import freeze
from ssmkit.train import make_config, train

TINY = "--tiny" in sys.argv
DEVICE = "cpu" if TINY else "cuda"
H, L = (8, 64) if TINY else (256, 4096)
LAYERS = {"s4": {}, "s4d": {}, "dss": {"l_max": L}, "dlr": {}, "ema": {}, "sgconv": {"l_max": L}}
failures: list[str] = []


def rel(a, b) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def check(name: str, ok: bool, detail: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


@torch.no_grad()
def check_half_precision_layers() -> None:
    for name, options in LAYERS.items():
        for dtype, tol in ((torch.bfloat16, 2e-2), (torch.float16, 3e-3)):
            layer = ssmkit.layer(name, d_model=H, **options).to(DEVICE).eval().to(dtype)
            u = torch.randn(4, L, H, device=DEVICE).to(dtype)
            reference = copy.deepcopy(layer).float()
            y, _ = layer(u)
            err = rel(y, reference(u.float())[0])
            check(f"{name} {dtype} forward", y.dtype == dtype and err < tol, f"dtype {y.dtype}, rel err {err:.1e}")
            if name != "sgconv":
                y_t, _ = layer.step(u[:, 0], layer.default_state(4))
                err = rel(y_t, reference.step(u[:, 0].float(), reference.default_state(4))[0])
                check(f"{name} {dtype} step", y_t.dtype == dtype and err < tol, f"dtype {y_t.dtype}, rel err {err:.1e}")


@torch.no_grad()
def check_frozen_form() -> None:
    for name, options in LAYERS.items():
        layer = ssmkit.layer(name, d_model=H, **options).to(DEVICE).eval()
        u = torch.randn(2, min(L, 1024), H, device=DEVICE)
        err = rel(freeze(layer, u.shape[1])(u)[0], layer(u)[0])
        check(f"{name} frozen conv1d form", err < 1e-4, f"rel err {err:.1e} (float32)")


def runs() -> list[tuple[str, float, float, float]]:
    """(label, test accuracy, seconds of the first epoch (compilation included), median seconds of the others)."""
    rows = []
    size = ["train_subset=256", "eval_subset=64", "d_model=16", "n_layers=1"] if TINY else []
    for label, extra in (("fp32", []), ("bf16", ["precision=bf16"]), ("fp16 + GradScaler", ["precision=fp16"]),
                         ("fp32, compile=true", ["compile=true"])):
        with tempfile.TemporaryDirectory() as out:
            config = make_config(["epochs=3", f"device={DEVICE}", f"out_dir={out}", "run_name=r", *size, *extra])
            results = train(config, log=lambda *_: None)
            with open(f"{out}/r/metrics.csv") as f:
                seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
            rows.append((label, results["test_acc"], seconds[0], statistics.median(seconds[1:])))
    return rows


def main() -> int:
    if not TINY:
        require_cuda("--tiny")
    torch.manual_seed(0)
    check_half_precision_layers()
    check_frozen_form()
    table = runs()
    print(f"\n{'digits, 3 epochs':24} {'test acc':>9} {'epoch 1 s':>10} {'later epochs s':>15}")
    for label, acc, first, later in table:
        print(f"{label:24} {acc:9.2%} {first:10.2f} {later:15.2f}")
    print(f"\n{len(failures)} failed checks" + (f": {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
