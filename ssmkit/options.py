"""Option values checked against their type annotations: one rule for config keys and dataset options.

A value passes when it is an instance of one of the annotation's types (``int | None``: an int or None); an int is
accepted for a float (and becomes one), and so is text that reads as a float (YAML 1.1 parses ``3e-3``, without a dot,
as a string); a bool is never an int. Anything else is a ValueError naming the key, the
types it accepts and the value received, so that ``permute=maybe`` or ``max_length=abc`` fails before anything runs.
"""
from __future__ import annotations

import typing


def check_type(key: str, value, hint):
    """value, checked against ``hint`` (a type or a union of types); an int for a float is returned as a float."""
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if float in allowed and str not in allowed and isinstance(value, str):
        try:  # YAML 1.1 reads 3e-3 (no dot) as text; as a float it is what was meant
            return float(value)
        except ValueError:
            pass
    for t in allowed:
        if t is not type(None) and isinstance(value, t) and not (t is int and isinstance(value, bool)):
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ValueError(f"{key}: expected {names}, got {value!r}")
