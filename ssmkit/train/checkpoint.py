"""Checkpoints that an interrupted write can never corrupt.

Layout of a run's checkpoints/ folder:
    epoch-0007/model.safetensors   the weights (safetensors: no code in the file, loadable anywhere)
    epoch-0007/state.pt            optimizer, scheduler, RNG states, epoch, history (torch, weights_only loadable)
    last, best                     one line each: the name of the epoch folder they point at
An epoch folder is written under a temporary name, its files fsynced, then renamed into place (atomic); the pointer
files are replaced atomically after it; folders no pointer names are then removed. A crash at any moment leaves both
pointers on complete folders. A folder that is corrupt or from another model gets a clear error, not a traceback.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "ssmkit-checkpoint-2"
POINTERS = ("last", "best")


def write_text_atomic(text: str, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(folder: Path, epoch: int, weights: dict, state: dict, best: bool) -> None:
    """Write epoch ``epoch`` (0-based) and move the ``last`` pointer (and ``best`` when asked) onto it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch + 1:04d}"
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / "model.safetensors",
              metadata={"format": FORMAT})
    torch.save({"format": FORMAT, **state}, tmp / "state.pt")
    for f in tmp.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())
    shutil.rmtree(folder / name, ignore_errors=True)  # a leftover of a crash after a rename: rewrite it whole
    os.replace(tmp, folder / name)
    if best:
        write_text_atomic(name + "\n", folder / "best")
    write_text_atomic(name + "\n", folder / "last")
    keep = {(folder / p).read_text().strip() for p in POINTERS if (folder / p).exists()}
    for old in folder.glob("epoch-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)


def _target(folder: Path, which: str) -> Path:
    if which not in POINTERS:
        raise ValueError(f"checkpoint: expected one of {POINTERS}, got {which!r}")
    pointer = Path(folder) / which
    if not pointer.is_file():
        raise FileNotFoundError(f"checkpoint: no {which!r} checkpoint in {folder} (no pointer file {pointer})")
    target = Path(folder) / pointer.read_text().strip()
    if not (target / "model.safetensors").is_file():
        raise ValueError(f"checkpoint {pointer}: points at {target}, which holds no model.safetensors; the run "
                         f"directory is corrupt")
    return target


def read_weights(folder: Path, which: str = "last") -> dict:
    path = _target(folder, which) / "model.safetensors"
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"checkpoint {path}: unreadable ({e}); it is corrupt or not an ssmkit checkpoint") from None


def read_state(folder: Path, which: str = "last") -> dict:
    path = _target(folder, which) / "state.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {path}: unreadable ({type(e).__name__}: {e}); it is corrupt or not an "
                         f"ssmkit checkpoint") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path}: not an ssmkit checkpoint (expected format {FORMAT!r})")
    return state


def load_weights(model: torch.nn.Module, state: dict, path: Path) -> None:
    """load_state_dict with an error that says which checkpoint does not fit which model."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        lines = str(e).splitlines()
        raise ValueError(f"checkpoint {path}: does not fit the model built from the run's config: "
                         f"{lines[1].strip() if len(lines) > 1 else e}") from None
    if missing or unexpected:
        raise ValueError(f"checkpoint {path}: does not fit the model built from the run's config "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
