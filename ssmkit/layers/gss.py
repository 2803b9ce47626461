"""GSS: the gated state space block (Mehta, Gupta, Cutkosky, Neyshabur 2022).

    shortcut = x;  x = LayerNorm(x)
    v = GELU(x W_v)            (E -> F = expand·E)
    u = GELU(x W_u)            (E -> H = E / reduce)
    y = DSS(u)                 (H channels, d_state complex modes (large, e.g. 512), Δ fixed to dt (1 in the paper))
    o = ((y W_c) ⊙ v) W_o      (H -> F, then F -> E)
    return o + shortcut

The block carries its own norm and residual, as in the paper; step() runs the DSS recurrence.
"""
from __future__ import annotations

import torch
from torch import nn

from .checks import check_input, check_step_input
from .diagonal import DSS
from .dropout import dropout as make_dropout
from .factory import factory_kwargs
from .registry import register_layer


@register_layer("gss")
class GSS(nn.Module):
    """GSS block. expand F/E (4), reduce E/H (4), d_state of the DSS (512 in the paper), dt: the fixed Δ (None:
    learned, log-uniform in [dt_min, dt_max]), variant of the DSS (exp | softmax)."""

    residual_block = True  # it normalizes its input and adds it back: a backbone stacks it unwrapped

    @factory_kwargs
    def __init__(self, d_model: int, d_state: int = 512, *, expand: int = 4, reduce: int = 4, dt: float | None = 1.0,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, variant: str = "exp", l_max: int | None = None,
                 ssm_lr: float | None = 1e-3, dropout: float = 0.0):
        super().__init__()
        if d_model % reduce:
            raise ValueError(f"reduce: must divide d_model={d_model}, got {reduce}")
        self.H, self.l_max = d_model, l_max
        inner, wide = d_model // reduce, expand * d_model
        self.norm = nn.LayerNorm(d_model)
        self.to_v = nn.Linear(d_model, wide)
        self.to_u = nn.Linear(d_model, inner)
        fixed = dt is not None
        self.ssm = DSS(inner, d_state, variant=variant, l_max=l_max, learn_dt=not fixed, sep_dt=False,
                       dt_min=dt if fixed else dt_min, dt_max=dt if fixed else dt_max, ssm_lr=ssm_lr,
                       activation="id", output="none")
        self.to_c = nn.Linear(inner, wide)
        self.to_out = nn.Linear(wide, d_model)
        self.dropout = make_dropout(dropout)
        self.act = nn.GELU()

    def _gate(self, x: torch.Tensor, ssm):
        h = self.norm(x)
        v = self.act(self.to_v(h))
        y, state = ssm(self.act(self.to_u(h)))
        return x + self.dropout(self.to_out(self.to_c(y) * v)), state

    def forward(self, u: torch.Tensor, state=None, lengths=None):
        """u (B, L, H) -> (y, next state or None). lengths (B,): a suffix-padded batch; the DSS input is zeroed
        beyond each length (its own norm and projections would otherwise make padding nonzero)."""
        check_input(u, self.H, None, self.norm.weight.dtype)  # its DSS bounds the length where its kernel needs it
        return self._gate(u, lambda z: self.ssm(z, state, lengths=lengths))

    def default_state(self, batch_size: int) -> torch.Tensor:
        return self.ssm.default_state(batch_size)

    def step(self, u: torch.Tensor, state: torch.Tensor):
        check_step_input(u, self.H, self.norm.weight.dtype)
        return self._gate(u, lambda z: self.ssm.step(z, state))
