"""The run directory: created exclusively inside out_dir, marked by its config.yaml, its metrics.csv the history.

A run directory is ``out_dir/run_name`` (run_name: a relative path with no '..'), or
``out_dir/<dataset>-<layer>-<time>`` by default (image models: s4nd or cnn for the layer). It is created with an
exclusive mkdir, so two runs never share one: an explicit run_name that exists is an error (resume that run with
--resume, or pick another name), and a default name that another run took in the same second gets the suffix -2,
-3, ... config.yaml, written first, marks the folder as an ssmkit run.

metrics.csv is a view of the history kept in the checkpoint: it is written after every epoch and again when a run is
resumed, so a crash between the checkpoint and the CSV leaves nothing missing. normalization.json holds the per-channel
mean and std of a dataset that standardizes its series (the UCR/UEA loader), so that a trained model reads and writes
the original units without its data (`ssmkit impute`).
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path

import yaml

from ..data.registry import output_folder
from .checkpoint import prune, write_text_atomic
from .config import TrainConfig, make_config, read_yaml


def _claim(run_dir: Path) -> bool:
    """mkdir run_dir exclusively (its parents as needed); False if it exists already."""
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir()
    except FileExistsError:
        return False
    except OSError as e:
        raise ValueError(f"run_name: cannot create {run_dir} ({e.strerror or e})") from None
    return True


def new_run_dir(config: TrainConfig) -> Path:
    """Create this run's folder (exclusively) and write its config.yaml; see the module docstring."""
    out = output_folder(config.out_dir)
    if config.run_name is not None:
        run_dir = out / config.run_name
        if not _claim(run_dir):
            what = (f"already holds a run; resume it with --resume {run_dir}" if (run_dir / "config.yaml").is_file()
                    else "already exists and is not an ssmkit run (no config.yaml); ssmkit does not write into it")
            raise ValueError(f"run_name: {run_dir} {what}, or pick another run_name")
    else:
        base = f"{config.dataset}-{config.blocks}-{datetime.now():%Y%m%d-%H%M%S}"
        suffix = 1
        while not _claim(run_dir := out / (base if suffix == 1 else f"{base}-{suffix}")):
            suffix += 1
    write_text_atomic(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False), run_dir / "config.yaml")
    return run_dir


def read_run_config(run_dir: Path) -> TrainConfig:
    """The config a run was trained with; a missing, empty or malformed config.yaml is an error naming it."""
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run directory {run_dir}: not a folder")
    if not path.is_file():
        raise FileNotFoundError(f"run directory {run_dir}: no config.yaml (is it an ssmkit run?)")
    mapping = read_yaml(path)
    if not mapping:
        raise ValueError(f"{path}: empty; it should hold the run's resolved config (ssmkit writes it when the run "
                         f"starts), so the run cannot be resumed or loaded as it was trained")
    return make_config([], base=mapping, source=str(path))


def write_metrics(history: list[dict], path: Path) -> None:
    """metrics.csv: one row per epoch of the history (floats to 6 significant digits)."""
    if not history:
        return
    columns = list(history[0])
    lines = [",".join(columns)] + [",".join(f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c])
                                            for c in columns) for row in history]
    write_text_atomic("\n".join(lines) + "\n", path)


def tidy(run_dir: Path) -> None:
    """At the end of a run: remove unreferenced checkpoints and the temporary files of interrupted writes."""
    prune(run_dir / "checkpoints")
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


NORMALIZATION = "normalization.json"


def normalization_stats(dataset) -> dict:
    """The per-channel ``mean`` and ``std`` (tensors) a dataset standardized its series with, as lists; those of the
    two it has."""
    return {key: getattr(dataset, key).double().flatten().tolist() for key in ("mean", "std") if hasattr(dataset, key)}


def write_normalization(run_dir: Path, dataset) -> None:
    """normalization.json from a dataset's per-channel ``mean`` and ``std``; nothing for other datasets."""
    stats = normalization_stats(dataset)
    if len(stats) == 2:
        write_text_atomic(json.dumps(stats) + "\n", Path(run_dir) / NORMALIZATION)


def read_normalization(run_dir: Path) -> dict | None:
    """{"mean": [...], "std": [...]} of a run's normalization.json, or None when the run has none."""
    path = Path(run_dir) / NORMALIZATION
    if not path.is_file():
        return None
    stats = json.loads(path.read_text())
    if set(stats) != {"mean", "std"} or len(stats["mean"]) != len(stats["std"]):
        raise ValueError(f"{path}: expected per-channel lists 'mean' and 'std' of one length")
    return stats
