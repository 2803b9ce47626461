"""Byte-level tokens for the LRA text tasks: the UTF-8 bytes of a text, each b as token b + 1, then EOS.

Id 0 pads, 1..256 are the byte values, EOS = 257 ends every document (VOCAB_SIZE = 258). A document longer than
l_max - 1 bytes is cut there, so that EOS fits. Tokens are kept as int16 (a quarter of int64's memory: IMDB's 25,000
reviews at 4096 take 200 MiB) and widened per item.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

EOS = 257
VOCAB_SIZE = 258


def encode_bytes(documents: list[bytes], l_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (n, l_max) int16, zero-padded; lengths (n,) counting EOS)."""
    if not isinstance(l_max, int) or l_max < 2:
        raise ValueError(f"l_max: expected an integer >= 2 (a byte and EOS), got {l_max!r}")
    tokens = np.zeros((len(documents), l_max), dtype=np.int16)
    lengths = np.empty(len(documents), dtype=np.int64)
    for i, doc in enumerate(documents):
        body = np.frombuffer(doc[:l_max - 1], dtype=np.uint8)
        tokens[i, :len(body)] = body.astype(np.int16) + 1
        tokens[i, len(body)] = EOS
        lengths[i] = len(body) + 1
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


class TokenDataset(Dataset):
    """Items (tokens as int64, label, length) from int16 tokens (n, ..., L), labels (n,) and lengths (n, ...)."""

    def __init__(self, tokens: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor, n_classes: int,
                 vocab_size: int = VOCAB_SIZE):
        self.tokens, self.labels, self.lengths = tokens, labels, lengths
        self.d_input = self.vocab_size = vocab_size
        self.padding_idx = 0
        self.n_classes, self.l_max = n_classes, tokens.shape[-1]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.tokens[i].long(), self.labels[i], self.lengths[i]
