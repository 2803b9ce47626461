"""The training configuration: one dataclass with every default in one place, overridden by ``key=value`` strings.

Values are parsed as YAML scalars (``lr=3e-3``, ``prenorm=false``, ``data_dir=null``) and checked against the field's
type; dict fields take dotted keys (``layer_options.init=lin``). Unknown keys and wrong types are errors that name the
key and what it accepts, raised before anything is built.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

import yaml


@dataclass
class TrainConfig:
    # data
    dataset: str = "digits"
    data_dir: str | None = None
    dataset_options: dict = field(default_factory=dict)
    # model: SequenceModel with `layer` blocks; d_state and ssm_lr go to every layer, layer_options too
    layer: str = "s4d"
    d_model: int = 64
    n_layers: int = 4
    d_state: int = 64
    layer_options: dict = field(default_factory=dict)
    prenorm: bool = True
    norm: str = "layer"
    dropout: float = 0.1
    pool: str = "mean"
    # optimization: AdamW; the SSM parameters get ssm_lr and no weight decay
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.01
    ssm_lr: float = 0.001
    weight_decay: float = 0.05
    schedule: str = "cosine"
    warmup_epochs: int = 1
    grad_clip: float = 0.0
    precision: str = "fp32"
    seed: int = 0
    device: str = "auto"
    # output
    out_dir: str = "runs"
    run_name: str | None = None

    def __post_init__(self):
        choices = {"schedule": ("cosine", "constant"), "precision": ("fp32", "bf16"), "norm": ("layer", "batch"),
                   "pool": ("mean", "last")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}: expected one of {allowed}, got {getattr(self, key)!r}")
        for key in ("d_model", "n_layers", "d_state", "epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.lr <= 0 or self.ssm_lr < 0:
            raise ValueError(f"lr, ssm_lr: expected lr > 0 and ssm_lr >= 0, got {self.lr}, {self.ssm_lr}")


_HINTS = typing.get_type_hints(TrainConfig)


def _check_type(key: str, value, hint):
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    for t in allowed:
        if t is not type(None) and isinstance(value, t) and not (t is int and isinstance(value, bool)):
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ValueError(f"{key}: expected {names}, got {value!r}")


def apply_overrides(base: dict, overrides: list[str]) -> dict:
    """Apply ``key=value`` strings to a config dict (a copy), checking keys and types."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected key=value")
        value = yaml.safe_load(text) if text else ""
        top, _, sub = key.partition(".")
        if top not in _HINTS:
            raise ValueError(f"unknown config key {top!r}; keys: {sorted(_HINTS)}")
        if sub:
            if _HINTS[top] is not dict:
                raise ValueError(f"{key}: {top!r} is not a dict field, so it takes no '.{sub}'")
            out[top][sub] = value
        else:
            out[top] = _check_type(key, value, _HINTS[top])
    return out


def make_config(overrides: list[str], base: dict | None = None) -> TrainConfig:
    start = base if base is not None else dataclasses.asdict(TrainConfig())
    unknown = set(start) - set(_HINTS)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; keys: {sorted(_HINTS)}")
    return TrainConfig(**apply_overrides(start, overrides))
