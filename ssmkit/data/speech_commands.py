"""Speech Commands v0.02 (Warden 2018): one-second spoken words, 10 or 35 classes, raw 16 kHz or MFCC.

data_dir is the extracted speech_commands_v0.02.tar.gz: one folder per word of 16-bit mono 16 kHz WAVs
(<word>/<speaker>_nohash_<n>.wav; _background_noise_/ is not used), and validation_list.txt and testing_list.txt
naming the val and test files as <word>/<file>.wav; every other file of a used word is training data.

classes: 35 (every word, the S4 paper's SC35) or 10 (yes, no, up, down, left, right, on, off, stop, go).
features: raw (L = 16000 samples, 1 feature; clips shorter than a second are zero-padded at the end) or mfcc
(161 frames of 20 coefficients, see audio.py). sample_rate=8000 keeps every second sample (L = 8000), as in the S4
paper's zero-shot test: a model trained at 16 kHz evaluated at 8 kHz with its SSM step doubled (rate=2).
Inputs are z-scored (raw: one mean and std; mfcc: per coefficient) with statistics of a fixed seeded sample of
n_stats training clips, so that every split is normalized alike without reading all training audio.
normalize="per_step" (raw only) gives each sample position its own mean and std over the training clips, as the
official S4 and S5 loaders do (state-spaces/s4 src/dataloaders/datasets/sc.py normalize_all_data, lindermanlab/S5
s5/dataloaders/sc.py normalise_data: a loop over the last axis, which for raw audio is time); they take all
training clips, we the n_stats sample (2,000 clips: about 1.6 % standard error on each position's std).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..progress import progress
from .audio import mfcc, read_wav
from .registry import read_text, register_dataset

WORDS_35 = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go",
            "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila",
            "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero")
WORDS_10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
RATE = 16000


def list_split(root: Path, words: tuple[str, ...], split: str,
               release: str = "the extracted speech_commands_v0.02.tar.gz") -> list[tuple[str, int]]:
    """(relative path, label) of the split's clips, in sorted order; ``release`` names the folder in errors."""
    lists = {}
    for name in ("validation_list.txt", "testing_list.txt"):
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"data_dir: no {name} in {root} ({release})")
        lists[name] = set(read_text(path).split())
    clips = []
    for label, word in enumerate(words):
        folder = root / word
        if not folder.is_dir():
            raise FileNotFoundError(f"data_dir: no folder {word}/ in {root}; the {len(words)}-class task needs "
                                    f"{', '.join(words)}")
        for file in sorted(folder.glob("*.wav")):
            rel = f"{word}/{file.name}"
            where = ("val" if rel in lists["validation_list.txt"] else
                     "test" if rel in lists["testing_list.txt"] else "train")
            if where == split:
                clips.append((rel, label))
    if not clips:
        raise ValueError(f"data_dir: {root} has no {split} clips of the {len(words)} words")
    return clips


def _load(root: Path, rel: str) -> np.ndarray:
    samples, rate = read_wav(root / rel)
    if rate != RATE:
        raise ValueError(f"{root / rel}: sampled at {rate} Hz, expected {RATE}")
    clip = np.zeros(RATE, dtype=np.int16)
    clip[:min(RATE, len(samples))] = samples[:RATE]
    return clip


class AudioClips(Dataset):
    """Items (features (L, d), label); raw clips stay int16 in memory and are scaled per item."""

    def __init__(self, data: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 n_classes: int):
        self.data, self.labels, self.mean, self.std = data, labels, mean, std
        self.d_input = 1 if data.dim() == 2 else data.shape[-1]
        self.n_classes, self.l_max = n_classes, data.shape[1]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        x = self.data[i].float()
        x = x[:, None] if x.dim() == 1 else x
        return (x - self.mean) / self.std, self.labels[i]


def _features(clips: np.ndarray, features: str, sample_rate: int) -> torch.Tensor:
    """(n, L) int16 raw at sample_rate, or (n, frames, 20) float32 MFCCs."""
    x = torch.from_numpy(clips[:, ::RATE // sample_rate].copy())
    if features == "raw":
        return x
    return torch.cat([mfcc(part.float() / 32768.0, sample_rate) for part in x.split(1024)])


@register_dataset("speech-commands", "Speech Commands v0.02: 35 or 10 words (classes=), raw 16 kHz or mfcc "
                                     "(features=), sample_rate=8000 for the zero-shot test (folder in data_dir)")
def speech_commands(data_dir: str | None, split: str, classes: int = 35, features: str = "raw",
                    sample_rate: int = 16000, n_stats: int = 2000, seed: int = 0, normalize: str = "global"
                    ) -> AudioClips:
    if classes not in (10, 35):
        raise ValueError(f"classes: expected 10 or 35, got {classes!r}")
    if features not in ("raw", "mfcc"):
        raise ValueError(f"features: expected 'raw' or 'mfcc', got {features!r}")
    if normalize not in ("global", "per_step"):
        raise ValueError(f"normalize: expected 'global' or 'per_step', got {normalize!r}")
    if normalize == "per_step" and features != "raw":
        raise ValueError(f"normalize='per_step' (each sample position its own statistics) is for features='raw', got "
                         f"features={features!r}")
    if sample_rate not in (16000, 8000):
        raise ValueError(f"sample_rate: expected 16000 or 8000 (every second sample), got {sample_rate!r}")
    if data_dir is None:
        raise ValueError("data_dir: set it to the extracted speech_commands_v0.02.tar.gz (download.tensorflow.org/"
                         "data/speech_commands_v0.02.tar.gz): one folder per word and the validation/testing lists")
    root = Path(data_dir)
    words = WORDS_35 if classes == 35 else WORDS_10
    clips = list_split(root, words, split)
    data = _features(np.stack([_load(root, rel) for rel, _ in progress(clips, f"reading {split} clips")]), features,
                     sample_rate)
    train = clips if split == "train" else list_split(root, words, "train")
    pick = sorted(np.random.default_rng(seed).permutation(len(train))[:n_stats])
    sample = (data[pick] if split == "train" else
              _features(np.stack([_load(root, train[i][0]) for i in pick]), features, sample_rate)).float()
    dims = (0,) if normalize == "per_step" else tuple(range(sample.dim() - 1 if features == "mfcc" else sample.dim()))
    mean, std = sample.mean(dims), sample.std(dims).clamp_min(1e-5)
    if normalize == "per_step":  # (L, 1), as an item's features
        mean, std = mean[:, None], std[:, None]
    return AudioClips(data, torch.tensor([label for _, label in clips]), mean, std, classes)
