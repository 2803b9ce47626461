"""Whole networks built from ssmkit layers."""
from .backbone import SequenceModel

__all__ = ["SequenceModel"]
