"""Music as 8-bit samples: linear codes, the `music` loader on WAV folders in the Beethoven / YouTubeMix layout, the
corpus writer (with a stand-in renderer, and with music21 and fluidsynth where they are installed), and the codes a
run's generated audio is decoded with."""
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ssmkit import data
from ssmkit.data import music_render
from ssmkit.data.audio import (audio_quantization, linear_decode, linear_encode, minmax_scale, mu_law_encode,
                               read_wav, write_ranked_audio)
from ssmkit.data.music import natural_key
from ssmkit.data.sc09 import ZERO_LEVEL
from ssmkit.train import make_config

from datafiles import write_music_folder


def test_linear_codes_put_zero_at_128_and_every_code_survives_decode_then_encode():
    codes = torch.arange(256)
    assert torch.equal(linear_encode(linear_decode(codes, dtype=torch.float64)), codes)
    assert linear_encode(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0, ZERO_LEVEL, 255]
    x = torch.linspace(-1, 1, 10001, dtype=torch.float64)
    assert (linear_decode(linear_encode(x), dtype=torch.float64) - x).abs().max() <= 1 / 255.99 + 1e-12


@pytest.mark.parametrize("quantization,encode", [("linear", linear_encode), ("mu-law", mu_law_encode)])
def test_music_loader_cuts_files_in_natural_order_into_windows_split_88_6_6(tmp_path, quantization, encode):
    lengths = [250 + 37 * i for i in range(20)]
    mono = write_music_folder(tmp_path, lengths)
    splits = {s: data.build("music", str(tmp_path), s, sample_len=100, quantization=quantization)
              for s in ("train", "val", "test")}
    # natural order 1, 2, …, 20; train the first int(0.88·20) = 17, val int(0.94·20) − 17 = 1, test the other 2
    assert [len(splits[s]) for s in splits] == [sum(n // 100 for n in lengths[a:b])
                                                for a, b in ((0, 17), (17, 18), (18, 20))]
    test = splits["test"]
    assert test.l_max == 100 and test.vocab_size == 256 and test.task == "lm" and test.metric == "bits"
    assert [(p.name, start) for p, start in test.windows][:3] == [("19.wav", 0), ("19.wav", 100), ("19.wav", 200)]
    x, y = test[4]  # 19.wav has 916 frames: 9 windows; item 4 is its fifth
    expected = encode(minmax_scale(torch.from_numpy(mono["19.wav"][400:500])))
    assert torch.equal(y, expected) and x[0] == ZERO_LEVEL and torch.equal(x[1:], y[:-1])
    x, y = splits["val"][0]  # 18.wav is stereo: the channels are averaged
    assert torch.equal(y, encode(minmax_scale(torch.from_numpy(mono["18.wav"][:100]))))


def test_natural_order_reads_digit_runs_as_numbers():
    names = ["10.wav", "2.wav", "a10b.wav", "a9b.wav", "1.wav"]
    assert sorted(names, key=natural_key) == ["1.wav", "2.wav", "10.wav", "a9b.wav", "a10b.wav"]


def test_music_loader_names_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .wav files"):
        data.build("music", str(tmp_path), "train")
    write_music_folder(tmp_path / "few", [300] * 8)  # val would be files int(0.88·8) .. int(0.94·8): none
    with pytest.raises(ValueError, match=r"val split .* \(0 of 8 files .* no window"):
        data.build("music", str(tmp_path / "few"), "val", sample_len=100)
    write_music_folder(tmp_path / "rate", [300] * 10, rate=22050)
    with pytest.raises(ValueError, match="22050 Hz, expected 16000"):
        data.build("music", str(tmp_path / "rate"), "train", sample_len=100)
    with pytest.raises(ValueError, match="quantization: expected one of"):
        data.build("music", str(tmp_path / "few"), "train", quantization="ulaw")
    with pytest.raises(ValueError, match="train_fraction"):
        data.build("music", str(tmp_path / "few"), "train", train_fraction=1.0)
    with pytest.raises(ValueError, match="sample_len: expected an integer >= 2"):
        data.build("music", str(tmp_path / "few"), "train", sample_len=1)


def test_music_writer_normalizes_names_and_lists_pieces_and_skips_a_score_past_the_time_limit(tmp_path, monkeypatch):
    scores = [Path(f"/corpus/bach/bwv{i}.mxl") for i in range(12)]
    monkeypatch.setattr(music_render, "score_paths", lambda composer: scores)

    def render(path: Path) -> np.ndarray:
        if path.name == "bwv3.mxl":
            time.sleep(5)  # stopped by the time limit
        return np.sin(np.arange(1600 + 10 * int(path.stem[3:])) / 5) * (1 + int(path.stem[3:]))

    with pytest.warns(UserWarning, match="bwv3.mxl: not rendered within"):
        summary = music_render.write_music(tmp_path, pieces=10, render=render, time_limit=0.5)
    assert summary.startswith(f"{tmp_path}: 10 pieces of bach")
    lines = (tmp_path / "pieces.txt").read_text().splitlines()
    assert lines[:4] == ["0000.wav bach/bwv0.mxl", "0001.wav bach/bwv1.mxl", "0002.wav bach/bwv2.mxl",
                         "0003.wav bach/bwv4.mxl"] and lines[-1] == "0009.wav bach/bwv10.mxl"
    samples, rate = read_wav(tmp_path / "0009.wav")
    assert rate == 16000 and len(samples) == 1700 and np.abs(samples).max() == round(0.9 * 32767)
    assert len(data.build("music", str(tmp_path), "test", sample_len=400)) == 4  # 0009.wav: 1700 samples


def test_music_writer_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="pieces: expected an integer >= 9"):
        music_render.write_music(tmp_path, pieces=5, render=lambda p: np.ones(3))
    with pytest.raises(ValueError, match="instrument: expected a General MIDI program 0-127 or 'score'"):
        music_render.write_music(tmp_path, instrument=128, render=lambda p: np.ones(3))


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not any(Path(p).is_file() for p in music_render.SOUNDFONTS),
                    reason="needs fluidsynth and a General MIDI soundfont")
def test_a_bach_chorale_renders_through_music21_and_fluidsynth(tmp_path):
    pytest.importorskip("music21")
    score = music_render.score_paths("bach")[0]
    music_render.score_to_midi(score, tmp_path / "piece.mid")
    samples = music_render.fluidsynth_render(tmp_path / "piece.mid", music_render.find_soundfont())
    assert len(samples) > 20 * 16000 and np.abs(samples).max() > 1000  # a chorale lasts a minute or so


def test_generated_audio_is_decoded_with_the_run_datasets_codes(tmp_path):
    def config(**options):
        return make_config([], base={"dataset": "music", "model": "sashimi", "dataset_options": options})

    assert audio_quantization(config(quantization="linear")) == "linear"
    assert audio_quantization(config()) == "mu-law"  # the loader's default
    assert audio_quantization(make_config([], base={"dataset": "sc09", "model": "sashimi"})) == "mu-law"
    codes = torch.tensor([[0, 64, 128, 255]])
    write_ranked_audio(codes, torch.zeros(1), tmp_path, 16000, "linear")
    samples, _ = read_wav(tmp_path / "sample_000.wav")
    assert samples.tolist() == np.round(linear_decode(codes[0], dtype=torch.float64).numpy() * 32767).tolist()


def test_the_music_writer_without_music21_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "music21" else real_import(name, *a, **k))
    with pytest.raises(ValueError, match=r"pip install 'ssmkit\[music\]'"):
        music_render.score_paths("bach")
