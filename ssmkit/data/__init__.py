"""Datasets and tasks, by name (see registry.py)."""
from . import (digits, images, imputation, listops, lra_text, pathfinder, sc09, speech_commands, synthetic,  # noqa: F401
               text, ts_archive)  # (each registers its datasets)
from .registry import DATASETS, build, register_dataset, take

__all__ = ["DATASETS", "build", "register_dataset", "take"]
