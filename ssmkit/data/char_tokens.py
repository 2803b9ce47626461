"""Character-level tokens with a vocabulary built from the training texts, as the official S4 code reads IMDB
(state-spaces/s4 src/dataloaders/lra.py IMDB: level char, min_freq 15, append_eos; also the DSS, S5 and Liquid-S4
LRA runs).

Each text becomes its characters (Python's code points), cut to l_max − 1 so that EOS fits. The vocabulary is
<pad> = 0, <unk> = 1, <eos> = 2, then every character seen at least min_freq times in the (cut) training texts, most
frequent first (ties in code-point order); rarer characters read as <unk>.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import torch

PAD, UNK, EOS = 0, 1, 2


def char_vocabulary(texts: list[str], l_max: int, min_freq: int) -> dict[str, int]:
    """{character: id} from the training texts, cut as they will be encoded (module docstring)."""
    if not isinstance(min_freq, int) or isinstance(min_freq, bool) or min_freq < 1:
        raise ValueError(f"min_freq: expected a positive count, got {min_freq!r}")
    counts = Counter()
    for text in texts:
        counts.update(text[:l_max - 1])
    kept = sorted((c for c, n in counts.items() if n >= min_freq), key=lambda c: (-counts[c], c))
    return {c: i for i, c in enumerate(kept, start=EOS + 1)}


def vocabulary_size(vocabulary: dict[str, int]) -> int:
    """Token ids a model embeds for ``vocabulary``: <pad>, <unk>, <eos> and its characters."""
    return EOS + 1 + len(vocabulary)


def encode_chars(texts: list[str], vocabulary: dict[str, int], l_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (n, l_max) int16, padded with <pad>; lengths (n,) counting EOS)."""
    if not isinstance(l_max, int) or l_max < 2:
        raise ValueError(f"l_max: expected an integer >= 2 (a character and EOS), got {l_max!r}")
    tokens = np.full((len(texts), l_max), PAD, dtype=np.int16)
    lengths = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        body = [vocabulary.get(c, UNK) for c in text[:l_max - 1]]
        tokens[i, :len(body)] = body
        tokens[i, len(body)] = EOS
        lengths[i] = len(body) + 1
    return torch.from_numpy(tokens), torch.from_numpy(lengths)
