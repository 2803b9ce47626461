import math

import numpy as np
import pytest
import torch

from ssmkit import data
from ssmkit.data.audio import dct_matrix, log_mel, mel_filterbank, mfcc, read_wav
from ssmkit.data.speech_commands import WORDS_10, WORDS_35

from datafiles import write_speech_commands, write_wav


def test_speech_commands_splits_labels_and_raw_audio(tmp_path):
    clips = write_speech_commands(tmp_path, WORDS_35, per_word=3)
    train = data.build("speech-commands", str(tmp_path), "train")
    val = data.build("speech-commands", str(tmp_path), "val")
    assert len(train) == len(val) == 35 and train.n_classes == 35 and train.l_max == 16000 and train.d_input == 1
    x, y = train[WORDS_35.index("go")]
    assert x.shape == (16000, 1) and y == WORDS_35.index("go")
    raw = clips[f"go/{WORDS_35.index('go'):04x}beef_nohash_0.wav"]
    restored = x[:, 0] * train.std + train.mean
    torch.testing.assert_close(restored[:12000], torch.from_numpy(raw).float(), atol=0.05, rtol=0)
    assert torch.allclose(restored[12000:], torch.zeros(4000), atol=0.05)  # zero-padded to one second
    sc10 = data.build("speech-commands", str(tmp_path), "test", classes=10)
    assert len(sc10) == 10 and sorted(sc10.labels.tolist()) == list(range(10))
    half = data.build("speech-commands", str(tmp_path), "test", classes=10, sample_rate=8000)
    assert half.l_max == 8000 and torch.equal(half.data[3], sc10.data[3][::2])


def test_speech_commands_mfcc_features_are_normalized_per_coefficient(tmp_path):
    write_speech_commands(tmp_path, WORDS_10, per_word=6)
    train = data.build("speech-commands", str(tmp_path), "train", classes=10, features="mfcc")
    x, _ = train[0]
    assert x.shape == (161, 20) and train.d_input == 20
    every = torch.stack([train[i][0] for i in range(len(train))]).flatten(0, 1)
    torch.testing.assert_close(every.mean(0), torch.zeros(20), atol=1e-3, rtol=0)  # n_stats covers all of train


def test_speech_commands_per_step_normalization_as_the_official_loaders(tmp_path):
    """normalize=per_step: each sample position z-scored with its own mean and std over the training clips (n_stats
    covers all of them here), as the official S4/S5 loaders' loop over the time axis; val uses the train statistics."""
    write_speech_commands(tmp_path, WORDS_10, per_word=6)
    train = data.build("speech-commands", str(tmp_path), "train", classes=10, normalize="per_step")
    every = torch.stack([train[i][0] for i in range(len(train))])[..., 0]  # (clips, L)
    varied = train.std[:, 0] > 1e-5  # positions where some clip is not silent
    assert train.mean.shape == train.std.shape == (16000, 1) and varied.sum() > 1000
    torch.testing.assert_close(every.mean(0), torch.zeros(16000), atol=1e-4, rtol=0)
    torch.testing.assert_close(every.std(0)[varied], torch.ones(int(varied.sum())), atol=1e-3, rtol=0)
    val = data.build("speech-commands", str(tmp_path), "val", classes=10, normalize="per_step")
    assert torch.equal(val.mean, train.mean) and torch.equal(val.std, train.std)
    with pytest.raises(ValueError, match="normalize='per_step' .* is for features='raw'"):
        data.build("speech-commands", str(tmp_path), "train", classes=10, features="mfcc", normalize="per_step")
    with pytest.raises(ValueError, match="normalize: expected 'global' or 'per_step'"):
        data.build("speech-commands", str(tmp_path), "train", classes=10, normalize="time")


def test_speech_commands_errors_name_the_missing_piece(tmp_path):
    with pytest.raises(ValueError, match="speech_commands_v0.02"):
        data.build("speech-commands", None, "train")
    write_speech_commands(tmp_path, WORDS_10, per_word=1)
    with pytest.raises(FileNotFoundError, match="no folder backward/"):
        data.build("speech-commands", str(tmp_path), "train")
    with pytest.raises(ValueError, match="classes"):
        data.build("speech-commands", str(tmp_path), "train", classes=12)
    write_wav(tmp_path / "yes" / "0000beef_nohash_0.wav", np.zeros(8000), rate=8000)
    with pytest.raises(ValueError, match="8000 Hz, expected 16000"):
        data.build("speech-commands", str(tmp_path), "train", classes=10)
    write_wav(tmp_path / "yes" / "0000beef_nohash_0.wav", np.zeros(16000), width=1)
    with pytest.raises(ValueError, match="8-bit samples"):
        data.build("speech-commands", str(tmp_path), "train", classes=10)
    (tmp_path / "yes" / "0000beef_nohash_0.wav").write_bytes(b"RIFF0000")
    with pytest.raises(ValueError, match="not a readable WAV"):
        read_wav(tmp_path / "yes" / "0000beef_nohash_0.wav")


def test_mfcc_pipeline_pieces():
    fb = mel_filterbank(400, 40, 16000)
    assert fb.shape == (201, 40) and fb.max() <= 1
    centers = fb.argmax(0)
    assert (centers[1:] >= centers[:-1]).all()  # filters rise with frequency
    d = dct_matrix(40, 40)
    torch.testing.assert_close(d @ d.T, torch.eye(40), atol=1e-5, rtol=0)
    t = torch.arange(16000) / 16000
    for hz in (300.0, 1000.0, 4000.0):
        tone = torch.sin(2 * math.pi * hz * t)
        mel = log_mel(tone, 16000, n_fft=400, n_mels=40)
        assert mel.shape == (81, 40)
        peak = int(mel[40].argmax())
        assert abs(peak - int(fb[round(hz / 40)].argmax())) <= 1  # the band whose filter covers the tone's bin
        full = mfcc(tone, 16000, n_mfcc=40, n_fft=400, n_mels=40)
        torch.testing.assert_close(full @ d, mel, atol=1e-3, rtol=1e-4)  # the orthonormal DCT inverts
    batch = torch.randn(3, 2, 16000)
    torch.testing.assert_close(mfcc(batch, 16000)[1, 0], mfcc(batch[1, 0], 16000))
