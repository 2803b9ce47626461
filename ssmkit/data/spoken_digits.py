"""A corpus of spoken digits in the SC09 layout, synthesized with espeak-ng, for machines without the SC09 download.

Each speaker is an espeak-ng voice: an English accent (en-gb, en-us, Scottish, Caribbean, …), one of its voice
variants (m1 … m8, f1 … f5, klatt, croak, whisper and the rest; about 100), a pitch (15-85) and a rate (110-230 words
per minute). Every speaker says each of zero … nine once. espeak-ng renders at 22.05 kHz and sox resamples to 16 kHz
(Debian: apt-get install espeak-ng sox). The word, trimmed of its silences, is placed at a random offset in a
one-second clip over Gaussian noise 45-65 dB below its peak, as in a recording. The words are real speech sounds but the
voices are synthetic: models trained on this corpus are not comparable with ones trained on the recorded SC09.

Speakers are split 80/10/10 into train, val and test, listed in validation_list.txt and testing_list.txt as Speech
Commands does, so that test clips are in voices never heard in training. Files are <word>/<speaker>_nohash_0.wav.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np

from .audio import write_wav
from .registry import output_folder
from .sc09 import DIGITS, RATE

ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc")


def _run(command: list[str], stdin: bytes | None = None) -> bytes:
    if shutil.which(command[0]) is None:
        raise FileNotFoundError(f"{command[0]}: not found; the spoken-digit generator needs espeak-ng and sox "
                                f"(Debian/Ubuntu: apt-get install espeak-ng sox)")
    return subprocess.run(command, input=stdin, capture_output=True, check=True).stdout


def espeak_variants() -> list[str]:
    """The voice variants espeak-ng has (`espeak-ng --voices=variant`, the files under voices/!v/)."""
    lines = _run(["espeak-ng", "--voices=variant"]).decode().splitlines()[1:]
    return sorted({line.split()[-1].split("/")[-1] for line in lines if "!v/" in line and len(line.split()) == 5})


def espeak_speak(word: str, voice: dict) -> np.ndarray:
    """int16 samples at 16 kHz of espeak-ng saying ``word`` in ``voice`` (accent, variant, pitch, rate)."""
    wav = _run(["espeak-ng", "-v", f"{voice['accent']}+{voice['variant']}", "-p", str(voice["pitch"]),
                "-s", str(voice["rate"]), "--stdout", word])
    raw = _run(["sox", "-t", "wav", "-", "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(RATE), "-"],
               stdin=wav)
    return np.frombuffer(raw, dtype="<i2").copy()


def draw_voices(n: int, variants: list[str], rng: np.random.Generator) -> list[dict]:
    """n distinct voices (accent, variant, pitch, rate)."""
    voices, seen = [], set()
    while len(voices) < n:
        voice = {"accent": ACCENTS[rng.integers(len(ACCENTS))], "variant": variants[rng.integers(len(variants))],
                 "pitch": int(rng.integers(15, 86)), "rate": int(rng.integers(110, 231))}
        key = tuple(voice.values())
        if key not in seen:
            seen.add(key)
            voices.append(voice)
    return voices


def place_in_clip(word: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One second of int16: the word without its leading and trailing silence (samples under 2 % of the peak) at a
    random offset, over Gaussian noise 45-65 dB below the peak."""
    peak = float(np.abs(word).max())
    if peak == 0:
        raise ValueError("word: the synthesizer returned silence")
    loud = np.flatnonzero(np.abs(word) >= 0.02 * peak)
    word = word[loud[0]:loud[-1] + 1][:RATE].astype(np.float64)
    clip = rng.normal(0.0, peak * 10 ** (-rng.uniform(45, 65) / 20), RATE)
    start = int(rng.integers(0, RATE - len(word) + 1))
    clip[start:start + len(word)] += word
    return np.clip(np.round(clip), -32768, 32767).astype(np.int16)


def write_spoken_digits(out_dir: str | Path, n_speakers: int = 200, seed: int = 0,
                        speak: Callable[[str, dict], np.ndarray] = espeak_speak,
                        variants: list[str] | None = None) -> str:
    """Write the corpus (module docstring) to out_dir; returns a one-line summary. ``speak(word, voice)`` gives int16
    samples at 16 kHz (espeak-ng and sox by default); ``variants`` the voice variants to draw from (espeak-ng's)."""
    if not isinstance(n_speakers, int) or n_speakers < 3:
        raise ValueError(f"n_speakers: expected an integer >= 3 (train, val and test need one each), got "
                         f"{n_speakers!r}")
    rng = np.random.default_rng(seed)
    voices = draw_voices(n_speakers, variants if variants is not None else espeak_variants(), rng)
    n_held = max(1, round(0.1 * n_speakers))
    split = ["val"] * n_held + ["test"] * n_held + ["train"] * (n_speakers - 2 * n_held)
    root = output_folder(out_dir)
    lists = {"val": [], "test": []}
    for word in DIGITS:
        (root / word).mkdir(parents=True, exist_ok=True)
    for i, (voice, where) in enumerate(zip(voices, split)):
        for word in DIGITS:
            rel = f"{word}/{i:08x}_nohash_0.wav"
            write_wav(root / rel, place_in_clip(speak(word, voice), rng), RATE)
            if where in lists:
                lists[where].append(rel)
    (root / "validation_list.txt").write_text("".join(f"{r}\n" for r in lists["val"]))
    (root / "testing_list.txt").write_text("".join(f"{r}\n" for r in lists["test"]))
    return (f"{root}: {10 * n_speakers} one-second clips of {n_speakers} voices ({len(lists['val'])} val, "
            f"{len(lists['test'])} test)")
