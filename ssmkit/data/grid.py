"""Images as grids: row-major pixel sequences back to channels-last images, at another size if asked.

Resizing is bilinear with antialiasing, as the S4ND resolution experiments resize (official code: torchvision resize,
BILINEAR, antialias=True); a size above the stored one upsamples (a test at a finer resolution than the training's),
below it downsamples.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def check_size(size, native: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size: expected a positive image side in pixels (stored: {native}), got {size!r}")
    return size


def pixel_grid(x: torch.Tensor, side: int, size: int, image: bool) -> torch.Tensor:
    """x (n, side², C) row-major pixels -> (n, size, size, C) images when ``image``, else (n, size², C) sequences;
    resized (module docstring) when size != side."""
    n, L, C = x.shape
    if L != side * side:
        raise ValueError(f"x: expected {side}×{side} = {side * side} pixels per sample, got {L}")
    grid = x.reshape(n, side, side, C)
    if size != side:
        planes = grid.permute(0, 3, 1, 2)  # (n, C, side, side)
        grid = F.interpolate(planes, size=(size, size), mode="bilinear", align_corners=False,
                             antialias=True).permute(0, 2, 3, 1).contiguous()
    return grid if image else grid.reshape(n, size * size, C)
