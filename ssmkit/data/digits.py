"""Sequential handwritten digits: each 8×8 image of the bundled UCI digits read pixel by pixel (L = 64, 1 feature).

The permuted variant applies one fixed, seeded permutation to the pixel order (like psMNIST), which removes locality
and makes the task about long-range memory. Splits are a fixed seeded partition of the 1,797 images: 1,257 train,
180 val, 360 test. Pixels are scaled to [0, 1].
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .registry import register_dataset

_SPLIT_SIZES = {"train": 1257, "val": 180, "test": 360}


def _load() -> tuple[np.ndarray, np.ndarray]:
    with resources.files("ssmkit.data").joinpath("assets/digits.npz").open("rb") as f:
        data = np.load(f)
        return data["images"], data["labels"]


@register_dataset("digits", "sequential 8x8 handwritten digits (bundled UCI copy), L=64, 10 classes; permute=True "
                            "for the permuted variant")
def sequential_digits(data_dir: str | None, split: str, permute: bool = False, seed: int = 0) -> TensorDataset:
    images, labels = _load()
    order = np.random.default_rng(1234).permutation(len(labels))  # the split is fixed, independent of `seed`
    start = {"train": 0, "val": _SPLIT_SIZES["train"], "test": _SPLIT_SIZES["train"] + _SPLIT_SIZES["val"]}[split]
    idx = order[start:start + _SPLIT_SIZES[split]]
    x = torch.from_numpy(images[idx].astype(np.float32) / 16.0)[..., None]  # (n, 64, 1)
    if permute:
        x = x[:, torch.from_numpy(np.random.default_rng(seed).permutation(64))]
    ds = TensorDataset(x, torch.from_numpy(labels[idx].astype(np.int64)))
    ds.d_input, ds.n_classes, ds.l_max = 1, 10, 64
    return ds
