"""Whole networks built from ssmkit layers."""
from .backbone import SequenceModel
from .generate import generate
from .sampling import Sampler, SamplingOptions

__all__ = ["SequenceModel", "generate", "Sampler", "SamplingOptions"]
