"""A Pathfinder-style generator (after Linsley et al. 2018, the LRA Pathfinder / Path-X task), written from the task's
description: is there a path between the two marked points?

Each image (R×R, R in 32/64/128/256) holds two long contours and short distractors on a black canvas. A contour is a
chain of `n_paddles` dashes ("paddles") of length 2s with gaps of s, s = R/32 pixels; the heading turns by a uniform
angle in ±max_turn between paddles, so the contour is a smooth dashed curve. Distractors are chains of 1-3 paddles.
Strokes keep a margin of s pixels from one another (rejection sampling), so contours never touch. Two markers (disks
of radius 1.5 s) sit at path ends: positive (label 1) at both ends of one contour, negative (0) at one end of each
contour, so both classes show the same number of contours, paddles and markers and differ only in connectivity.

Difficulty, as the LRA levels: easy (curv_baseline) 6 paddles, intermediate (curv_contour_length_9) 9, hard
(curv_contour_length_14) 14.

write_pathfinder writes the LRA release layout: OUT/pathfinder{R}/{level folder}/imgs/{b}/sample_{i}.png (8-bit
grayscale) and metadata/{b}.npy — despite the name, a text file with one line per image:
"imgs/{b} sample_{i}.png {i} {label} {n_paddles}". The loader (pathfinder.py) reads fields 0, 1 and 3.
"""
from __future__ import annotations

import contextlib
import functools
import math
import multiprocessing
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..progress import progress
from .registry import output_folder

LEVELS = {"easy": ("curv_baseline", 6), "intermediate": ("curv_contour_length_9", 9),
          "hard": ("curv_contour_length_14", 14)}
RESOLUTIONS = (32, 64, 128, 256)


