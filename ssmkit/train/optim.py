"""Optimizer parameter groups: SSM parameters (Λ, P, B, Δ) get their own lr and no weight decay (the S4 recipe).

Kernels record those parameters' settings with kernels.base.set_optim (register_ssm does), as SGConv does for its
kernel lr. Of the rest, biases, normalization weights (the 1-D tensors) and token embeddings get no weight decay
either, as the official S4 trainer groups them (state-spaces/s4 src/utils/optim_groups.py add_optimizer_hooks: biases,
norm layers and nn.Embedding). Those hooks are applied to the backbone only (train.py: add_optimizer_hooks(self.model)),
so the task's encoder and decoder (a token embedding, the encoder's and decoder's biases) are decayed there:
decay_heads=True does so for the submodules a model names in ``head_modules`` (SequenceModel, ImageModel: encoder and
decoder). decay_all=True decays every parameter without its own setting, as fairseq's Adam does for Mega and S5's
optax "regular" group.
"""
from __future__ import annotations

import torch
from torch import nn


def optim_settings(model: nn.Module) -> dict[str, dict]:
    """{parameter name: its own optimizer settings} for the parameters of ``model`` that have them (set_optim)."""
    return {f"{prefix}.{name}" if prefix else name: optim for prefix, module in model.named_modules()
            for name, optim in getattr(module, "_optim_settings", {}).items() if name in module._parameters}


def param_groups(model: nn.Module, lr: float, weight_decay: float, decay_all: bool = False,
                 decay_heads: bool = False) -> list[dict]:
    """Groups for torch.optim: [decayed, not decayed, one group per distinct SSM setting] (module docstring)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected an nn.Module (the model or layer whose parameters to group), got "
                         f"{type(model).__name__}")
    decay, no_decay, special = [], [], {}
    settings = optim_settings(model)
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    heads = set()
    if decay_heads:  # by identity: under torch.compile or DDP the names carry a prefix
        inner = getattr(model, "_orig_mod", model)
        inner = getattr(inner, "module", inner)
        if not getattr(inner, "head_modules", ()):
            raise ValueError(f"weight_decay_heads: {type(inner).__name__} names no encoder or decoder outside its "
                             f"backbone (head_modules); SequenceModel and ImageModel do")
        heads = {id(p) for m in inner.head_modules for p in getattr(inner, m).parameters()}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        optim = settings.get(name)
        if optim is not None:
            key = tuple(sorted(optim.items()))
            special.setdefault(key, []).append(p)
        elif not decay_all and id(p) not in heads and (p.dim() < 2 or id(p) in embeddings):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    for key, params in special.items():
        groups.append({"params": params, "lr": lr, "weight_decay": weight_decay, **dict(key)})
    return [g for g in groups if g["params"]]


def adamw(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999),
          decay_all: bool = False, decay_heads: bool = False) -> torch.optim.AdamW:
    """AdamW over param_groups; on a GPU its fused implementation (one kernel per group and dtype instead of the
    multi-tensor one's several per step: about 1 ms per step for a 6-layer LRA model on an H200)."""
    groups = param_groups(model, lr, weight_decay, decay_all, decay_heads)
    fused = all(p.is_cuda and p.is_floating_point() for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, betas=tuple(betas), fused=fused or None)
