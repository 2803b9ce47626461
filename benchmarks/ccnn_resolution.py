"""CCNN's resolution change in use: train ccnn-digits-image on the 8×8 digits, then score the test images upsampled to
16×16 (each pixel repeated 2×2) zero-shot, with the kernels resampled (rate 1/2: the same continuous kernel at half
the spacing, scaled by 1/4) and without (rate 1: the trained taps on the finer grid). Prints a table. CPU minutes.

    python benchmarks/ccnn_resolution.py [--omega 2976.49 1] [--set key=value ...]

Measured (1 CPU thread, about 5 minutes per ω0), test accuracy 8x8 / 16x16 at rate 1/2 / 16x16 at rate 1:
ω0 2976.49 (the official sMNIST value) 98.6 / 8.9 / 12.2; ω0 30: 99.7 / 11.1 / 28.9; ω0 1: 98.9 / 98.3 / 28.9;
ω0 0.3: 98.9 / 96.9 / 17.8. A kernel only resamples when it is smooth at the trained spacing.
"""
from __future__ import annotations

import argparse
import tempfile

import torch

from ssmkit.data import build
from ssmkit.train import load_experiment, make_config, train
from ssmkit.train.trainer import load_model


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, rate: float) -> float:
    return (model(x, rate=rate).argmax(-1) == y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--omega", type=float, nargs="+", default=[2976.49, 1.0], help="MAGNet omega_0 values")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, key=value")
    args = parser.parse_args()
    x, y = build("digits", None, "test", image=True).tensors
    fine = x.repeat_interleave(2, 1).repeat_interleave(2, 2)  # (n, 16, 16, 1)
    rows = []
    for omega in args.omega:
        with tempfile.TemporaryDirectory() as tmp:
            config = make_config([*args.set, f"model_options.omega_0={omega}", f"out_dir={tmp}", "run_name=run"],
                                 load_experiment("ccnn-digits-image"), source="ccnn-digits-image")
            train(config, log=lambda *_: None)
            model = load_model(f"{tmp}/run")
        rows.append((omega, accuracy(model, x, y, 1.0), accuracy(model, fine, y, 0.5), accuracy(model, fine, y, 1.0)))
    print("\nccnn-digits-image, test accuracy: trained at 8x8, scored zero-shot at 16x16 (pixels repeated 2x2)")
    print(f"{'omega_0':>9s} {'8x8':>7s} {'16x16, rate 1/2':>16s} {'16x16, rate 1':>14s}")
    for omega, native, resampled, same_taps in rows:
        print(f"{omega:9.2f} {100 * native:6.1f}% {100 * resampled:15.1f}% {100 * same_taps:13.1f}%")


if __name__ == "__main__":
    main()
