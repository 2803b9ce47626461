"""Layers by name, so that configs and the command line can name them: ``ssmkit.layer("s4d", d_model=64)``."""
from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from ..options import check_names, did_you_mean, keyword_names

LAYERS: dict[str, type[nn.Module]] = {}


def register_layer(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        if name in LAYERS:
            raise ValueError(f"layer name {name!r} is already registered to {LAYERS[name].__name__}")
        LAYERS[name] = cls
        return cls

    return wrap


def with_defaults(name: str, defaults: dict, options: dict | None) -> dict:
    """options over those of ``defaults`` the layer ``name`` takes (the others left out): how a model hands its own
    settings (its dropout and norm, an official code's inits) to a layer whose options the user may have set."""
    takes = inspect.signature(LAYERS[name]).parameters if name in LAYERS else {}
    return {**{k: v for k, v in defaults.items() if k in takes}, **(options or {})}


def layer(name: str, **options) -> nn.Module:
    """Build the layer registered as ``name``; unknown options are errors (the layer's signature is strict)."""
    if name not in LAYERS:
        raise ValueError(f"layer: unknown name {name!r}{did_you_mean(name, LAYERS)}; registered: {sorted(LAYERS)}")
    cls = LAYERS[name]
    check_names(cls, options, f"layer {name!r}")
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as e:  # a required option missing
        raise ValueError(f"layer {name!r}: {e}; its options are {keyword_names(cls)}") from None
    return cls(**options)
