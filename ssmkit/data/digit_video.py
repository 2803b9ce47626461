"""Digit videos: a long-range temporal task built from the bundled digits, for video decoders such as ViS4mer.

A video is ``frames`` 8×8 digit images of one split (the fixed splits of data.digits), each cut into patch tokens of
``patch`` × ``patch`` pixels in raster order, as a frozen image encoder would give per-frame patch features:

    x: (n, frames · (8 / patch)², patch²)    the tokens of frame 0, then frame 1, ...
    y = 1  when the first and the last frame show the same digit (drawn for half the videos; a different image of
           that digit), else 0; the frames between are random images (distractors).

The label needs the first and the last frame, T tokens apart, and their order: any order-invariant read-out of the
tokens (mean pooling of per-token features, whatever the features) is at chance, since every frame is a uniformly
drawn image and the pair could sit anywhere in the bag.
"""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from .digits import sequential_digits
from .registry import register_dataset, split_generator

_VIDEOS = {"train": 4000, "val": 500, "test": 1000}


def patch_tokens(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(..., 8, 8) images -> (..., (8 / patch)², patch²) patch tokens in raster order."""
    g = 8 // patch
    tiles = images.unflatten(-2, (g, patch)).unflatten(-1, (g, patch))  # (..., gy, py, gx, px)
    return tiles.transpose(-3, -2).flatten(-4, -3).flatten(-2)


@register_dataset("digits-video", "videos of 8x8 digit frames as patch tokens; label: first and last frame show the "
                                  "same digit (needs order and long-range memory; mean pooling is at chance)")
def digit_videos(data_dir: str | None, split: str, frames: int = 16, patch: int = 4, n_videos: int | None = None,
                 seed: int = 0) -> TensorDataset:
    if not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames: expected an integer >= 2 (a first and a last frame), got {frames!r}")
    if patch not in (1, 2, 4, 8):
        raise ValueError(f"patch: expected a patch side dividing 8 (1, 2, 4 or 8), got {patch!r}")
    x, y = sequential_digits(data_dir, split).tensors
    images = x.view(-1, 8, 8)
    n = n_videos or _VIDEOS[split]
    g = split_generator(seed, split)
    picks = torch.randint(0, len(y), (n, frames), generator=g)
    same = torch.rand(n, generator=g) < 0.5
    by_class = [torch.nonzero(y == c)[:, 0] for c in range(10)]
    for i in range(n):
        first = int(y[picks[i, 0]])
        pool = by_class[first] if same[i] else torch.nonzero(y != first)[:, 0]
        pool = pool[pool != picks[i, 0]]
        picks[i, -1] = pool[torch.randint(0, len(pool), (1,), generator=g)]
    tokens = patch_tokens(images[picks], patch).flatten(1, 2)  # (n, frames · tokens per frame, patch²)
    ds = TensorDataset(tokens, (y[picks[:, 0]] == y[picks[:, -1]]).long())
    ds.d_input, ds.n_classes, ds.l_max = patch * patch, 2, tokens.shape[1]
    return ds
