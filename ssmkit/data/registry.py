"""Datasets by name: ``ssmkit.data.build(name, data_dir, split, **options)`` returns a torch Dataset of (x, y).

Every registered builder returns a dataset with the attributes the model needs: ``d_input`` (features per step),
``n_classes`` (or d_output), ``l_max`` (longest sequence); token datasets add ``vocab_size`` (inputs are token ids)
and, when padded, ``padding_idx`` (the id that pads); per-step tasks ``task = "lm"`` (y holds a target at every
position; ``metric = "bits"`` scores them by NLL in bits instead of accuracy, for audio), regression
``task = "regress"`` (y float (n, d_output), d_output given as n_classes); the default task is classification.
Two-tower datasets set ``pair = True``: x holds two sequences, (n, 2, L, ...). Padded datasets give (x, y, lengths):
the model reads and pools only the first `length` positions of each sequence; imputation datasets
(``task = "impute"``) give (x, mask, mask): the model reads the mask as its second input, and the task scores the
entries it marks missing. Per-step targets equal to IGNORE are not scored.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..options import check_options, did_you_mean

DATASETS: dict[str, Callable] = {}
SPLITS = ("train", "val", "test")
IGNORE = -100  # a per-position target left out of the loss and the metric (the copying task's input half)


def split_generator(seed: int, split: str) -> torch.Generator:
    """The generator of a generated split: different draws for train, val and test, reproducible from the seed."""
    return torch.Generator().manual_seed(seed * 1000 + SPLITS.index(split))


ATTRIBUTES = ("d_input", "n_classes", "l_max", "vocab_size", "padding_idx", "task", "metric", "pair", "mean", "std",
              "collate")


def take(dataset, n: int, seed: int = 0):
    """A fixed seeded subset of n items (all of them when n is 0 or at least len), with the dataset's attributes."""
    if not n or n >= len(dataset):
        return dataset
    return subset(dataset, torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
                  [:n].sort().values.tolist())


def subset(dataset, indices):
    """dataset's items at ``indices`` (a torch Subset) with the dataset's attributes (ATTRIBUTES: its task, metric,
    collate, ...), which a plain Subset would lose."""
    part = torch.utils.data.Subset(dataset, indices)
    for key in ATTRIBUTES:
        if hasattr(dataset, key):
            setattr(part, key, getattr(dataset, key))
    return part


def check_labels(labels, n_classes: int, where) -> None:
    """Class labels must lie in 0 .. n_classes − 1 (checked at load time, not as an IndexError mid-training)."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)]
        raise ValueError(f"{where}: label {int(bad[0])} is outside 0..{n_classes - 1} ({bad.size} such labels)")


def check_fraction(key: str, value: float) -> None:
    """A share of a set carved out as a split: strictly between 0 and 1, so that both parts have samples."""
    if not 0 < value < 1:
        raise ValueError(f"{key}: expected a fraction strictly between 0 and 1, got {value!r}")


def holdout(n: int, split: str, val_fraction: float, seed: int) -> np.ndarray:
    """Indices of a split carved from a training set of n items: a seeded permutation, whose first
    round(n · val_fraction) are val and the rest train."""
    check_fraction("val_fraction", val_fraction)
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return order[:n_val] if split == "val" else order[n_val:]


def data_folder(data_dir, what: str, inner: str | None = None) -> Path:
    """The folder a loader reads: data_dir, or data_dir/inner when that exists (a release's top folder or the one
    inside it both work). `what` says what the folder holds and where to get it, for the errors when data_dir is
    unset or not a folder."""
    if data_dir is None:
        raise ValueError(f"data_dir: set it to {what}")
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data_dir: {root} is not a folder (expected {what})")
    return root / inner if inner is not None and (root / inner).is_dir() else root


def read_text(path: Path) -> str:
    """A UTF-8 text file's contents; other bytes are an error naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None


def output_folder(out_dir) -> Path:
    """The folder a data generator writes into, created if missing; a path that is a file is an error."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir: {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"out_dir: cannot create {out} ({e.strerror or e})") from None
    return out


def register_dataset(name: str, summary: str, sample_rate: int | None = None) -> Callable[[Callable], Callable]:
    """sample_rate: for datasets of audio samples (token ids = quantized samples), the rate in Hz at which
    `ssmkit generate` writes a generated sequence as a WAV file."""
    def wrap(builder: Callable) -> Callable:
        if name in DATASETS:
            raise ValueError(f"dataset name {name!r} is already registered")
        builder.summary, builder.sample_rate = summary, sample_rate
        DATASETS[name] = builder
        return builder

    return wrap


def build(name: str, data_dir: str | None, split: str, **options):
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown name {name!r}{did_you_mean(name, DATASETS)}; registered: "
                         f"{sorted(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    builder = DATASETS[name]
    options = check_options(builder, options, f"dataset {name!r}", prefix=f"dataset {name!r} option ")
    try:
        inspect.signature(builder).bind(data_dir, split, **options)
    except TypeError as e:  # data_dir or split given again as an option
        raise ValueError(f"dataset {name!r}: {e}; its options are "
                         f"{list(inspect.signature(builder).parameters)[2:]}") from None
    return builder(data_dir, split, **options)
