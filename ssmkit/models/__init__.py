"""Whole networks built from ssmkit layers."""
from .backbone import SequenceModel
from .generate import generate
from .sampling import Sampler, SamplingOptions
from .sashimi import Sashimi
from .sssd import SSSD

__all__ = ["SequenceModel", "Sashimi", "SSSD", "generate", "Sampler", "SamplingOptions"]
