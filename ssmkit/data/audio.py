"""Audio in torch: WAV reading and writing (PCM 16-bit, stdlib wave), 8-bit μ-law codes, and MFCCs.

mu_law_encode / mu_law_decode (the SaShiMi/WaveNet quantization, μ = 2^bits − 1, Q = 2^bits levels), as the official
SaShiMi loader (state-spaces/s4 src/dataloaders/audio.py): a clip is first min-max scaled to [−1, 1],
x = −1 + 2(a − min a)/(max a − min a + 1e-6), then
    y = sign(x) ln(1 + μ|x + 10⁻⁸|) / ln(1 + μ),    code = ⌊v (Q − 0.01) + 0.005⌋,  v = (y + 1)/2      (x = 0 -> 128)
(its `quantize`: the bins are 1/(Q − 0.01) wide, the first and last half a hundredth narrower), and a code decodes to
the centre of its bin, v = (code + 0.495)/(Q − 0.01), y = 2v − 1, x = sign(y)((1 + μ)^|y| − 1)/μ, so that
encode(decode(c)) = c for every code. (The official loader decodes to code/(Q/2) − 1, near the bin's lower edge; the
centre halves the worst-case error.) linear_encode / linear_decode (the official Beethoven set's 8-bit linear
quantization) bin the scaled clip itself the same way, code = ⌊v (Q − 0.01) + 0.005⌋ with v = (x + 1)/2, and decode
to the bin centres.

mfcc (HTK mel scale, as torchaudio's MFCC with log_mels=True, which the S4 Speech Commands setup used):
    power spectrogram |STFT|² (Hann window of n_fft, hop n_fft // 2, centered with reflect padding),
    mel energies M = F·|X|² with F the n_mels triangular filters between 0 and sample_rate / 2 on
    mel(f) = 2595 log10(1 + f / 700), log-mel ℓ = log(M + 1e-6), and the orthonormal DCT-II of ℓ over the mel
    axis, keeping the first n_mfcc coefficients: c_k = s_k Σ_n ℓ_n cos(π k (n + ½) / n_mels), s_0 = √(1/n_mels),
    s_k = √(2/n_mels).
"""
from __future__ import annotations

import inspect
import math
import wave
from pathlib import Path

import numpy as np
import torch


def _read_frames(path: Path, start: int = 0, count: int | None = None) -> tuple[np.ndarray, int]:
    """(int16 frames (count, channels) from frame `start` on, sample rate) of a PCM 16-bit WAV file; count None: to
    the end. A file shorter than its header says, or not 16-bit PCM, is an error naming it."""
    try:
        with wave.open(str(path), "rb") as f:
            width, channels, rate = f.getsampwidth(), f.getnchannels(), f.getframerate()
            declared = f.getnframes()
            if width != 2:
                raise ValueError(f"{path}: {8 * width}-bit samples; expected 16-bit PCM")
            count = declared - start if count is None else count
            if start + count > declared:
                raise ValueError(f"{path}: frames {start}..{start + count} asked, the file has {declared}")
            f.setpos(start)
            frames = f.readframes(count)
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path}: not a readable WAV file ({e})") from None
    if len(frames) != count * width * channels:
        raise ValueError(f"{path}: truncated: the header declares {declared} frames, the file holds "
                         f"{start + len(frames) // (width * channels)}")
    return np.frombuffer(frames, dtype="<i2").reshape(-1, channels), rate


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(int16 samples of the first channel, sample rate) of a PCM 16-bit WAV file."""
    frames, rate = _read_frames(path)
    return frames[:, 0].copy(), rate


def wav_length(path: Path) -> tuple[int, int]:
    """(frames, sample rate) from a WAV file's header."""
    try:
        with wave.open(str(path), "rb") as f:
            return f.getnframes(), f.getframerate()
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path}: not a readable WAV file ({e})") from None


def read_wav_window(path: Path, start: int = 0, count: int | None = None) -> np.ndarray:
    """float64 samples start .. start + count (None: to the end) of a PCM 16-bit WAV, averaged over its channels (mono
    as it is)."""
    return _read_frames(path, start, count)[0].mean(1, dtype=np.float64)


def write_wav(path: Path, samples, rate: int) -> None:
    """Write a mono PCM 16-bit WAV: int16 samples as they are, floating-point ones in [−1, 1] scaled by 32767."""
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.floating):
        x = np.round(np.clip(x, -1.0, 1.0) * 32767)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(x.astype("<i2").tobytes())


def minmax_scale(a: torch.Tensor) -> torch.Tensor:
    """A clip (..., T) scaled to [−1, 1] by its own min and max."""
    lo, hi = a.amin(-1, keepdim=True), a.amax(-1, keepdim=True)
    return -1 + 2 * (a - lo) / (hi - lo + 1e-6)


