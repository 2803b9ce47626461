"""Figures of a run: training curves (metrics.csv) and the learned convolution kernels of every layer.

Needs matplotlib (``pip install ssmkit[plot]``); writes PNGs into RUN_DIR/plots/.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ValueError("plot: needs matplotlib; install it with  pip install 'ssmkit[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_curves(run_dir: Path, plt) -> Path:
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"plot: {run_dir}/metrics.csv has no epochs yet")
    epoch = [int(r["epoch"]) for r in rows]
    score = "acc" if "val_acc" in rows[0] else "rmse"
    labels = {"loss": "loss", "acc": "accuracy", "rmse": "RMSE"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", score)):
        for split in ("train", "val"):
            ax.plot(epoch, [float(r[f"{split}_{metric}"]) for r in rows], marker="o", ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(labels[metric])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    path = run_dir / "plots" / "curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@torch.no_grad()
def plot_kernels(run_dir: Path, plt, channels: int = 4) -> Path:
    from .trainer import load_model

    model = load_model(run_dir, "best")
    n = len(model.layers)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.2 * n), squeeze=False)
    for i, (ax, layer) in enumerate(zip(axes[:, 0], model.layers)):
        L = layer.l_max or 1024
        K = layer.kernel(L)[0]  # (H, L): the first output channel
        for h in range(min(channels, K.shape[0])):
            ax.plot(K[h].float().cpu().numpy(), lw=1, label=f"channel {h}")
        ax.set_title(f"layer {i} ({type(layer).__name__}): kernel K_l of {min(channels, K.shape[0])} channels",
                     fontsize=9)
        ax.set_xlabel("l")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=channels)
    fig.tight_layout()
    path = run_dir / "plots" / "kernels.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_run(run_dir: str | Path) -> list[Path]:
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.csv").is_file():
        raise FileNotFoundError(f"plot: {run_dir} has no metrics.csv (is it an ssmkit run?)")
    plt = _pyplot()
    (run_dir / "plots").mkdir(exist_ok=True)
    return [plot_curves(run_dir, plt), plot_kernels(run_dir, plt)]
