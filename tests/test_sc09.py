"""SC09-layout audio: μ-law codes, the loader on files written in the release's layout, and the spoken-digit writer."""
import math
import wave

import numpy as np
import pytest
import torch

from ssmkit import data
from ssmkit.data.audio import minmax_scale, mu_law_decode, mu_law_encode, read_wav, write_wav
from ssmkit.data.registry import IGNORE
from ssmkit.data.sc09 import DIGITS, ZERO_LEVEL, mu_law_clip
from ssmkit.data.spoken_digits import place_in_clip, write_spoken_digits

from conftest import benchmark_script
from datafiles import write_speech_commands


def test_mu_law_codes_silence_as_128_and_every_code_survives_decode_then_encode():
    assert mu_law_encode(torch.zeros(5)).tolist() == [ZERO_LEVEL] * 5
    codes = torch.arange(256)
    for dtype in (torch.float32, torch.float64):
        assert torch.equal(mu_law_encode(mu_law_decode(codes, dtype=dtype)), codes)
    assert mu_law_encode(torch.tensor([-1.0, 1.0])).tolist() == [0, 255]


def test_mu_law_round_trip_error_is_within_half_a_bin_of_the_companded_scale():
    x = torch.linspace(-1, 1, 20001, dtype=torch.float64)
    y = lambda v: torch.sign(v) * torch.log1p(255 * v.abs()) / math.log1p(255)
    back = mu_law_decode(mu_law_encode(x), dtype=torch.float64)
    assert (y(back) - y(x)).abs().max() <= 1 / 255.99 + 1e-12  # half of a bin of width 2/(256 − 0.01)


def test_minmax_scale_maps_each_clip_onto_minus_one_to_one():
    a = torch.tensor([[3.0, 5.0, 7.0], [-2.0, 0.0, 8.0]], dtype=torch.float64)
    s = minmax_scale(a)
    assert torch.allclose(s.amin(-1), torch.full((2,), -1.0, dtype=torch.float64))
    assert torch.allclose(s.amax(-1), torch.ones(2, dtype=torch.float64), atol=1e-6)


def test_wav_written_is_read_back(tmp_path):
    samples = (np.sin(np.arange(800) / 7) * 20000).astype(np.int16)
    write_wav(tmp_path / "a.wav", samples, 16000)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000 and np.array_equal(back, samples)
    write_wav(tmp_path / "b.wav", np.array([0.0, 0.5, -1.0, 2.0]), 8000)
    assert read_wav(tmp_path / "b.wav")[0].tolist() == [0, 16384, -32767, 32767]


def test_sc09_loader_gives_shifted_mu_law_codes_and_ignores_padding(tmp_path):
    clips = write_speech_commands(tmp_path, DIGITS, per_word=3)  # one clip per word is 12000 samples long
    train = data.build("sc09", str(tmp_path), "train")
    assert len(train) == 10 and train.vocab_size == 256 and train.task == "lm" and train.metric == "bits"
    x, y = train[0]
    codes = mu_law_clip(clips["zero/0000beef_nohash_0.wav"])
    assert x.shape == y.shape == (16000,)
    assert x[0] == ZERO_LEVEL and torch.equal(x[1:12000], codes[:-1]) and torch.equal(y[:12000], codes)
    assert (y[12000:] == IGNORE).all() and (x[12001:] == ZERO_LEVEL).all()
    assert len(data.build("sc09", str(tmp_path), "val")) == 10


def test_sc09_loader_names_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="SC09-layout folder"):
        data.build("sc09", None, "train")
    (tmp_path / "zero").mkdir()
    with pytest.raises(FileNotFoundError, match="validation_list.txt"):
        data.build("sc09", str(tmp_path), "train")


def test_spoken_digits_writer_makes_an_sc09_folder_split_by_speaker(tmp_path):
    heard = []

    def speak(word, voice):  # a stand-in synthesizer: a tone whose pitch is the voice's
        heard.append((word, voice["pitch"]))
        t = np.arange(4000)
        return np.concatenate([np.zeros(500), 8000 * np.sin(t * voice["pitch"] / 300), np.zeros(700)]).astype(np.int16)

    summary = write_spoken_digits(tmp_path, n_speakers=10, seed=3, speak=speak, variants=["m1", "f2"])
    assert "100 one-second clips" in summary and len(heard) == 100
    val = (tmp_path / "validation_list.txt").read_text().split()
    test = (tmp_path / "testing_list.txt").read_text().split()
    speakers = lambda names: {n.split("/")[1].split("_")[0] for n in names}
    assert len(val) == len(test) == 10 and not speakers(val) & speakers(test)
    train = data.build("sc09", str(tmp_path), "train")
    assert len(train) == 80 and (train[0][1] != IGNORE).all()  # every clip is a full second
    with wave.open(str(tmp_path / val[0])) as f:
        assert (f.getframerate(), f.getnframes(), f.getsampwidth()) == (16000, 16000, 2)