@functools.lru_cache(maxsize=None)
def _disk(radius: float) -> np.ndarray:
    """The integer offsets (row, col) within `radius` of the origin."""
    r = int(math.ceil(radius))
    offsets = np.stack(np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij"), -1).reshape(-1, 2)
    return offsets[np.hypot(offsets[:, 0], offsets[:, 1]) <= radius]


class _Canvas:
    """An R×R image and a mask of the pixels new strokes must keep away from (the strokes so far, dilated by the
    margin)."""

    def __init__(self, size: int, margin: float):
        self.size, self.margin = size, margin
        self.image = np.zeros((size, size), dtype=np.uint8)
        self.taken = np.zeros((size, size), dtype=bool)

    def pixels(self, points: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """The pixels within `radius` of any of `points` (P, 2) (row, col), clipped to the canvas."""
        cells = (np.floor(points)[:, None, :].astype(np.int64) + _disk(radius)[None]).reshape(-1, 2)
        cells = cells[((cells >= 0) & (cells < self.size)).all(1)]
        return cells[:, 0], cells[:, 1]

    def free(self, points: np.ndarray, also: np.ndarray | None = None) -> bool:
        """Whether points lie inside the canvas, off the taken pixels (and off the mask `also`)."""
        if not ((points >= 0.5) & (points < self.size - 0.5)).all():
            return False
        cells = self.pixels(points, 0.5)
        return not self.taken[cells].any() and (also is None or not also[cells].any())

    def draw(self, points: np.ndarray, radius: float, mask: np.ndarray | None = None) -> None:
        """Paint points with the given stroke radius; mark the margin around them in `mask` (default: taken)."""
        self.image[self.pixels(points, radius)] = 255
        (self.taken if mask is None else mask)[self.pixels(points, radius + self.margin)] = True


def _grow_chain(rng, canvas: _Canvas, n_paddles: int, scale: float, max_turn: float, turns: int = 16):
    """Grow a dashed curve paddle by paddle, trying `turns` headings for each (the j-th try turns by up to
    max_turn·(1 + j/4), so a curve bends away from an edge or a stroke in its way); returns its paddles (each (P, 2)
    points) or None when it got stuck. A paddle keeps the margin from other strokes and from its own chain except
    the paddle just before it."""
    steps = np.linspace(0.0, 2 * scale, max(3, int(8 * scale)))
    point = rng.uniform(0.1, 0.9, size=2) * canvas.size
    heading = rng.uniform(0, 2 * math.pi)
    own, previous, paddles = np.zeros_like(canvas.taken), None, []
    for k in range(n_paddles):
        for j in range(turns):
            h = heading + (rng.uniform(-1, 1) * max_turn * (1 + j / 4) if k else 0.0)
            direction = np.array([math.sin(h), math.cos(h)])
            paddle = point + steps[:, None] * direction
            if canvas.free(paddle, own):
                break
            if not k:
                heading = rng.uniform(0, 2 * math.pi)
        else:
            return None
        if previous is not None:
            own[canvas.pixels(previous, 0.5 + canvas.margin)] = True
        paddles.append(paddle)
        previous, heading, point = paddle, h, point + 3 * scale * direction  # the paddle (2s) and the gap (s)
    return paddles


def _place_chain(rng, canvas: _Canvas, n_paddles: int, scale: float, max_turn: float, tries: int = 100):
    """Draw a chain where it fits; returns its points (P, 2) in order, or None when no try fitted."""
    for _ in range(tries):
        paddles = _grow_chain(rng, canvas, n_paddles, scale, max_turn)
        if paddles is not None:
            for paddle in paddles:
                canvas.draw(paddle, radius=max(0.5, scale / 4))
            return np.concatenate(paddles)
    return None


class PathfinderSample(NamedTuple):
    image: np.ndarray  # (size, size) uint8, 0 or 255
    contours: list[np.ndarray]  # the two long contours, each (points, 2) (row, col) from one end to the other
    markers: list[np.ndarray]  # the two marker centers (row, col), each an end of a contour


def pathfinder_image(rng: np.random.Generator, size: int = 32, n_paddles: int = 14, positive: bool = True,
                     n_distractors: int | None = None, max_turn: float = math.pi / 6,
                     tries: int = 50) -> PathfinderSample:
    """One image and how it was drawn; see the module docstring."""
    if size < 16:
        raise ValueError(f"size: expected at least 16 pixels, got {size}")
    scale = size / 32
    n_distractors = (size // 8) if n_distractors is None else n_distractors
    for _ in range(tries):
        canvas = _Canvas(size, margin=scale)
        contours = [_place_chain(rng, canvas, n_paddles, scale, max_turn) for _ in range(2)]
        if any(c is None for c in contours):
            continue
        for _ in range(n_distractors):
            _place_chain(rng, canvas, int(rng.integers(1, 4)), scale, max_turn, tries=20)
        ends = [(c[0], c[-1]) for c in contours]
        markers = list(ends[0]) if positive else [ends[0][int(rng.integers(2))], ends[1][int(rng.integers(2))]]
        for marker in markers:
            canvas.draw(marker[None], radius=1.5 * scale)
        return PathfinderSample(canvas.image, contours, markers)
    raise RuntimeError(f"pathfinder_image: two contours of {n_paddles} paddles did not fit a {size}x{size} canvas "
                       f"in {tries} tries; use fewer paddles or a larger size")


def _write_folder(root: Path, b: int, indices: range, labels: np.ndarray, resolution: int, n_paddles: int,
                  seed: int) -> None:
    """Folder b: its images and its metadata file, from a generator of its own (folders are independent)."""
    rng = np.random.default_rng([seed, b])
    (root / "imgs" / str(b)).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in indices:
        image = pathfinder_image(rng, resolution, n_paddles, positive=bool(labels[i])).image
        Image.fromarray(image, mode="L").save(root / "imgs" / str(b) / f"sample_{i}.png")
        lines.append(f"imgs/{b} sample_{i}.png {i} {labels[i]} {n_paddles}\n")
    (root / "metadata" / f"{b}.npy").write_text("".join(lines))


def _write_job(job: tuple) -> None:
    _write_folder(*job)


def write_pathfinder(out_dir: str | Path, n_images: int, resolution: int = 32, level: str = "hard", seed: int = 0,
                     per_folder: int = 1000, workers: int = 1) -> Path:
    """Write n_images (half positive, in random order) in the LRA layout, folders in `workers` processes; returns
    the level folder. The images depend on (seed, folder) only, not on workers."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution: expected one of {RESOLUTIONS}, got {resolution!r}")
    if level not in LEVELS:
        raise ValueError(f"level: expected one of {sorted(LEVELS)}, got {level!r}")
    for key, value in (("n_images", n_images), ("per_folder", per_folder), ("workers", workers)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key}: expected a positive integer, got {value!r}")
    folder, n_paddles = LEVELS[level]
    root = output_folder(out_dir) / f"pathfinder{resolution}" / folder
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    labels = np.random.default_rng(seed).permutation(np.arange(n_images) % 2)
    jobs = [(root, b, range(b * per_folder, min(n_images, (b + 1) * per_folder)), labels, resolution, n_paddles, seed)
            for b in range(math.ceil(n_images / per_folder))]
    with multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
        done = pool.imap_unordered(_write_job, jobs) if pool else map(_write_job, jobs)
        for _ in progress(done, f"writing pathfinder{resolution} folders", total=len(jobs), leave=True):
            pass
    return root
