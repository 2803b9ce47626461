"""Sequential handwritten digits: each 8×8 image of the bundled UCI digits read pixel by pixel (L = 64, 1 feature).

digits-pairs is a two-tower task on the same images: two sequences, label 1 when they show the same digit
(half the pairs), drawn within one split, so that a pair model (SequenceModel(pair=True)) reads each separately.

image=True gives channels-last images (n, 8, 8, 1) (l_max (8, 8)), for S4ND, CCNN (dim=2) and other 2-D
models; size resizes them
(bilinear, data/grid.py: size=32 upsamples for a zero-shot test at 4 times the training resolution), as images or as
row-major sequences of size² pixels.

The permuted variant applies one fixed, seeded permutation to the pixel order (like psMNIST), which removes locality
and makes the task about long-range memory. Splits are a fixed seeded partition of the 1,797 images: 1,257 train,
180 val, 360 test. Pixels are scaled to [0, 1].
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .grid import check_size, pixel_grid
from .registry import register_dataset, split_generator

_SPLIT_SIZES = {"train": 1257, "val": 180, "test": 360}


def _load() -> tuple[np.ndarray, np.ndarray]:
    with resources.files("ssmkit.data").joinpath("assets/digits.npz").open("rb") as f:
        data = np.load(f)
        return data["images"], data["labels"]


@register_dataset("digits", "sequential 8x8 handwritten digits (bundled UCI copy), L=64, 10 classes; permute=True "
                            "for the permuted variant; image=True for 8x8 images, size=32 to resize")
def sequential_digits(data_dir: str | None, split: str, permute: bool = False, seed: int = 0, image: bool = False,
                      size: int = 8) -> TensorDataset:
    images, labels = _load()
    order = np.random.default_rng(1234).permutation(len(labels))  # the split is fixed, independent of `seed`
    start = {"train": 0, "val": _SPLIT_SIZES["train"], "test": _SPLIT_SIZES["train"] + _SPLIT_SIZES["val"]}[split]
    idx = order[start:start + _SPLIT_SIZES[split]]
    x = torch.from_numpy(images[idx].astype(np.float32) / 16.0)[..., None]  # (n, 64, 1)
    if permute and (image or size != 8):
        raise ValueError("permute: a permuted pixel order is not an image; use it without image and size")
    if permute:
        x = x[:, torch.from_numpy(np.random.default_rng(seed).permutation(64))]
    x = pixel_grid(x, 8, check_size(size, 8), image)
    ds = TensorDataset(x, torch.from_numpy(labels[idx].astype(np.int64)))
    ds.d_input, ds.n_classes, ds.l_max = 1, 10, (size, size) if image else size * size
    return ds


@register_dataset("digits-pairs", "pairs of sequential digits, label 1 if they show the same digit (two-tower task)")
def digit_pairs(data_dir: str | None, split: str, n_pairs: int | None = None, seed: int = 0) -> TensorDataset:
    base = sequential_digits(data_dir, split)
    x, y = base.tensors
    n = n_pairs or len(y)
    g = split_generator(seed, split)
    first = torch.randint(0, len(y), (n,), generator=g)
    same = torch.rand(n, generator=g) < 0.5
    by_class = [torch.nonzero(y == c)[:, 0] for c in range(10)]
    second = torch.randint(0, len(y), (n,), generator=g)
    for i in torch.nonzero(same)[:, 0].tolist():
        pool = by_class[int(y[first[i]])]
        second[i] = pool[torch.randint(0, len(pool), (1,), generator=g)]
    label = (y[first] == y[second]).long()
    ds = TensorDataset(torch.stack([x[first], x[second]], dim=1), label)  # x: (n, 2, 64, 1)
    ds.d_input, ds.n_classes, ds.l_max, ds.pair = 1, 2, 64, True
    return ds
