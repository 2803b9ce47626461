"""Synthetic long-memory tasks, generated from a seed (no files): the adding problem, copying, associative recall.

Adding problem (Hochreiter & Schmidhuber 1997; the S4/LSSL papers' long-memory test): each sequence has 2 features
per step, a value in U(0, 1) and a marker that is 1 at exactly two positions (one in each half) and 0 elsewhere; the
target is the sum of the two marked values. Predicting the mean (1.0) gives an RMSE of about 0.41.

Copying (Arjovsky et al. 2016), the delayed-recall test: tokens 1..n_tokens, blank 0, marker n_tokens + 1. The input
is K = copy_length random tokens s, `delay` blanks, the marker and K - 1 blanks (L = 2K + delay); from the marker on,
the targets are s_1..s_K and every earlier position is unscored (IGNORE). Chance accuracy is 1 / n_tokens; the model
must carry K tokens across `delay` steps.

Associative recall (Ba et al. 2016): n_pairs distinct keys (ids 1..n_keys), each followed by its value (ids
n_keys + 1..n_keys + n_values, drawn with replacement), then one of the keys again (L = 2 n_pairs + 1); the target at
the last position is that key's value, all others are unscored. Chance accuracy is 1 / n_values.
"""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from .registry import IGNORE, register_dataset, split_generator


def _positive(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def _token_task(x: torch.Tensor, y: torch.Tensor, vocab_size: int) -> TensorDataset:
    ds = TensorDataset(x, y)
    ds.d_input, ds.n_classes, ds.l_max, ds.vocab_size, ds.task = vocab_size, vocab_size, x.shape[1], vocab_size, "lm"
    return ds


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


@register_dataset("copying", "copying / delayed recall: reproduce copy_length tokens after a delay of `delay` blanks "
                             "(per-position targets after the marker)")
def copying(data_dir: str | None, split: str, copy_length: int = 10, delay: int = 100, n_tokens: int = 8,
            n_train: int = 4000, n_eval: int = 500, seed: int = 0) -> TensorDataset:
    _positive(copy_length=copy_length, delay=delay, n_tokens=n_tokens, n_train=n_train, n_eval=n_eval)
    n, K = (n_train if split == "train" else n_eval), copy_length
    g = split_generator(seed, split)
    tokens = torch.randint(1, n_tokens + 1, (n, K), generator=g)
    x = torch.zeros(n, 2 * K + delay, dtype=torch.long)
    x[:, :K] = tokens
    x[:, K + delay] = n_tokens + 1
    y = torch.full_like(x, IGNORE)
    y[:, K + delay:] = tokens
    return _token_task(x, y, n_tokens + 2)


@register_dataset("associative-recall", "associative recall: key-value pairs, then a key; predict its value "
                                        "(n_pairs sets the length 2 n_pairs + 1)")
def associative_recall(data_dir: str | None, split: str, n_pairs: int = 16, n_keys: int = 32, n_values: int = 16,
                       n_train: int = 4000, n_eval: int = 500, seed: int = 0) -> TensorDataset:
    _positive(n_pairs=n_pairs, n_keys=n_keys, n_values=n_values, n_train=n_train, n_eval=n_eval)
    if n_pairs > n_keys:
        raise ValueError(f"n_pairs: the keys of a sequence are distinct, so n_pairs <= n_keys={n_keys}; got {n_pairs}")
    n = n_train if split == "train" else n_eval
    g = split_generator(seed, split)
    keys = torch.rand(n, n_keys, generator=g).argsort(-1)[:, :n_pairs] + 1  # distinct keys per sequence
    values = torch.randint(n_keys + 1, n_keys + n_values + 1, (n, n_pairs), generator=g)
    asked = torch.randint(0, n_pairs, (n,), generator=g)
    rows = torch.arange(n)
    x = torch.cat([torch.stack([keys, values], -1).flatten(1), keys[rows, asked, None]], 1)  # k1 v1 .. kP vP q
    y = torch.full_like(x, IGNORE)
    y[:, -1] = values[rows, asked]
    return _token_task(x, y, n_keys + n_values + 1)
