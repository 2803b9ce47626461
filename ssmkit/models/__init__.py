"""Whole networks built from ssmkit layers."""
from .backbone import SequenceModel
from .generate import generate
from .image import ImageModel
from .sampling import Sampler, SamplingOptions
from .sashimi import Sashimi
from .sssd import SSSD

__all__ = ["SequenceModel", "Sashimi", "SSSD", "ImageModel", "generate", "Sampler", "SamplingOptions"]