def mu_law_encode(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """x in [−1, 1] -> integer codes in [0, 2^bits) (module docstring)."""
    mu = 2 ** bits - 1
    return linear_encode(torch.sign(x) * torch.log1p(mu * (x + 1e-8).abs()) / math.log1p(mu), bits)


QUANTIZE_EPSILON = 0.01  # the official quantize's epsilon: Q − ε bins of v ∈ [0, 1], offset by ε/2 (module docstring)


def linear_encode(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """x in [−1, 1] -> integer codes in [0, 2^bits): the official quantize, ⌊(x + 1)/2 · (Q − ε) + ε/2⌋ (module
    docstring); values past [−1, 1] take the end codes."""
    Q, eps = 2 ** bits, QUANTIZE_EPSILON
    return torch.floor((x + 1) / 2 * (Q - eps) + eps / 2).clamp(0, Q - 1).long()


def linear_decode(code: torch.Tensor, bits: int = 8, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer codes -> x in [−1, 1] at the centres of their bins, v = (code + ½ − ε/2)/(Q − ε)."""
    eps = QUANTIZE_EPSILON
    return 2 * (code.to(dtype) + 0.5 - eps / 2) / (2 ** bits - eps) - 1


def mu_law_decode(code: torch.Tensor, bits: int = 8, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer codes -> x in [−1, 1] at the centres of their μ-law bins."""
    mu = 2 ** bits - 1
    y = linear_decode(code, bits, dtype)
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


CODECS = {"mu-law": (mu_law_encode, mu_law_decode), "linear": (linear_encode, linear_decode)}


def audio_quantization(config) -> str:
    """How a run's audio dataset codes its samples (a key of CODECS): its `quantization` option, as set in the run's
    config or defaulted by the dataset builder; μ-law for builders without one (SC09)."""
    from .registry import DATASETS
    default = inspect.signature(DATASETS[config.dataset]).parameters.get("quantization")
    return config.dataset_options.get("quantization", "mu-law" if default is None else default.default)


def write_ranked_audio(codes: torch.Tensor, log_likelihood: torch.Tensor, out_dir: Path, rate: int,
                       quantization: str = "mu-law") -> list[tuple[Path, float]]:
    """Generated 8-bit codes (B, L) (quantization: a key of CODECS) as WAVs sample_000.wav … in out_dir, most likely
    first (log_likelihood (B,), nats, the official generator's ranking); returns (path, bits per sample) of each."""
    decode = CODECS[quantization][1]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, i in enumerate(torch.argsort(log_likelihood, descending=True).tolist()):
        path = out_dir / f"sample_{rank:03d}.wav"
        write_wav(path, decode(codes[i].cpu(), dtype=torch.float64).numpy(), rate)
        written.append((path, -log_likelihood[i].item() / (codes.shape[1] * math.log(2))))
    return written


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels): triangular filters on the HTK mel scale, peaks at n_mels points evenly spaced in mel
    between 0 and sample_rate / 2, each reaching 0 at its neighbours' peaks."""
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising, falling = (freqs - lower) / (center - lower), (upper - freqs) / (upper - center)
    return torch.from_numpy(np.clip(np.minimum(rising, falling), 0.0, None).T.astype(np.float32))


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in) orthonormal DCT-II rows: D[k, n] = s_k cos(π k (n + ½) / n_in)."""
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None]
    d = np.cos(math.pi * k * (n + 0.5) / n_in) * math.sqrt(2.0 / n_in)
    d[0] /= math.sqrt(2.0)
    return torch.from_numpy(d.astype(np.float32))


def log_mel(wave_: torch.Tensor, sample_rate: int, n_fft: int = 200, n_mels: int = 64) -> torch.Tensor:
    """(..., T) -> (..., frames, n_mels), frames = T // (n_fft // 2) + 1."""
    spec = torch.stft(wave_.reshape(-1, wave_.shape[-1]).float(), n_fft, hop_length=n_fft // 2,
                      window=torch.hann_window(n_fft, device=wave_.device), center=True, pad_mode="reflect",
                      return_complex=True).abs().square()  # (B, n_fft // 2 + 1, frames)
    mel = spec.transpose(1, 2) @ mel_filterbank(n_fft, n_mels, sample_rate).to(spec.device)
    return torch.log(mel + 1e-6).reshape(*wave_.shape[:-1], *mel.shape[1:])


def mfcc(wave_: torch.Tensor, sample_rate: int, n_mfcc: int = 20, n_fft: int = 200, n_mels: int = 64) -> torch.Tensor:
    """(..., T) -> (..., frames, n_mfcc); see the module docstring."""
    return log_mel(wave_, sample_rate, n_fft, n_mels) @ dct_matrix(n_mfcc, n_mels).to(wave_.device).T
