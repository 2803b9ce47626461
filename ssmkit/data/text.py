"""Byte-level language modeling on any folder of text files.

The files matching ``pattern`` under data_dir (sorted by path) are concatenated as bytes, separated by a newline, and
cut into train / val / test at 90 % / 95 % of the stream. Samples are non-overlapping windows of seq_len + 1 bytes:
x = window[:-1], y = window[1:] (the next byte at each position). Vocabulary: the 256 byte values.
"""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from .registry import data_folder, register_dataset

_SPLITS = {"train": (0.0, 0.9), "val": (0.9, 0.95), "test": (0.95, 1.0)}


@register_dataset("text", "byte-level language modeling on a folder of text files (data_dir, pattern='**/*.txt')")
def byte_text(data_dir: str | None, split: str, seq_len: int = 256, pattern: str = "**/*.txt") -> TensorDataset:
    root = data_folder(data_dir, "a folder of text files (the text dataset reads every file matching pattern; "
                                 "set data_dir=PATH)")
    files = sorted(p for p in root.glob(pattern) if p.is_file())
    if not files:
        raise FileNotFoundError(f"data_dir: no file under {root} matches pattern {pattern!r}")
    if not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len: expected a positive integer, got {seq_len!r}")
    stream = b"\n".join(p.read_bytes() for p in files)
    lo, hi = (int(f * len(stream)) for f in _SPLITS[split])
    part = torch.frombuffer(bytearray(stream[lo:hi]), dtype=torch.uint8).long()
    n = (len(part) - 1) // seq_len
    if n < 1:
        raise ValueError(f"data_dir: the {split} split of {root} has {len(part)} bytes, fewer than seq_len + 1 = "
                         f"{seq_len + 1}; add text or lower seq_len")
    x = part[:n * seq_len].view(n, seq_len)
    y = part[1:n * seq_len + 1].view(n, seq_len)
    ds = TensorDataset(x, y)
    ds.d_input, ds.n_classes, ds.l_max, ds.vocab_size, ds.task = 256, 256, seq_len, 256, "lm"
    return ds
