"""A music corpus in the Beethoven / YouTubeMix layout, rendered from real scores, for machines without the downloads.

music21 (an optional extra: pip install music21) ships scores of real music: about 430 Bach chorales and 26 movements
and quartets of Beethoven's string quartets, with Mozart and Haydn quartets besides. Each score is written as MIDI by
music21, every part played by one General MIDI instrument (program 0, the acoustic grand piano, by default: the
Beethoven sonatas and YouTubeMix are piano music; ``instrument="score"`` keeps the score's own instruments), and
rendered to 16 kHz by fluidsynth with a General MIDI soundfont (Debian: apt-get install fluidsynth
fluid-soundfont-gm). The notes are the composers' but the performance is synthetic (the score's exact timing and
dynamics, one soundfont's timbre): models trained on it are not comparable with ones trained on the recordings.

Files are 0000.wav, 0001.wav, … in the order of the scores (mono PCM 16-bit at 16 kHz, each piece's peak at 0.9 of
full scale), and pieces.txt names the score of each. The `music` loader splits by file position, so its val and test
pieces are the last ones.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from .audio import read_wav_window, write_wav
from .registry import output_folder
from .sc09 import RATE

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/soundfonts/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2")
PEAK = 0.9


def _music21():
    try:
        import music21
    except ImportError:
        raise ValueError("data music: reads scores from music21's corpus; install it with  pip install "
                         "'ssmkit[music]'") from None
    return music21


def score_paths(composer: str) -> list[Path]:
    """The corpus's scores of a composer, sorted; a Humdrum (.krn) copy of a MusicXML score is left out."""
    paths = sorted(Path(p) for p in _music21().corpus.getComposer(composer))
    if not paths:
        raise ValueError(f"composer: music21's corpus has no scores of {composer!r} (try bach, beethoven, mozart, "
                         f"haydn)")
    stems = {p.with_suffix("") for p in paths if p.suffix != ".krn"}
    return [p for p in paths if p.suffix != ".krn" or p.with_suffix("") not in stems]


def score_to_midi(score_path: Path, midi_path: Path, instrument: int | str = 0) -> None:
    """Write a corpus score as a MIDI file, every part played by General MIDI program ``instrument`` (0-127), or by
    the score's own instruments when it is "score"."""
    m21 = _music21()
    score = m21.corpus.parse(str(score_path))
    if instrument != "score":
        for part in score.parts:
            for old in list(part.recurse().getElementsByClass(m21.instrument.Instrument)):
                old.activeSite.remove(old)
            part.insert(0, m21.instrument.instrumentFromMidiProgram(int(instrument)))
    try:
        score.write("midi", fp=str(midi_path))
    except m21.repeat.ExpanderException:  # repeat marks music21 cannot unfold: the piece is played without repeats
        strip_repeats(score)
        score.write("midi", fp=str(midi_path))


def strip_repeats(score) -> None:
    """Remove a score's repeat barlines and repeat expressions (da capo, segno, …) in place."""
    m21 = _music21()
    for measure in score.recurse().getElementsByClass(m21.stream.Measure):
        if isinstance(measure.leftBarline, m21.bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, m21.bar.Repeat):
            measure.rightBarline = None
    for mark in list(score.recurse().getElementsByClass(m21.repeat.RepeatExpression)):
        mark.activeSite.remove(mark)


def find_soundfont() -> Path:
    for path in SOUNDFONTS:
        if Path(path).is_file():
            return Path(path)
    raise FileNotFoundError(f"no General MIDI soundfont in {', '.join(SOUNDFONTS)} (Debian/Ubuntu: apt-get install "
                            f"fluid-soundfont-gm), or pass soundfont=")


def fluidsynth_render(midi_path: Path, soundfont: Path) -> np.ndarray:
    """float64 mono samples at 16 kHz of a MIDI file played by fluidsynth with the soundfont."""
    if shutil.which("fluidsynth") is None:
        raise FileNotFoundError("fluidsynth: not found; the music generator needs it (Debian/Ubuntu: apt-get install "
                                "fluidsynth fluid-soundfont-gm)")
    wav = midi_path.with_suffix(".wav")
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.3", "-r", str(RATE), "-F", str(wav), str(soundfont),
                    str(midi_path)], capture_output=True, check=True)
    return read_wav_window(wav)


def score_renderer(instrument: int | str, soundfont: Path, workdir: Path) -> Callable[[Path], np.ndarray]:
    """render(score_path) -> float64 mono samples at 16 kHz, through a MIDI file in workdir and fluidsynth."""
    def render(score_path: Path) -> np.ndarray:
        score_to_midi(score_path, workdir / "piece.mid", instrument)
        return fluidsynth_render(workdir / "piece.mid", soundfont)

    return render


def write_music(out_dir: str | Path, composer: str = "bach", pieces: int | None = None, instrument: int | str = 0,
                soundfont: str | Path | None = None, render: Callable[[Path], np.ndarray] | None = None,
                time_limit: float | None = 120.0) -> str:
    """Write the corpus (module docstring) of the first ``pieces`` scores of ``composer`` (all when None) to out_dir;
    returns a one-line summary. ``render(score_path)`` gives float samples at 16 kHz (music21 and fluidsynth by
    default); a score that takes longer than time_limit seconds is left out with a warning (music21 takes minutes
    to unfold the repeats of some whole quartets)."""
    if instrument != "score" and not (isinstance(instrument, int) and 0 <= instrument <= 127):
        raise ValueError(f"instrument: expected a General MIDI program 0-127 or 'score', got {instrument!r}")
    if pieces is not None and (not isinstance(pieces, int) or pieces < 9):
        raise ValueError(f"pieces: expected an integer >= 9 (the loader's 88/6/6 split by file gives val and test a "
                         f"piece each from 9 on), got {pieces!r}")
    paths = score_paths(composer)
    font = None if render is not None else Path(soundfont) if soundfont is not None else find_soundfont()
    root = output_folder(out_dir)
    names, seconds = [], 0.0
    with tempfile.TemporaryDirectory(prefix="ssmkit-music-") as tmp:
        render = render or score_renderer(instrument, font, Path(tmp))
        for path in paths:
            if len(names) == pieces:
                break
            try:
                samples = within(time_limit, render, path)
            except TimeoutError:
                warnings.warn(f"{path}: not rendered within {time_limit} s (music21 unfolding its repeats); left out")
                continue
            peak = np.abs(samples).max() if len(samples) else 0.0
            if peak == 0:
                raise ValueError(f"{path}: rendered to silence")
            write_wav(root / f"{len(names):04d}.wav", samples * (PEAK / peak), RATE)
            names.append(f"{len(names):04d}.wav {Path(*path.parts[-2:])}\n")
            seconds += len(samples) / RATE
    (root / "pieces.txt").write_text("".join(names))
    return f"{root}: {len(names)} pieces of {composer}, {seconds / 60:.1f} minutes at {RATE} Hz"


def within(seconds: float | None, fn: Callable, *args):
    """fn(*args), or TimeoutError after `seconds` (a SIGALRM; without a limit off the main thread or off Unix)."""
    if seconds is None or not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        return fn(*args)

    def expire(*_):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
