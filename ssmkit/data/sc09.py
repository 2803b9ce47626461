"""SC09: one-second spoken digits (zero … nine of Speech Commands), coded as 8-bit μ-law for autoregressive audio models
(the SaShiMi paper's speech benchmark).

data_dir holds one folder per word, zero/ … nine/, of mono 16-bit WAVs at 16 kHz, and validation_list.txt and
testing_list.txt naming the val and test clips as <word>/<file>.wav; every other clip is training data. That is the
layout of Speech Commands and of the SC09 release; `ssmkit data spoken-digits DIR` writes one (spoken_digits.py).

Each clip (at most one second; longer ones are cut) is min-max scaled to [−1, 1] and μ-law coded to 256 levels
(audio.py). y holds the codes, padded to L = 16000 with IGNORE (not scored); x is y shifted right by one, starting at
the zero level 128, padded with 128: position t sees the codes before t and predicts code t.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .audio import minmax_scale, mu_law_encode, read_wav
from .registry import IGNORE, data_folder, register_dataset
from .speech_commands import list_split

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RATE = 16000
ZERO_LEVEL = 128  # the code of x = 0, which starts every input
RELEASE = ("an SC09-layout folder: zero/ … nine/ of 16 kHz WAVs with validation_list.txt and testing_list.txt; "
           "spoken digits generated here: python3 -m ssmkit data spoken-digits DIR")


def shifted_input(codes: torch.Tensor) -> torch.Tensor:
    """The model's input for next-sample prediction of codes (L,): the codes shifted right by one, starting at the zero
    level (x_0 = 128, x_t = code_{t−1})."""
    return torch.cat([torch.tensor([ZERO_LEVEL]), codes[:-1].long()])


def mu_law_clip(samples: np.ndarray, bits: int = 8) -> torch.Tensor:
    """int16 samples -> μ-law codes of the clip min-max scaled to [−1, 1] (the clip's own range)."""
    return mu_law_encode(minmax_scale(torch.from_numpy(samples.astype(np.float64))), bits)


class MuLawClips(Dataset):
    """Items (x, y) of token ids (L,): y the μ-law codes (IGNORE after a clip's end), x = y shifted right by one."""

    d_input, n_classes, vocab_size, task, metric = 1, 256, 256, "lm", "bits"

    def __init__(self, codes: torch.Tensor, lengths: torch.Tensor):
        self.codes, self.lengths, self.l_max = codes, lengths, codes.shape[1]

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i):
        y = self.codes[i].long()
        y[self.lengths[i]:] = IGNORE
        x = shifted_input(self.codes[i])
        x[self.lengths[i] + 1:] = ZERO_LEVEL
        return x, y


@register_dataset("sc09", f"SC09 spoken digits as 8-bit mu-law, next-sample prediction ({RELEASE} in data_dir)",
                  sample_rate=RATE)
def sc09(data_dir: str | None, split: str) -> MuLawClips:
    root = data_folder(data_dir, RELEASE, inner="sc09")
    clips = list_split(root, DIGITS, split, release=RELEASE)
    codes = torch.full((len(clips), RATE), ZERO_LEVEL, dtype=torch.uint8)
    lengths = torch.zeros(len(clips), dtype=torch.long)
    for i, (rel, _) in enumerate(clips):
        samples, rate = read_wav(root / rel)
        if rate != RATE:
            raise ValueError(f"{root / rel}: sampled at {rate} Hz, expected {RATE}")
        samples = samples[:RATE]
        if len(samples) < 2:
            raise ValueError(f"{root / rel}: {len(samples)} samples; expected a clip of up to one second")
        codes[i, :len(samples)] = mu_law_clip(samples).to(torch.uint8)
        lengths[i] = len(samples)
    return MuLawClips(codes, lengths)
