"""Optimizer parameter groups: SSM parameters (Λ, P, B, Δ) get their own lr and no weight decay (the S4 recipe).

Kernels tag those parameters with ``_optim = {"lr": ..., "weight_decay": 0.0}`` (kernels.base.register_ssm). Of the
rest, biases and normalization weights (1-D tensors) get no weight decay either, as is usual for AdamW.
"""
from __future__ import annotations

from torch import nn


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """Groups for torch.optim: [decayed, not decayed, one group per distinct SSM setting]."""
    decay, no_decay, special = [], [], {}
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        optim = getattr(p, "_optim", None)
        if optim is not None:
            key = tuple(sorted(optim.items()))
            special.setdefault(key, []).append(p)
        elif p.dim() < 2:
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    for key, params in special.items():
        groups.append({"params": params, "lr": lr, "weight_decay": weight_decay, **dict(key)})
    return [g for g in groups if g["params"]]
