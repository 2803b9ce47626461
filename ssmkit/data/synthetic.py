"""Synthetic long-memory tasks, generated from a seed (no files): the adding problem.

Adding problem (Hochreiter & Schmidhuber 1997; the S4/LSSL papers' long-memory test): each sequence has 2 features
per step, a value in U(0, 1) and a marker that is 1 at exactly two positions (one in each half) and 0 elsewhere; the
target is the sum of the two marked values. Predicting the mean (1.0) gives an RMSE of about 0.41.
"""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from .registry import register_dataset, split_generator

@register_dataset("adding", "the adding problem: regress the sum of the two marked values (length and size as options)")
def adding_problem(data_dir: str | None, split: str, length: int = 200, n_train: int = 4000, n_eval: int = 500,
                   seed: int = 0) -> TensorDataset:
    if not isinstance(length, int) or length < 2:
        raise ValueError(f"length: expected an integer >= 2, got {length!r}")
    n = n_train if split == "train" else n_eval
    g = split_generator(seed, split)
    values = torch.rand(n, length, generator=g)
    first = torch.randint(0, length // 2, (n,), generator=g)
    second = torch.randint(length // 2, length, (n,), generator=g)
    marks = torch.zeros(n, length)
    rows = torch.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    x = torch.stack([values, marks], dim=-1)  # (n, L, 2)
    y = (values[rows, first] + values[rows, second])[:, None]  # (n, 1)
    ds = TensorDataset(x, y)
    ds.d_input, ds.n_classes, ds.l_max, ds.task = 2, 1, length, "regress"
    return ds
