"""Input checks shared by every layer: a ValueError that names the argument, the expected and the received."""
from __future__ import annotations

import torch


def check_input(u, H: int, l_max: int | None) -> None:
    """u must be a floating tensor (B, L >= 1, H) with L <= l_max."""
    if not isinstance(u, torch.Tensor):
        raise ValueError(f"u: expected a tensor of shape (B, L, H={H}), got {type(u).__name__}")
    if not u.is_floating_point():
        raise ValueError(f"u: expected a floating-point dtype, got {u.dtype}")
    if u.dim() != 3 or u.shape[-1] != H:
        raise ValueError(f"u: expected shape (B, L, H={H}), got {tuple(u.shape)}")
    if u.shape[1] < 1:
        raise ValueError("u: expected a length L >= 1, got L=0")
    if l_max is not None and u.shape[1] > l_max:
        raise ValueError(f"u: length L={u.shape[1]} exceeds l_max={l_max}")


def check_step_input(u, H: int) -> None:
    if not isinstance(u, torch.Tensor) or u.dim() != 2 or u.shape[-1] != H or not u.is_floating_point():
        got = f"{tuple(u.shape)} {u.dtype}" if isinstance(u, torch.Tensor) else type(u).__name__
        raise ValueError(f"u: expected a floating-point tensor of shape (B, H={H}), got {got}")


def check_state(state, expected: tuple, bidirectional: bool) -> None:
    if bidirectional:
        raise ValueError("state: a bidirectional layer has no recurrent view (its kernel reads future inputs); "
                         "call forward(u) without state")
    if not isinstance(state, torch.Tensor) or tuple(state.shape) != expected or not state.is_complex():
        got = f"{tuple(state.shape)} {state.dtype}" if isinstance(state, torch.Tensor) else type(state).__name__
        raise ValueError(f"state: expected a complex tensor of shape {expected} (see default_state), got {got}")


def check_rate(rate: float) -> None:
    if not rate > 0:
        raise ValueError(f"rate: expected a positive number, got {rate}")
