"""``device=`` and ``dtype=`` for every layer, as torch.nn modules take them, and construction on the meta device.

A layer's initialization is math on real numbers (HiPPO matrices and their eigendecompositions, in float64, with
data-dependent steps), so it cannot run on the meta device. ``factory_kwargs`` runs a layer's __init__ with the CPU
as the default device, then moves the layer to ``device`` (by default torch's default device, so that
``with torch.device("meta"): model = ...`` builds a model without storage) and casts it to ``dtype``. The random
draws of the initialization therefore come from the CPU generator whatever the device, and a layer is the same on
every device for the same seed.
"""
from __future__ import annotations

import functools
import inspect

import torch

from ..options import did_you_mean


def factory_kwargs(init):
    """Decorate an nn.Module __init__ so that it also takes keyword-only ``device`` and ``dtype`` (module docstring);
    its signature (what inspect, the registry and help() show) lists them."""

    @functools.wraps(init)
    def wrapped(self, *args, device: torch.device | str | None = None, dtype: torch.dtype | None = None, **kwargs):
        unknown = [name for name in kwargs if name not in takes] if not open_ended else []
        if unknown:  # as Python's TypeError, with the nearest real option
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}"
                            f"{did_you_mean(unknown[0], takes)}")
        target = torch.device(device) if device is not None else torch.get_default_device()
        if target.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: {target} asked, but this torch sees no CUDA GPU (torch "
                             f"{torch.__version__}{'' if torch.version.cuda else ', a CPU-only build'})")
        with torch.device("cpu"):
            init(self, *args, **kwargs)
        self.to(device=target, dtype=dtype)

    signature = inspect.signature(init)
    takes = [name for name, p in signature.parameters.items() if name != "self"]
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in ("device", "dtype")]
    params = list(signature.parameters.values())
    cut = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    wrapped.__signature__ = signature.replace(parameters=params[:cut] + extra + params[cut:])
    return wrapped
