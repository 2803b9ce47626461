"""Whole networks built from ssmkit layers."""
from .backbone import SequenceModel
from .generate import generate
from .sampling import Sampler, SamplingOptions
from .sashimi import Sashimi

__all__ = ["SequenceModel", "Sashimi", "generate", "Sampler", "SamplingOptions"]
