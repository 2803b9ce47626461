"""Checkpoints that an interrupted write can never corrupt.

Layout of a run's checkpoints/ folder:
    epoch-0007/model.safetensors   the weights (safetensors: no code in the file, loadable anywhere)
    epoch-0007/config.json         the model's constructor arguments: with the weights, a folder that
                                   SequenceModel.from_pretrained (and ssmkit.load) reads without the dataset
    epoch-0007/state.pt            optimizer, scheduler, RNG states, epoch, history (torch, weights_only loadable)
    last, best                     one line each: the name of the epoch folder they point at
An epoch folder is written under a temporary name, its files fsynced, then renamed into place (atomic); the pointer
files are replaced atomically after it; folders no pointer names, and leftovers of interrupted writes, are then
removed. A crash at any moment leaves both pointers on complete folders; a pointer names a folder of its own
checkpoints/ only. A folder that is corrupt or from another model gets a clear error, not a traceback.
"""
from __future__ import annotations

import errno
import os
import re
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


def save_checkpoint(folder: Path, epoch: int, weights: dict, state: dict, best: bool, model_config: str) -> None:
    """Write epoch ``epoch`` (0-based) and move the ``last`` pointer (and ``best`` when asked) onto it.
    model_config: the text of the model's config.json (models.pretrained.config_json).

    A write that fails (a full disk, say) removes its temporary folder and raises an OSError that says so; the
    pointers still name the previous complete checkpoint."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch + 1:04d}"
    tmp = folder / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    try:
        save_file(weights, tmp / "model.safetensors", metadata={"format": FORMAT})
        torch.save({"format": FORMAT, **state}, tmp / "state.pt")
        (tmp / "config.json").write_text(model_config)
        for f in tmp.iterdir():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
    except (OSError, RuntimeError, SafetensorError) as e:  # torch.save on a full disk: RuntimeError "unexpected pos"
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(folder, tmp, e, 3 * sum(v.numel() * v.element_size() for v in weights.values())) from None
    shutil.rmtree(folder / name, ignore_errors=True)  # a leftover of a crash after a rename: rewrite it whole
    os.replace(tmp, folder / name)
    if best:
        write_text_atomic(name + "\n", folder / "best")
    write_text_atomic(name + "\n", folder / "last")
    prune(folder)


def _write_error(folder: Path, tmp: Path, error: Exception, needed: int) -> OSError:
    """The error of a failed checkpoint write: says whether the disk is full and which checkpoint is kept."""
    free = shutil.disk_usage(folder).free
    full = (isinstance(error, OSError) and error.errno == errno.ENOSPC) or free < needed
    last = folder / "last"
    kept = f"the last complete checkpoint, {last.read_text().strip()}, is kept" if last.is_file() else \
        "no earlier checkpoint exists"
    cause = f"the disk is full ({free:,} bytes free, about {needed:,} needed)" if full else \
        f"{type(error).__name__}: {error}"
    return OSError(errno.ENOSPC if full else errno.EIO, f"checkpoint: writing {tmp.name} failed: {cause}; {kept}")


def prune(folder: Path) -> None:
    """Remove the epoch folders no pointer names and the temporary leftovers of interrupted writes."""
    folder = Path(folder)
    keep = {(folder / p).read_text().strip() for p in POINTERS if (folder / p).is_file()}
    for old in folder.glob("epoch-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in folder.glob(".*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def checkpoint_folder(folder: Path, which: str) -> Path:
    """The epoch folder that the pointer ``which`` (last | best) of a run's checkpoints/ names."""
    if which not in POINTERS:
        raise ValueError(f"checkpoint: expected one of {POINTERS}, got {which!r}")
    pointer = Path(folder) / which
    if not pointer.is_file():
        raise FileNotFoundError(f"checkpoint: no {which!r} checkpoint in {folder} (no pointer file {pointer})")
    name = pointer.read_text().strip()
    if not re.fullmatch(r"epoch-\d+", name):
        raise ValueError(f"checkpoint {pointer}: names {name[:80]!r}, expected an epoch folder of this run such as "
                         f"epoch-0003; the run directory is corrupt")
    target = Path(folder) / name
    if not (target / "model.safetensors").is_file():
        raise ValueError(f"checkpoint {pointer}: points at {target}, which holds no model.safetensors; the run "
                         f"directory is corrupt")
    return target


def read_weights(folder: Path, which: str = "last") -> dict:
    path = checkpoint_folder(folder, which) / "model.safetensors"
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"checkpoint {path}: unreadable ({e}); it is corrupt or not an ssmkit checkpoint") from None


def read_state(folder: Path, which: str = "last") -> dict:
    path = checkpoint_folder(folder, which) / "state.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {path}: unreadable ({type(e).__name__}: {e}); it is corrupt or not an "
                         f"ssmkit checkpoint") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path}: not an ssmkit checkpoint (expected format {FORMAT!r})")
    return state
