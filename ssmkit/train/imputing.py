"""Imputation with a trained SSSD run: read a series and its mask from CSV files, impute in the units of the run's
dataset, write the median and the quantile band as CSV files and a plot.

A series file has one row per time step and one column per channel, comma-separated, with an optional header row of
channel names; missing values may be empty, NaN or anything (the mask decides). The mask file has the same shape: 1
observed, 0 missing. When the run's dataset normalized its series (mean, std per channel, as the UCR/UEA loader
does), the input is read in the original units and the results are written in them; the run's normalization.json
holds that mean and std, so the run's data need not be at hand.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from .. import data
from .run_dir import normalization_stats, read_normalization
from .trainer import load_model, read_run_config, trained_length


def read_table(path: str | Path) -> tuple[np.ndarray, list[str] | None]:
    """(values (rows, columns) float64 with NaN for empty cells, header names or None)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no CSV file {path}")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    first = lines[0].split(",") if lines else []
    header = None
    try:
        [float(v) for v in first if v.strip()]
    except ValueError:
        header, lines = [v.strip() for v in first], lines[1:]
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append([float(v) if v.strip() else np.nan for v in line.split(",")])
        except ValueError as e:
            raise ValueError(f"{path}: line {i + 1 + (header is not None)}: expected numbers, got {line!r} "
                             f"({e})") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError(f"{path}: expected a table of numbers, one row per time step, every row with as many columns")
    return np.array(rows, dtype=np.float64), header


def check_series(x: np.ndarray, m: np.ndarray, series, mask) -> None:
    """The mask is 0/1 in the series' shape, and every observed value is a finite number."""
    if m.shape != x.shape:
        raise ValueError(f"{mask}: expected the shape of the series {x.shape} (rows, columns), got {m.shape}")
    bad = np.argwhere(~np.isin(m, (0, 1)))
    if len(bad):
        (r, c), = bad[:1]
        raise ValueError(f"{mask}: expected 0 (missing) or 1 (observed), got {float(m[r, c]):g} at time step "
                         f"{r + 1}, column {c + 1} ({len(bad)} such cells)")
    bad = np.argwhere((m == 1) & ~np.isfinite(x))
    if len(bad):
        (r, c), = bad[:1]
        raise ValueError(f"{series}: time step {r + 1}, column {c + 1} is marked observed but holds "
                         f"{float(x[r, c])} ({len(bad)} such cells); mark it 0 in the mask to have it imputed")


def normalization(run_dir: Path, config, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per channel of the run's dataset: from the run's normalization.json, or, for a run without one
    (trained before it was written), from its dataset; zeros and ones when the dataset does not standardize."""
    stats = read_normalization(run_dir)
    if stats is None:
        stats = normalization_stats(data.build(config.dataset, config.data_dir, "val", **config.dataset_options))
    mean, std = (np.asarray(stats.get(key, [default] * channels), dtype=np.float64)
                 for key, default in (("mean", 0.0), ("std", 1.0)))
    return mean, std


def write_table(path: Path, values: np.ndarray, names: list[str], observed: np.ndarray) -> Path:
    """A CSV with a header row: observed values in their shortest exact form (they read back equal), imputed ones in
    the shortest form of the float32 the model computed (no digits beyond its precision)."""
    cell = lambda v, seen: repr(float(v)) if seen else str(np.float32(v))  # noqa: E731
    lines = [",".join(names)] + [",".join(cell(v, s) for v, s in zip(row, obs)) for row, obs in zip(values, observed)]
    path.write_text("\n".join(lines) + "\n")
    return path


def impute_files(run_dir: str | Path, series: str | Path, mask: str | Path, n_samples: int = 10, out_dir=None,
                 seed: int = 0, checkpoint: str = "best", device: str = "cpu") -> list[Path]:
    """Impute the series of a CSV file with a run's SSSD; returns the files written (median.csv, low.csv, high.csv
    with the 5 % and 95 % quantiles of the samples, and imputation.png when matplotlib is installed)."""
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples (--samples): expected an integer >= 1, got {n_samples!r}")
    x, names = read_table(series)
    m, _ = read_table(mask)
    check_series(x, m, series, mask)
    config = read_run_config(Path(run_dir))
    if config.model != "sssd":
        raise ValueError(f"run_dir: {run_dir} trained model={config.model!r}; imputation needs an sssd run")
    model = load_model(run_dir, checkpoint, device=device)
    if x.shape[1] != model.d_input:
        raise ValueError(f"{series}: {x.shape[1]} columns, the model imputes series of {model.d_input} channels")
    longest = trained_length(model)  # SSSD's layers all hold the training length
    if longest is not None and x.shape[0] > longest:
        raise ValueError(f"{series}: {x.shape[0]} rows (time steps); the model imputes series of up to {longest}")
    mean, std = normalization(Path(run_dir), config, x.shape[1])
    z = torch.from_numpy(np.where(m > 0, (x - mean) / std, 0.0)).float()[None].to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    result = model.impute(z, torch.from_numpy(m).float()[None].to(device), n_samples, generator=generator)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "imputation"
    out.mkdir(parents=True, exist_ok=True)
    names = names or [f"channel {c}" for c in range(x.shape[1])]
    written, paths = {}, []
    for key in ("median", "low", "high"):
        values = getattr(result, key)[0].double().cpu().numpy() * std + mean
        values[m > 0] = x[m > 0]  # the observed values exactly as read, not through the normalization's rounding
        written[key] = values
        paths.append(write_table(out / f"{key}.csv", values, names, m > 0))
    if importlib.util.find_spec("matplotlib") is not None:  # without it, the CSV files are the result
        from .plots import plot_imputation
        paths.append(plot_imputation(out / "imputation.png", x, m, written["median"], written["low"], written["high"],
                                     names))
    return paths
