"""Datasets and tasks, by name (see registry.py)."""
from . import (digit_video, digits, images, imputation, listops, lra_text, music, pathfinder, sc09,  # noqa: F401
               speech_commands, synthetic, text, ts_archive)  # (each registers its datasets)
from .registry import DATASETS, build, register_dataset, subset, take

__all__ = ["DATASETS", "build", "register_dataset", "subset", "take"]
