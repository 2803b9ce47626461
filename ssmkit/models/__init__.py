"""Whole networks built from ssmkit layers."""
from .backbone import SequenceModel
from .ccnn import CCNN
from .generate import generate
from .image import ImageModel
from .sampling import Sampler, SamplingOptions
from .sashimi import Sashimi
from .sssd import SSSD
from .vis4mer import ViS4mer, span_scores

__all__ = ["SequenceModel", "Sashimi", "SSSD", "ImageModel", "ViS4mer", "CCNN", "generate", "span_scores", "Sampler",
           "SamplingOptions"]
