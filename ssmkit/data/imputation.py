"""Imputation over any registered dataset of series: each item is a series x (L, K) and an observation mask m (L, K)
(1 observed, 0 missing; masks.py), given as (x, m, m): the mask is the target's (the missing entries are scored) and
the model's second input (the observed values condition it).

`source` names the dataset the series come from (its labels are dropped), e.g. ucr-uea with problem=BasicMotions;
its options follow. `missing` is the mask kind and missing_ratio the share of the L steps it hides: k = round(ratio·L)
steps per channel (rm), or segments of k steps (mnr, bm, forecast). Training masks are drawn anew at every visit,
and `repeat` visits each training series that many times per epoch (small sets such as BasicMotions' 36 series
would otherwise make one optimizer step an epoch); val and test masks are fixed by the seed. With
`shared_mask=True` the series of one training batch share one mask, as the official SSSD training loop draws them
(AI4HealthUOL/SSSD src/train.py: one mask per batch, repeated over its series); by default each series has its own.
The source's normalization (mean, std per channel) is kept, so that an imputation can be read back in the original
units.
"""
from __future__ import annotations

import torch
from torch.utils.data import Dataset, default_collate

from .masks import KINDS, missing_mask
from .registry import SPLITS, build, register_dataset


class MaskedSeries(Dataset):
    """Items (x (L, K), m, m): training masks drawn per visit from torch's generator (each series `repeat` times per
    epoch), others fixed. shared: a batch (collate) takes its first item's training mask for all its series."""

    task = "impute"

    def __init__(self, x: torch.Tensor, missing: str, k: int, masks: torch.Tensor | None, repeat: int = 1,
                 shared: bool = False):
        self.x, self.missing, self.k, self.masks, self.repeat, self.shared = x, missing, k, masks, repeat, shared
        self.l_max, self.d_input = x.shape[1], x.shape[2]
        self.n_classes = self.d_input

    def __len__(self) -> int:
        return len(self.x) * self.repeat

    def __getitem__(self, i):
        i = i % len(self.x)
        m = self.masks[i] if self.masks is not None else missing_mask(self.missing, *self.x.shape[1:], self.k)
        return self.x[i], m, m

    def collate(self, items):
        """The batch (x, m, m) (B, L, K) of a DataLoader; with shared training masks, every series takes the first's."""
        x, m, _ = default_collate(items)
        if self.shared and self.masks is None:
            m = m[:1].expand_as(m).contiguous()
        return x, m, m


@register_dataset("impute", "imputation of another dataset's series under a missingness mask (source=, missing=rm|mnr|"
                            "bm|forecast, missing_ratio=, then the source's options)")
def impute(data_dir: str | None, split: str, source: str = "ucr-uea", missing: str = "rm", missing_ratio: float = 0.5,
           repeat: int = 1, seed: int = 0, shared_mask: bool = False, **source_options) -> MaskedSeries:
    if missing not in KINDS:
        raise ValueError(f"missing: expected one of {KINDS}, got {missing!r}")
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat: expected a positive integer (visits of each training series per epoch), got "
                         f"{repeat!r}")
    if source == "impute":
        raise ValueError("source: name the dataset the series come from, not 'impute' itself")
    base = build(source, data_dir, split, **source_options)
    items = [base[i] for i in range(len(base))]
    x = torch.stack([item[0] for item in items]).float()
    if x.dim() != 3:
        raise ValueError(f"source: {source!r} gives items of shape {tuple(x.shape[1:])}; imputation needs series "
                         f"(L, K)")
    if len(items[0]) > 2 and any(int(item[2]) != x.shape[1] for item in items):
        raise ValueError(f"source: {source!r} has series shorter than {x.shape[1]} steps (padded); imputation needs "
                         f"equal lengths")
    k = round(missing_ratio * x.shape[1])
    if not 1 <= k <= x.shape[1]:
        raise ValueError(f"missing_ratio: expected a share of the {x.shape[1]} steps that hides 1 to all of them, got "
                         f"{missing_ratio}")
    masks = None
    if split != "train":
        g = torch.Generator().manual_seed(seed * 1000 + SPLITS.index(split))
        masks = torch.stack([missing_mask(missing, x.shape[1], x.shape[2], k, g) for _ in range(len(x))])
    out = MaskedSeries(x, missing, k, masks, repeat if split == "train" else 1, shared_mask)
    for key in ("mean", "std"):
        if hasattr(base, key):
            setattr(out, key, getattr(base, key))
    return out
