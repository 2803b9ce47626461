"""Music as 8-bit samples for autoregressive audio models: the SaShiMi paper's Beethoven and YouTubeMix benchmarks.

data_dir holds WAV files (PCM 16-bit, one sample rate, mono or stereo: channels are averaged), as the official
`qautoaudio` loader reads the Beethoven and YouTubeMix releases. Files are taken in natural order (2.wav before
10.wav); the first 88 % (train_fraction) are training data, the next half of the rest validation, the last half test,
so that val and test hold whole pieces never heard in training. Each file is cut into consecutive windows of
sample_len samples (a shorter remainder is dropped); each window is min-max scaled to [−1, 1] by its own range and
coded to 256 levels, linearly (Beethoven) or by μ-law (YouTubeMix; audio.py). y holds the codes, x is y shifted right
by one, starting at the zero level 128. Windows are read from disk when asked for, so a corpus of hours stays on disk.

`ssmkit data music DIR` writes such a folder from scores a package ships (music_render.py).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .audio import CODECS, minmax_scale, read_wav_window, wav_length
from .registry import check_fraction, data_folder, register_dataset
from .sc09 import RATE, shifted_input

RELEASE = "a folder of 16 kHz PCM 16-bit WAV files (the Beethoven / YouTubeMix release layout)"


def natural_key(name: str) -> list:
    """Sort key that orders the digit runs of a name by value: 2.wav before 10.wav."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def split_files(files: list[Path], split: str, train_fraction: float) -> list[Path]:
    """The official split by position: [0, f), [f, (1 + f)/2), [(1 + f)/2, 1) of the naturally sorted files."""
    check_fraction("train_fraction", train_fraction)
    n = len(files)
    edges = {"train": (0.0, train_fraction), "val": (train_fraction, (1 + train_fraction) / 2),
             "test": ((1 + train_fraction) / 2, 1.0)}[split]
    return files[int(edges[0] * n):int(edges[1] * n)]


class QuantizedWindows(Dataset):
    """Items (x, y) of token ids (sample_len,): y a window's 8-bit codes, x = y shifted right by one."""

    d_input, n_classes, vocab_size, task, metric = 1, 256, 256, "lm", "bits"

    def __init__(self, windows: list[tuple[Path, int]], sample_len: int, quantization: str):
        self.windows, self.l_max, self.encode = windows, sample_len, CODECS[quantization][0]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i):
        path, start = self.windows[i]
        samples = torch.from_numpy(read_wav_window(path, start, self.l_max))
        y = self.encode(minmax_scale(samples))
        return shifted_input(y), y


@register_dataset("music", f"music as 8-bit samples (linear or mu-law), next-sample prediction ({RELEASE} in "
                           f"data_dir)", sample_rate=RATE)
def music(data_dir: str | None, split: str, sample_len: int = 128000, quantization: str = "mu-law",
          train_fraction: float = 0.88) -> QuantizedWindows:
    if quantization not in CODECS:
        raise ValueError(f"quantization: expected one of {sorted(CODECS)}, got {quantization!r}")
    if not isinstance(sample_len, int) or sample_len < 2:
        raise ValueError(f"sample_len: expected an integer >= 2, got {sample_len!r}")
    root = data_folder(data_dir, RELEASE)
    files = sorted((p for p in root.iterdir() if p.suffix.lower() == ".wav"), key=lambda p: natural_key(p.name))
    if not files:
        raise FileNotFoundError(f"data_dir: no .wav files in {root} (expected {RELEASE})")
    chosen = split_files(files, split, train_fraction)
    windows = []
    for path in chosen:
        frames, rate = wav_length(path)
        if rate != RATE:
            raise ValueError(f"{path}: sampled at {rate} Hz, expected {RATE} (sox IN -r {RATE} OUT resamples)")
        windows += [(path, start) for start in range(0, frames - sample_len + 1, sample_len)]
    if not windows:
        raise ValueError(f"data_dir: the {split} split of {root} ({len(chosen)} of {len(files)} files at "
                         f"train_fraction {train_fraction}) has no window of sample_len {sample_len} samples")
    return QuantizedWindows(windows, sample_len, quantization)
