"""Options as configs and the command line give them: YAML scalars read with numbers as a user writes them, names
checked against a signature (with the nearest real name for a typo), values against the parameter's annotation.

YAML 1.1, which PyYAML implements, reads ``3e-3`` and ``1e4`` as strings (its floats need a dot and a signed
exponent); ``load_yaml`` reads them as the floats everyone means, in experiment files, run configs and key=value
overrides alike. A value passes its annotation when it is an instance of one of its types (``int | None``: an int or
None); an int is accepted for a float (and becomes one), and so is text that reads as a float; a bool is never an int.
Anything else is a ValueError naming the key, the types it accepts and the value received, so that ``permute=maybe``
or ``max_length=abc`` fails before anything runs.
"""
from __future__ import annotations

import difflib
import inspect
import re
import types
import typing

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader plus floats in exponent notation without a dot or an exponent sign: 3e-3, 1e4, 1.5e3, .5e-3."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def load_yaml(text: str):
    """yaml.safe_load, with floats such as 3e-3 read as floats."""
    return yaml.load(text, Loader=_Loader)


def did_you_mean(word: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest of ``choices``, or '' when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _plain_types(hint) -> tuple | None:
    """The classes a value may be an instance of, or None when the hint is not a union of plain classes."""
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return allowed if all(isinstance(t, type) and not typing.get_args(t) for t in allowed) else None


def check_type(key: str, value, hint):
    """value, checked against ``hint`` (a type or a union of types); an int or float-like text for a float is
    returned as a float. Hints that are not plain classes (or unions of them) are not checked."""
    allowed = _plain_types(hint)
    if allowed is None:
        return value
    if value is None and type(None) in allowed:
        return None
    if float in allowed and int not in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if float in allowed and str not in allowed and isinstance(value, str):
        try:  # text such as '3e-3' from a YAML 1.1 reader elsewhere: as a float it is what was meant
            return float(value)
        except ValueError:
            pass
    for t in allowed:
        if t is not type(None) and isinstance(value, t) and not (t in (int, float) and isinstance(value, bool)):
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ValueError(f"{key}: expected {names}, got {value!r}")


def keyword_names(fn) -> list[str]:
    """The parameters of ``fn`` that can be passed by keyword."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [n for n, p in inspect.signature(fn).parameters.items() if p.kind in kinds]


def accepted_names(fn) -> list[str] | None:
    """The keyword names ``fn`` takes, or None when it takes any (a **kwargs parameter)."""
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
        return None
    return keyword_names(fn)


def check_names(fn, options: dict, what: str) -> None:
    """A ValueError for the first key of ``options`` that ``fn`` does not take, with the nearest name it does."""
    names = accepted_names(fn)
    if names is None:
        return
    for key in options:
        if key not in names:
            raise ValueError(f"{what}: unknown option {key!r}{did_you_mean(key, names)}; its options are {names}")


def check_options(fn, options: dict, what: str, prefix: str | None = None) -> dict:
    """``options`` checked against the signature of ``fn`` (a class: its __init__): names (errors name ``what``),
    then each value against its annotation (errors name ``prefix + key``, by default ``what.key``). Returns the
    options with ints widened where floats are expected."""
    check_names(fn, options, what)
    try:
        hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    except Exception:  # annotations that do not resolve (a user's own layer): names are checked, values are not
        hints = {}
    prefix = f"{what}." if prefix is None else prefix
    return {k: check_type(f"{prefix}{k}", v, hints[k]) if k in hints else v for k, v in options.items()}
