"""LRA Pathfinder (32×32, L = 1024) and Path-X (128×128, L = 16384), read from the release's image folders.

data_dir is the folder holding pathfinder{R}/ (lra_release/ of lra_release.gz, or what write_pathfinder wrote), or
pathfinder{R}/ itself. Each difficulty level has imgs/{b}/sample_{i}.png (8-bit grayscale) and metadata/{b}.npy: a
text file, one line per image, "imgs/{b} sample_{i}.png {i} {label} ...". Levels: easy (curv_baseline),
intermediate (curv_contour_length_9), hard (curv_contour_length_14, the one LRA evaluates, for Path-X too).

Images are read on demand (Path-X's 200,000 images would take 3.3 GB in memory) as pixels in row-major order, one
feature, scaled to [-1, 1]. The release holds one empty image file (pathfinder32/curv_baseline/imgs/0/sample_172.png);
empty files are left out when the index is built. Splits: a seeded permutation of the level's images, the last
val_fraction and test_fraction of it for validation and test (the release has no official split).

image=True gives channels-last images (R, R, 1) instead (l_max (R, R)), for S4ND and other 2-D models; size resizes
them bilinearly (data/grid.py), as images or as sequences of size² pixels. A resolution change has two forms here:
size=64 on pathfinder32 upsamples the 32-pixel drawing, resolution=64 reads the generator's own 64-pixel drawing of
the same kind of scene (strokes and gaps scale with R).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .grid import check_size, pixel_grid
from .pathfinder_gen import LEVELS
from .registry import data_folder, read_text, register_dataset


def _level_root(data_dir, resolution: int, level: str) -> Path:
    if level not in LEVELS:
        raise ValueError(f"level: expected one of {sorted(LEVELS)}, got {level!r}")
    make = f"ssmkit data pathfinder OUT --level {level} --resolution {resolution}"
    root = data_folder(data_dir, f"the folder holding pathfinder{resolution}/ (lra_release.gz from github.com/"
                                 f"google-research/long-range-arena, or {make})",
                       inner=f"pathfinder{resolution}")
    folder = root / LEVELS[level][0]
    if not (folder / "metadata").is_dir():
        raise FileNotFoundError(f"data_dir: no {LEVELS[level][0]}/metadata in {root} (expected "
                                f"pathfinder{resolution}/{LEVELS[level][0]}/metadata/*.npy and imgs/, which "
                                f"{make} writes)")
    return folder


def read_index(folder: Path) -> list[tuple[Path, int]]:
    """(image path, label) for every line of the metadata files (numeric order), leaving out empty image files."""
    files = sorted(folder.glob("metadata/*.npy"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
    samples = []
    for meta in files:
        for n, line in enumerate(read_text(meta).splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise ValueError(f"{meta}: line {n} is {line!r}; expected "
                                 f"'imgs/<b> sample_<i>.png <i> <label 0|1> ...'")
            path = folder / fields[0] / fields[1]
            if not path.is_file():
                raise FileNotFoundError(f"{meta}: line {n} names {path}, which does not exist")
            if path.stat().st_size > 0:
                samples.append((path, int(fields[3])))
    if not samples:
        raise ValueError(f"data_dir: the metadata files in {folder / 'metadata'} list no images")
    return samples


class PathfinderImages(Dataset):
    """Items (pixels (R·R, 1) in [-1, 1], label) read from PNG files on demand."""

    def __init__(self, samples: list[tuple[Path, int]], resolution: int, image: bool = False, size: int | None = None):
        self.samples, self.resolution, self.image = samples, resolution, image
        self.size = resolution if size is None else check_size(size, resolution)
        self.d_input, self.n_classes = 1, 2
        self.l_max = (self.size, self.size) if image else self.size * self.size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("L"), dtype=np.float32)
        except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError and "image file is truncated" are OSErrors
            raise ValueError(f"{path}: not a readable PNG image ({e})") from None
        if pixels.shape != (self.resolution, self.resolution):
            raise ValueError(f"{path}: image of {pixels.shape[1]}x{pixels.shape[0]} pixels, expected "
                             f"{self.resolution}x{self.resolution}")
        x = torch.from_numpy(pixels.reshape(-1, 1) / 127.5 - 1.0)
        if self.image or self.size != self.resolution:
            x = pixel_grid(x[None], self.resolution, self.size, self.image)[0]
        return x, torch.tensor(label)


def _pathfinder(data_dir, split, resolution, level, val_fraction, test_fraction, seed, image=False,
                size=None) -> PathfinderImages:
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction, test_fraction: expected shares >= 0 that leave images for training, got "
                         f"{val_fraction} and {test_fraction}")
    samples = read_index(_level_root(data_dir, resolution, level))
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val, n_test = int(len(samples) * val_fraction), int(len(samples) * test_fraction)
    n_train = len(samples) - n_val - n_test
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(samples))}[split]
    return PathfinderImages([samples[i] for i in order[bounds[0]:bounds[1]]], resolution, image, size)


@register_dataset("lra-pathfinder", "LRA Pathfinder: are the two dots connected? 32x32 = 1024 pixels (pathfinder32 "
                                    "folders in data_dir; resolution=64/128/256 for the others; image=True for "
                                    "RxR images, size=64 to resize)")
def lra_pathfinder(data_dir: str | None, split: str, resolution: int = 32, level: str = "hard",
                   val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 42, image: bool = False,
                   size: int | None = None) -> PathfinderImages:
    return _pathfinder(data_dir, split, resolution, level, val_fraction, test_fraction, seed, image, size)


@register_dataset("lra-pathx", "LRA Path-X: Pathfinder at 128x128 = 16384 pixels (pathfinder128 folders in data_dir)")
def lra_pathx(data_dir: str | None, split: str, level: str = "hard", val_fraction: float = 0.1,
              test_fraction: float = 0.1, seed: int = 42) -> PathfinderImages:
    return _pathfinder(data_dir, split, 128, level, val_fraction, test_fraction, seed)