def test_a_word_is_placed_whole_over_a_noise_floor_far_below_it():
    rng = np.random.default_rng(0)
    word = np.concatenate([np.zeros(300), 10000 * np.ones(2000), np.zeros(300)]).astype(np.int16)
    clip = place_in_clip(word, rng).astype(np.float64)
    loud = np.flatnonzero(clip > 5000)
    assert len(clip) == 16000 and loud[-1] - loud[0] + 1 == 2000
    quiet = np.delete(clip, np.arange(loud[0], loud[-1] + 1))
    assert 0 < quiet.std() < 10000 * 10 ** (-44 / 20)


@pytest.mark.slow
def test_train_sashimi_then_generate_wavs_from_the_command_line(tmp_path):
    import subprocess
    import sys

    write_speech_commands(tmp_path / "sc09", DIGITS, per_word=3)
    args = ["sashimi-sc09-small", f"data_dir={tmp_path / 'sc09'}", "d_model=8", "n_layers=1", "d_state=4",
            "epochs=1", "batch_size=5", "train_subset=0", "eval_subset=0", f"out_dir={tmp_path}", "run_name=s"]
    subprocess.run([sys.executable, "-m", "ssmkit", "train", *args], check=True, capture_output=True, text=True)
    results = __import__("json").loads((tmp_path / "s" / "results.json").read_text())
    assert 0 < results["test_bits"] < 8.5  # a first epoch: not yet far from the 8 bits of a uniform guess
    out = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(tmp_path / "s"), "--length", "48",
                          "--batch", "3", "--out", str(tmp_path / "wavs")], check=True, capture_output=True, text=True)
    names = sorted(p.name for p in (tmp_path / "wavs").iterdir())
    assert names == ["sample_000.wav", "sample_001.wav", "sample_002.wav"] and "samples/s" in out.stdout
    bits = [float(line.split()[1]) for line in out.stdout.splitlines() if line.endswith("bits per sample")]
    assert bits == sorted(bits)  # most likely first
    samples, rate = read_wav(tmp_path / "wavs" / names[0])
    assert rate == 16000 and len(samples) == 48
    missing = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(tmp_path / "s")], capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "--out" in missing.stderr
    prompted = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(tmp_path / "s"), "--prompt", "hi",
                               "--out", str(tmp_path / "w2")], capture_output=True, text=True)
    assert prompted.returncode == 2 and "--prompt: an audio model starts from silence" in prompted.stderr


def test_packed_clips_unpack_to_a_folder_the_loader_reads_as_the_same_codes(tmp_path):
    write_speech_commands(tmp_path / "src", DIGITS, per_word=3)
    write_wav(tmp_path / "src" / "zero" / "flat.wav", np.full(800, 7, dtype=np.int16), 16000)  # all code 128
    pack_clips = benchmark_script("pack_clips")
    pack_clips.pack(tmp_path / "src", tmp_path / "clips.xz")
    pack_clips.unpack(tmp_path / "clips.xz", tmp_path / "dst")
    for split in ("train", "val", "test"):
        a, b = (data.build("sc09", str(tmp_path / d), split) for d in ("src", "dst"))
        assert len(a) == len(b) > 0 and torch.equal(a.codes, b.codes) and torch.equal(a.lengths, b.lengths)
    assert (tmp_path / "clips.xz").stat().st_size < 0.6 * sum(p.stat().st_size for p in (tmp_path / "src").rglob("*"))


def test_codes_are_the_official_loaders():
    """state-spaces/s4 src/dataloaders/audio.py, written out: y = sign(x) log1p(μ|x + 1e-8|)/log1p(μ), then its
    quantize, ⌊(y + 1)/2 · (256 − 0.01) + 0.005⌋; here against that formula over a fine grid and at the points where
    ⌊(y + 1)/2 · 256⌋ (the binning before) gave another code."""
    x = torch.linspace(-1, 1, 200001, dtype=torch.float64)
    y = torch.sign(x) * torch.log1p(255 * (x + 1e-8).abs()) / math.log1p(255)
    official = ((y + 1) / 2 * 255.99 + 0.005).long()
    assert torch.equal(mu_law_encode(x), official)
    assert (torch.floor((y + 1) / 2 * 256).clamp(0, 255).long() != official).any()  # the grid reaches the difference
