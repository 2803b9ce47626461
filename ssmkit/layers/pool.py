"""SaShiMi's pooling layers (Goel et al. 2022): fold s consecutive steps into channels, and unfold them back causally.

    DownPool   v_j = W_d [u_{js}; u_{js+1}; …; u_{js+s−1}] + b_d        u (B, L, H) -> v (B, L/s, H')
    UpPool     y_{js+r} = (W_u v_{j−1} + b_u)_r,   y_r = 0 for j = 0     v (B, L/s, H') -> y (B, L, H)

The fold concatenates channel-major, feature index h·s + r, as the official rearrange '(l s) h -> l (h s)'. UpPool
shifts by one coarse step, so y_t depends on v_j for j < ⌊t/s⌋ only: with DownPool below it, on u_{<s⌊t/s⌋}, never
on u_t or later. A SaShiMi model is causal because of that shift.

Recurrent and chunked views carry the phase inside the pooling window in the state:
- DownPool's state is the window, the w < s inputs (B, w, H) received since the last emitted v;
- UpPool's state is the pending outputs (B, k, H), 1 <= k <= s, the rest of the expansion of the last v (zeros at
  the start). A chunk of L fine steps takes the first L of [pending; unfold(W_u v + b_u)], and the rest is pending.
Inside a model, w + k = s at every step: UpPool's pending outputs run out exactly when DownPool emits.
"""
from __future__ import annotations

import torch
from torch import nn

from .checks import check_batch_size


def _check_chunk(name: str, x, H: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != H or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a floating-point tensor of shape (B, L, H={H}), got {got}")


def _check_buffer(name: str, state, B: int, H: int, sizes: range) -> None:
    if (not isinstance(state, torch.Tensor) or state.dim() != 3 or state.shape[0] != B or state.shape[2] != H
            or state.shape[1] not in sizes):
        got = tuple(state.shape) if isinstance(state, torch.Tensor) else type(state).__name__
        raise ValueError(f"state: expected the {name} (B={B}, k, H={H}) with k in [{sizes.start}, {sizes.stop - 1}] "
                         f"(see default_state), got {got}")


def _linear(d_input: int, d_output: int, weight_norm: bool) -> nn.Linear:
    """nn.Linear, with ``weight_norm`` reparameterized as W = g ⊙ V / ‖V‖ per output row (torch's weight_norm over
    dim 0, as the official pooling layers' nn.utils.weight_norm; the same W at init, other steps under Adam)."""
    linear = nn.Linear(d_input, d_output)
    return nn.utils.parametrizations.weight_norm(linear) if weight_norm else linear


class DownPool(nn.Module):
    """v_j = W_d [u_{js}; …; u_{js+s−1}] + b_d: d_input·s -> d_output features, s times fewer steps (weight_norm:
    _linear)."""

    def __init__(self, d_input: int, d_output: int, stride: int, weight_norm: bool = False):
        super().__init__()
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride: expected a positive integer, got {stride!r}")
        self.H, self.stride = d_input, stride
        self.linear = _linear(d_input * stride, d_output, weight_norm)

    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None):
        """u (B, L, H) -> (v (B, ⌊(w + L)/s⌋, H'), window after u or None). Without state L must be a multiple of s;
        with it, u continues the window (B, w, H) of the previous chunks."""
        _check_chunk("u", u, self.H)
        s = self.stride
        if state is None and u.shape[1] % s:
            raise ValueError(f"u: length L={u.shape[1]} is not a multiple of the pooling stride {s}")
        if state is not None:
            _check_buffer("window", state, u.shape[0], self.H, range(0, s))
            if u.shape[1] == 0:  # a step that does not reach this level: the window as it is, no copy
                return u.new_empty(u.shape[0], 0, self.linear.out_features), state
            u = torch.cat([state, u], dim=1)
        B, L, H = u.shape
        n = L // s * s
        v = self.linear(u[:, :n].reshape(B, L // s, s, H).transpose(2, 3).reshape(B, L // s, H * s))
        return v, (u[:, n:] if state is not None else None)

    def default_state(self, batch_size: int) -> torch.Tensor:
        """The empty window (B, 0, H)."""
        check_batch_size(batch_size)
        return self.linear.bias.new_zeros(batch_size, 0, self.H)


class UpPool(nn.Module):
    """y_{js+r} = (W_u v_{j−1} + b_u)_r, zero for the first s steps: d_input -> d_output·s features, s times the
    steps (weight_norm: _linear)."""

    def __init__(self, d_input: int, d_output: int, stride: int, weight_norm: bool = False):
        super().__init__()
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride: expected a positive integer, got {stride!r}")
        self.H, self.d_output, self.stride = d_input, d_output, stride
        self.linear = _linear(d_input, d_output * stride, weight_norm)

    def _expand(self, v: torch.Tensor) -> torch.Tensor:
        """(B, Lc, H') -> (B, Lc·s, H): the s outputs of each coarse step, r-th block of the channel-major fold."""
        B, Lc, _ = v.shape
        return self.linear(v).reshape(B, Lc, self.d_output, self.stride).transpose(2, 3).reshape(B, -1, self.d_output)

    def forward(self, v: torch.Tensor, state: torch.Tensor | None = None, length: int | None = None):
        """v (B, Lc, H') -> (y (B, L, H), pending outputs or None).

        Without state: L = Lc·s, shifted by one coarse step (zeros first). With state (pending (B, k, H)): y is the
        first ``length`` of [pending; expansion of v], and the rest (k + Lc·s − length of them, 1..s) is pending."""
        _check_chunk("v", v, self.H)
        s = self.stride
        if state is None:
            y = self._expand(v)
            return torch.cat([y.new_zeros(y.shape[0], s, y.shape[2]), y], dim=1)[:, :y.shape[1]], None
        _check_buffer("pending outputs", state, v.shape[0], self.d_output, range(1, s + 1))
        # no coarse step this time (a recurrent step between this level's): the pending outputs, no copy
        queue = torch.cat([state, self._expand(v)], dim=1) if v.shape[1] else state
        if length is None or not 1 <= queue.shape[1] - length <= s:
            raise ValueError(f"length: with {state.shape[1]} pending outputs and {v.shape[1]} coarse steps of stride "
                             f"{s}, expected a length leaving 1 to {s} pending, got {length}")
        return queue[:, :length], (queue[:, length:] if length else queue)

    def default_state(self, batch_size: int) -> torch.Tensor:
        """s pending zeros (B, s, H): the causal shift's first s outputs."""
        check_batch_size(batch_size)
        return self.linear.bias.new_zeros(batch_size, self.stride, self.d_output)
