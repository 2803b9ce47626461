"""Missingness masks for imputation, as SSSD (Lopez Alcaraz & Strodthoff 2022) defines them: m (L, K) with 1 where
the value is observed and 0 where it is missing (to impute), for a series of L steps and K channels.

    rm        random missing: in each channel, k steps drawn without replacement are missing
    mnr       missing not at random: the L steps cut into consecutive segments of length k (the last may be shorter);
              in each channel, one segment drawn at random is missing
    bm        blackout: one segment drawn at random (as in mnr) is missing in every channel
    forecast  the last k steps are missing in every channel (blackout at the end)

Every draw comes from the torch.Generator given, so a mask is reproducible from its seed.
"""
from __future__ import annotations

import torch

KINDS = ("rm", "mnr", "bm", "forecast")


def _segments(L: int, k: int) -> list[range]:
    return [range(a, min(a + k, L)) for a in range(0, L, k)]


def missing_mask(kind: str, L: int, K: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """m (L, K) float32: 1 observed, 0 missing, of the given kind (module docstring) with k missing steps or the
    segment length k."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if not isinstance(k, int) or not 1 <= k <= L:
        raise ValueError(f"k: expected an integer in [1, L={L}], got {k!r}")
    m = torch.ones(L, K)
    if kind == "rm":
        for c in range(K):
            m[torch.randperm(L, generator=generator)[:k], c] = 0
    elif kind == "mnr":
        segments = _segments(L, k)
        for c in range(K):
            s = segments[int(torch.randint(len(segments), (1,), generator=generator))]
            m[s.start:s.stop, c] = 0
    elif kind == "bm":
        segments = _segments(L, k)
        s = segments[int(torch.randint(len(segments), (1,), generator=generator))]
        m[s.start:s.stop] = 0
    else:
        m[L - k:] = 0
    return m
