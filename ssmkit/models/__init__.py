"""Whole networks built from ssmkit layers."""
from .backbone import SequenceModel
from .generate import generate, sample

__all__ = ["SequenceModel", "generate", "sample"]
