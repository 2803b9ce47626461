"""Input checks shared by every layer: a ValueError that names the argument, the expected and the received.

The dtype rule, the same for every layer: the input has the dtype of the layer's parameters, as for torch.nn layers
(under torch.autocast any floating dtype is accepted, and autocast casts per operation). Inside, the SSM math runs
in float32 / complex64 for float32, bfloat16 and float16 layers, and in float64 / complex128 for float64 layers; its
result is cast back to the input's dtype, so that y has the dtype of u.
"""
from __future__ import annotations

import math

import torch

from ..ops.dispatch import recording


def check_token_ids(ids: torch.Tensor, vocab: int, name: str = "x") -> None:
    """ids in [0, vocab). Read on a CPU only: on a GPU reading them would wait for the device at every call; and not
    while torch.export, torch.compile, ONNX or the JIT records the model (ops.dispatch.recording)."""
    if ids.device.type != "cpu" or not ids.numel() or recording():
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab:
        raise ValueError(f"{name}: expected token ids in [0, vocab_size={vocab}), got ids from {low} to {high}")


def check_dtype(u: torch.Tensor, dtype: torch.dtype, name: str = "u", owner: str = "layer") -> None:
    """u's dtype is the layer's (or model's) ``dtype``, unless autocast is on for u's device (module docstring)."""
    if u.dtype != dtype and not torch.is_autocast_enabled(u.device.type):
        raise ValueError(f"{name}: expected dtype {dtype} (the {owner}'s parameters), got {u.dtype}; cast the input "
                         f"({name}.to({dtype})) or the {owner} ({owner}.to({u.dtype})), or run under torch.autocast")


def check_input(u, H: int, l_max: int | None, dtype: torch.dtype) -> None:
    """u must be a floating tensor (B >= 1, L >= 1, H) of the layer's dtype with L <= l_max."""
    if not isinstance(u, torch.Tensor):
        raise ValueError(f"u: expected a tensor of shape (B, L, H={H}), got {type(u).__name__}")
    if not u.is_floating_point():
        raise ValueError(f"u: expected a floating-point dtype, got {u.dtype}")
    if u.dim() != 3 or u.shape[-1] != H:
        raise ValueError(f"u: expected shape (B, L, H={H}), got {tuple(u.shape)}")
    if u.shape[0] < 1:
        raise ValueError("u: expected a batch of B >= 1 sequences, got B=0")
    if u.shape[1] < 1:
        raise ValueError("u: expected a length L >= 1, got L=0")
    if l_max is not None and u.shape[1] > l_max:
        raise ValueError(f"u: length L={u.shape[1]} exceeds l_max={l_max}")
    check_dtype(u, dtype)


def check_step_input(u, H: int, dtype: torch.dtype) -> None:
    if not isinstance(u, torch.Tensor) or u.dim() != 2 or u.shape[-1] != H or not u.is_floating_point():
        got = f"{tuple(u.shape)} {u.dtype}" if isinstance(u, torch.Tensor) else type(u).__name__
        raise ValueError(f"u: expected a floating-point tensor of shape (B, H={H}), got {got}")
    check_dtype(u, dtype)


def check_state(state, expected: tuple, bidirectional: bool) -> None:
    if bidirectional:
        raise ValueError("state: a bidirectional layer has no recurrent view (its kernel reads future inputs); "
                         "call forward(u) without state")
    if not isinstance(state, torch.Tensor) or tuple(state.shape) != expected or not state.is_complex():
        got = f"{tuple(state.shape)} {state.dtype}" if isinstance(state, torch.Tensor) else type(state).__name__
        raise ValueError(f"state: expected a complex tensor of shape {expected} (see default_state), got {got}")


def check_batch_size(batch_size) -> None:
    """default_state's batch_size: an integer >= 1, as forward and step refuse B = 0."""
    if not isinstance(batch_size, (int, torch.SymInt)) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")


def check_cache_room(position: torch.Tensor, L: int, T: int) -> None:
    """A static cache of T slots, ``position`` (1,) of them written, must hold L more positions. The position is read
    only on the CPU: on a GPU that would synchronize (and break a CUDA graph), so there only L > T is caught."""
    end = L + (int(position) if position.device.type == "cpu" else 0)
    if end > T:
        raise ValueError(f"u: position {end} exceeds the cache's T={T} positions (default_state's max_length)")


def check_rate(rate: float) -> None:
    if not (isinstance(rate, (int, float)) and 0 < rate < math.inf):
        raise ValueError(f"rate: expected a positive finite number, got {rate!r}")


def valid_positions(lengths, batch: int, L: int, with_state: bool = False) -> torch.Tensor | None:
    """(B, L) bool, True at the real positions t < lengths[b] of a suffix-padded batch; None when lengths is None.

    lengths: (B,) integers in [1, L], a range read on a CPU only (as token ids, check_token_ids: on a GPU reading
    them would make the host wait for the device in every layer's forward). Padding applies to whole sequences, so it
    cannot be combined with a carried state (the state after a chunk would be the state after its padding)."""
    if lengths is None:
        return None
    if with_state:
        raise ValueError("lengths: a padded batch is a batch of whole sequences; pass lengths without state")
    if (not isinstance(lengths, torch.Tensor) or lengths.shape != (batch,) or lengths.is_floating_point()
            or lengths.is_complex()):
        got = f"{tuple(lengths.shape)} {lengths.dtype}" if isinstance(lengths, torch.Tensor) else type(lengths).__name__
        raise ValueError(f"lengths: expected an integer tensor of shape (B={batch},), got {got}")
    if lengths.device.type == "cpu" and not recording() and bool(((lengths < 1) | (lengths > L)).any()):
        raise ValueError(f"lengths: expected every length in [1, L={L}], got lengths from {int(lengths.min())} to "
                         f"{int(lengths.max())}")
    return torch.arange(L, device=lengths.device)[None] < lengths[:, None]


def mask_padding(u: torch.Tensor, lengths, with_state: bool = False) -> torch.Tensor:
    """u (B, L, H) with the positions beyond each length set to 0, so that no kernel reads padding (a bidirectional
    kernel reads every later position). lengths None: u unchanged."""
    valid = valid_positions(lengths, u.shape[0], u.shape[1], with_state)
    return u if valid is None else u * valid[..., None].to(device=u.device, dtype=u.dtype)
