"""Checkpoints written atomically (temporary file, fsync, rename): a killed run never leaves a half-written file
under a checkpoint's name, and a file that is corrupt or from another model gets a clear error, not a traceback."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

FORMAT = "ssmkit-checkpoint-1"


def save_atomic(obj: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **obj}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {path}: unreadable ({type(e).__name__}: {e}); it is corrupt or not an "
                         f"ssmkit checkpoint") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path}: not an ssmkit checkpoint (expected format {FORMAT!r})")
    return obj


def load_weights(model: torch.nn.Module, state: dict, path: Path) -> None:
    """load_state_dict with an error that says which checkpoint does not fit which model."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise ValueError(f"checkpoint {path}: does not fit the model built from the run's config: "
                         f"{str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e}") from None
    if missing or unexpected:
        raise ValueError(f"checkpoint {path}: does not fit the model built from the run's config "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
