"""Datasets and tasks, by name (see registry.py)."""
from . import digits, images, listops, lra_text, pathfinder, synthetic, text, ts_archive  # noqa: F401  (registers)
from .registry import DATASETS, build, register_dataset

__all__ = ["DATASETS", "build", "register_dataset"]
