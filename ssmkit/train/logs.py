"""What a run logs besides its checkpoints and metrics.csv: the training loss of every optimizer step (steps.csv)
and TensorBoard event files when tensorboard is installed.

steps.csv (step, epoch, lr, train_loss) is rewritten atomically after each epoch, before that epoch's checkpoint, and
keeps only the steps up to the epoch's start: a run killed between the two and resumed writes the same rows again.
The loss of a step is the mean over the targets of the micro-batches of rank 0 (each rank sees 1/world of a global
batch; the per-epoch loss in metrics.csv is over all ranks).
"""
from __future__ import annotations

import csv
from pathlib import Path

from .checkpoint import write_text_atomic

STEP_COLUMNS = ("step", "epoch", "lr", "train_loss")


def write_steps(path: Path, rows: list[tuple[int, int, float, float]], after: int) -> None:
    """steps.csv: the rows already there with step <= ``after``, then ``rows`` (step, epoch, lr, train_loss)."""
    kept = []
    if path.is_file():
        with open(path) as f:
            kept = [r for r in csv.DictReader(f) if int(r["step"]) <= after]
    lines = [",".join(STEP_COLUMNS)] + [",".join(r[c] for c in STEP_COLUMNS) for r in kept]
    lines += [f"{step},{epoch},{lr:.6g},{loss:.6g}" for step, epoch, lr, loss in rows]
    write_text_atomic("\n".join(lines) + "\n", path)


def tensorboard(run_dir: Path, rank: int, log=print):
    """A SummaryWriter under run_dir/tensorboard when tensorboard is installed (rank 0), else None with a notice."""
    if rank != 0:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log("TensorBoard is not installed, so the run writes no event files (pip install 'ssmkit[tb]')")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
