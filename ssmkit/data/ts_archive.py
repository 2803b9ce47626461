"""Time-series archives in the .ts format (sktime's): UCR/UEA classification and the Monash TSER regression sets,
among them BIDMC vital signs.

A .ts file: comment lines ('#' or '%'), then a header of @tags (@problemName, @timeStamps, @missing, @univariate,
@dimensions, @equalLength, @seriesLength, @classLabel true <labels...> | false, @targetLabel true | false), then
@data and one case per line: the dimensions separated by ':', each a comma-separated list of values ('?' or NaN when
missing), and last the class label or regression target. Time-stamped series ((t, v) tuples) are not supported.

Series become (L, dimensions) sequences, z-scored per dimension with the training split's statistics; a missing
value becomes 0 after that (the training mean), and series shorter than the longest of the train and test files are
zero-padded (so every split has the same l_max), with their lengths given so that the model pools over the real steps
only.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..options import did_you_mean
from .registry import data_folder, holdout, register_dataset

@dataclass
class TsFile:
    series: list[np.ndarray]  # per case (dimensions, length), float64 with NaN where missing
    targets: list[str]  # the label or target text of each case
    class_labels: list[str] | None  # declared by @classLabel true ...; None for regression
    path: Path


def read_ts(path: str | Path) -> TsFile:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .ts file {path}")
    header: dict[str, list[str]] = {}
    series, targets = [], []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith(("#", "%")):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise ValueError(f"{path}: line {n}: expected an @tag or @data before the cases, got {line[:40]!r}")
                tag, *values = line.split()
                tag = tag[1:].lower()
                if tag == "data":
                    in_data = True
                    if header.get("timestamps", ["false"])[0].lower() == "true":
                        raise ValueError(f"{path}: @timeStamps true: time-stamped series are not supported")
                    if "classlabel" not in header and "targetlabel" not in header:
                        raise ValueError(f"{path}: the header declares neither @classLabel nor @targetLabel")
                header[tag] = values
                continue
            *dims, target = line.split(":")
            if not dims:
                raise ValueError(f"{path}: line {n}: a case needs the values and a label separated by ':'")
            try:
                values = [np.array([math.nan if v.strip() in ("?", "NaN", "nan") else float(v)
                                    for v in d.split(",")]) for d in dims]
            except ValueError as e:
                raise ValueError(f"{path}: line {n}: {e}") from None
            if len({len(v) for v in values}) != 1:
                raise ValueError(f"{path}: line {n}: the dimensions have lengths {[len(v) for v in values]}; a case's "
                                 f"dimensions must have one length")
            if series and len(values) != len(series[0]):
                raise ValueError(f"{path}: line {n}: {len(values)} dimensions, the first case has {len(series[0])}")
            series.append(np.stack(values))
            targets.append(target.strip())
    if not in_data or not series:
        raise ValueError(f"{path}: no cases (expected @data followed by one case per line)")
    label_tag = header.get("classlabel", ["false"])
    if not label_tag or label_tag[0].lower() not in ("true", "false") or label_tag == ["true"]:
        raise ValueError(f"{path}: @classLabel {' '.join(label_tag)!r}: expected 'true <label> <label> ...' or "
                         f"'false'")
    class_labels = label_tag[1:] if label_tag[0].lower() == "true" else None
    if class_labels is not None:
        unknown = sorted(set(targets) - set(class_labels))
        if unknown:
            raise ValueError(f"{path}: labels {unknown[:5]} are not among the declared @classLabel {class_labels}")
    return TsFile(series, targets, class_labels, path)


def _pad(series: list[np.ndarray], mean: np.ndarray, std: np.ndarray, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (n, length, dims) float32, z-scored, missing and padding 0; lengths (n,))."""
    lengths = [s.shape[1] for s in series]
    x = np.zeros((len(series), length, series[0].shape[0]), dtype=np.float32)
    for i, s in enumerate(series):
        x[i, :s.shape[1]] = np.nan_to_num((s.T - mean) / std, nan=0.0)
    return torch.from_numpy(x), torch.tensor(lengths)


