"""Figures of a run: training curves (metrics.csv) and the learned convolution kernels of every layer.

Needs matplotlib (``pip install ssmkit[plot]``); writes PNGs into RUN_DIR/plots/. plot_imputation draws a series
with its imputation (`ssmkit impute`).
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch

from ..layers import S4ND


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ValueError("plot: needs matplotlib; install it with  pip install 'ssmkit[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def curves_figure(run_dir: Path, plt):
    """Loss and score per epoch (train, val) on whole-number epoch ticks; behind the training loss, the loss of every
    optimizer step (steps.csv) at its fractional epoch."""
    from matplotlib.ticker import MaxNLocator

    rows = _read_csv(run_dir / "metrics.csv")
    if not rows:
        raise ValueError(f"plot: {run_dir}/metrics.csv has no epochs yet")
    epoch = [int(r["epoch"]) for r in rows]
    score = next(m for m in ("acc", "rmse", "mse", "bits") if f"val_{m}" in rows[0])
    labels = {"loss": "loss", "acc": "accuracy", "rmse": "RMSE", "mse": "MSE", "bits": "NLL (bits per sample)"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = _read_csv(run_dir / "steps.csv") if (run_dir / "steps.csv").is_file() else []
    if steps:
        per_epoch = int(rows[0]["step"])  # optimizer steps in one epoch
        axes[0].plot([int(r["step"]) / per_epoch for r in steps], [float(r["train_loss"]) for r in steps], lw=0.7,
                     alpha=0.35, color="C0", label="train (per step)")
    for ax, metric in zip(axes, ("loss", score)):
        for split in ("train", "val"):
            ax.plot(epoch, [float(r[f"{split}_{metric}"]) for r in rows], marker="o", ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(labels[metric])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    return fig


def plot_curves(run_dir: Path, plt) -> Path:
    fig = curves_figure(run_dir, plt)
    path = run_dir / "plots" / "curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@torch.no_grad()
def plot_kernels(run_dir: Path, plt, channels: int = 4) -> Path:
    from .trainer import load_model

    model = load_model(run_dir, "best")
    grids = [m for m in model.modules() if isinstance(m, S4ND) and m.dim == 2]
    if grids:
        return _plot_2d_kernels(run_dir, plt, grids, channels)
    layers = [m for m in model.modules() if isinstance(getattr(m, "kernel", None), torch.nn.Module)]
    layers = [layers[i] for i in sorted({round(j * (len(layers) - 1) / 7) for j in range(8)})] if layers else []
    if not layers:
        raise ValueError(f"plot: the model of {run_dir} has no convolution kernels to plot")
    n = len(layers)  # at most 8, spread over the depth
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.2 * n), squeeze=False)
    for i, (ax, layer) in enumerate(zip(axes[:, 0], layers)):
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


def _plot_2d_kernels(run_dir: Path, plt, layers: list, channels: int) -> Path:
    """S4ND: the 2-D kernel K[j1, j2] (two-sided, lags −l .. l−1 on both axes, l = l_max) of the first output channel,
    for ``channels`` channels of up to 8 layers spread over the depth."""
    layers = [layers[i] for i in sorted({round(j * (len(layers) - 1) / 7) for j in range(8)})]
    fig, axes = plt.subplots(len(layers), channels, figsize=(2.2 * channels, 2.2 * len(layers)), squeeze=False)
    for i, layer in enumerate(layers):
        k, k_rev = layer.axis_kernels(layer.l_max, 1.0)
        axis = [k_a if k_rev is None else torch.cat([k_rev[a].flip(-1), k_a], -1) for a, k_a in enumerate(k)]
        K = (axis[0][..., :, None] * axis[1][..., None, :]).mean(0)[0]  # (H, 2l1, 2l2)
        for h, ax in enumerate(axes[i]):
            scale = K[h].abs().max().item() or 1.0
            ax.imshow(K[h].float().cpu().numpy(), cmap="RdBu_r", vmin=-scale, vmax=scale)
            ax.set_title(f"layer {i}, channel {h}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    path = run_dir / "plots" / "kernels.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_run(run_dir: str | Path) -> list[Path]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir}: not a folder")
    if not (run_dir / "metrics.csv").is_file():
        raise FileNotFoundError(f"plot: {run_dir} has no metrics.csv (is it an ssmkit run?)")
    plt = _pyplot()
    (run_dir / "plots").mkdir(exist_ok=True)
    return [plot_curves(run_dir, plt), plot_kernels(run_dir, plt)]


def plot_imputation(path: Path, x, mask, median, low, high, names: list[str]) -> Path:
    """One panel per channel of a series (L, K): observed values as dots, the imputed median as a line and the
    quantile band shaded, over the steps."""
    plt = _pyplot()
    K = x.shape[1]
    fig, axes = plt.subplots(K, 1, figsize=(10, 1.9 * K + 0.6), squeeze=False, sharex=True)
    steps = range(x.shape[0])
    for c, ax in enumerate(axes[:, 0]):
        seen = mask[:, c] > 0
        ax.fill_between(steps, low[:, c], high[:, c], color="tab:orange", alpha=0.3, lw=0, label="band")
        ax.plot(steps, median[:, c], color="tab:orange", lw=1.2, label="imputed median")
        ax.plot([t for t in steps if seen[t]], x[seen, c], "k.", ms=3, label="observed")
        ax.set_ylabel(names[c], fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