def _stats(series: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    values = np.concatenate(series, axis=1)  # (dims, all steps)
    mean, std = np.nanmean(values, axis=1), np.nanstd(values, axis=1)
    return mean, np.where(std > 0, std, 1.0)


def _dataset(series: list[np.ndarray], train_series: list[np.ndarray], targets: list, n_out: int, regress: bool,
             files: list[TsFile]) -> TensorDataset:
    """(x, y, lengths) of `series`, normalized with the statistics of `train_series` (kept as mean, std (dims,)),
    padded to the longest series of all `files` (every split has the same l_max, so a model built from the training
    split reads the test split)."""
    dims = {f.series[0].shape[0] for f in files}
    if len(dims) > 1:
        raise ValueError(f"{files[1].path}: series of {files[1].series[0].shape[0]} dimensions, "
                         f"{files[0].path} has {files[0].series[0].shape[0]}")
    length = max(s.shape[1] for f in files for s in f.series)
    mean, std = _stats(train_series)
    x, lengths = _pad(series, mean, std, length)
    if regress:
        ds = TensorDataset(x, torch.tensor(targets, dtype=torch.float32)[:, None], lengths)
        ds.task = "regress"
    else:
        ds = TensorDataset(x, torch.tensor(targets), lengths)
    ds.d_input, ds.n_classes, ds.l_max = x.shape[-1], n_out, x.shape[1]
    ds.mean, ds.std = torch.from_numpy(mean).float(), torch.from_numpy(std).float()
    return ds


def bundled_archive() -> Path | None:
    """The folder of .ts datasets that aeon or sktime ship (found without importing them), if one is installed."""
    for package, sub in (("aeon", ("datasets", "data")), ("sktime", ("datasets", "data"))):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            folder = Path(spec.origin).parent.joinpath(*sub)
            if folder.is_dir():
                return folder
    return None


def _archive_files(data_dir, name: str) -> tuple[Path, Path]:
    if data_dir is None:
        root = bundled_archive()
        if root is None:
            raise ValueError(f"data_dir: set it to the folder holding {name}_TRAIN.ts and {name}_TEST.ts (the UCR or "
                             f"UEA archive from timeseriesclassification.com), or install aeon or sktime for the "
                             f"few datasets they bundle")
    else:
        root = Path(data_dir)
    for folder in (root / name, root):
        if (folder / f"{name}_TRAIN.ts").is_file():
            return folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"
    there = sorted({path.name[:-len("_TRAIN.ts")] for path in root.glob("**/*_TRAIN.ts")}) if root.is_dir() else []
    raise FileNotFoundError(f"data_dir: no {name}_TRAIN.ts in {root} or {root / name}{did_you_mean(name, there)}")


@register_dataset("ucr-uea", "UCR/UEA time-series classification: {problem}_TRAIN.ts / _TEST.ts in data_dir (or "
                             "the sets aeon/sktime bundle); set problem=")
def ucr_uea(data_dir: str | None, split: str, problem: str = "", val_fraction: float = 0.1,
            seed: int = 0) -> TensorDataset:
    """`problem`: the archive's dataset name (its @problemName and file prefix), e.g. GunPoint."""
    if not problem:
        raise ValueError("problem: set the archive's dataset name, e.g. dataset_options.problem=GunPoint")
    train_path, test_path = _archive_files(data_dir, problem)
    train = read_ts(train_path)
    if train.class_labels is None:
        raise ValueError(f"{train_path}: a regression file (@targetLabel); ucr-uea is for classification")
    test = read_ts(test_path)
    part = test if split == "test" else train
    keep = np.arange(len(part.series)) if split == "test" else holdout(len(part.series), split, val_fraction, seed)
    index = {label: i for i, label in enumerate(train.class_labels)}
    if test.class_labels is None or set(test.class_labels) - set(index):
        raise ValueError(f"{test_path}: declares labels {test.class_labels}, the training file {train.class_labels}")
    fit = [train.series[i] for i in holdout(len(train.series), "train", val_fraction, seed)]
    return _dataset([part.series[i] for i in keep], fit, [index[part.targets[i]] for i in keep],
                    len(train.class_labels), regress=False, files=[train, test])


_BIDMC_TARGETS = ("RR", "HR", "SpO2")


@register_dataset("bidmc", "BIDMC vital signs regression (target=RR|HR|SpO2) from the Monash TSER files "
                           "BIDMC32{target}_TRAIN.ts / _TEST.ts in data_dir")
def bidmc(data_dir: str | None, split: str, target: str = "RR", shuffle: bool = True, seed: int = 0) -> TensorDataset:
    """Series of 4000 steps (PPG and ECG, 2 dimensions). shuffle=True (the S4 setup): train and test files pooled and
    split 70 / 15 / 15 by a seeded permutation; shuffle=False: the files' split, the last 1/7 of train for val."""
    if target not in _BIDMC_TARGETS:
        raise ValueError(f"target: expected one of {_BIDMC_TARGETS}, got {target!r}")
    root = data_folder(data_dir, f"the folder holding BIDMC32{target}_TRAIN.ts and _TEST.ts (Monash TSER archive, "
                                 f"zenodo.org records 4001463 RR, 4001456 HR, 4001464 SpO2)", inner=target)
    files = [read_ts(root / f"BIDMC32{target}_{part}.ts") for part in ("TRAIN", "TEST")]
    for f in files:
        if f.class_labels is not None:
            raise ValueError(f"{f.path}: a classification file (@classLabel true); bidmc expects @targetLabel true")
    series, targets = files[0].series + files[1].series, files[0].targets + files[1].targets
    n_train_file = len(files[0].series)
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(series))
        a, b = int(0.7 * len(series)), int(0.85 * len(series))
        parts = {"train": order[:a], "val": order[a:b], "test": order[b:]}
    else:
        n_val = n_train_file // 7
        parts = {"train": np.arange(n_train_file - n_val), "val": np.arange(n_train_file - n_val, n_train_file),
                 "test": np.arange(n_train_file, len(series))}
    try:
        values = [float(targets[i]) for i in parts[split]]
    except ValueError as e:
        raise ValueError(f"{root}: a regression target is not a number ({e})") from None
    return _dataset([series[i] for i in parts[split]], [series[i] for i in parts["train"]], values, 1, regress=True,
                    files=files)
