"""An SC09-layout folder packed as the 8-bit μ-law codes the sc09 dataset reads from it, xz-compressed: about 9.6 KB
per one-second spoken digit instead of 24 as 16-bit WAVs in a .tar.gz, so that ~5,000 clips fit the 64 MiB a device
call carries (benchmarks/sashimi_gpu.sh unpacks it there).

    python benchmarks/pack_clips.py pack data/sc09 data/spoken-digits.clips.xz
    python benchmarks/pack_clips.py unpack data/spoken-digits.clips.xz data/spoken-digits

The codes are those of each clip min-max scaled to [−1, 1] (data/sc09.py); unpacking writes each code's value as
16-bit PCM: the centre of its μ-law bin, and ±1 for the extreme codes 0 and 255. A clip that is not constant holds
both (its min-max scaled minimum codes 0, its maximum 255), so the min-max scaling of the unpacked clip is the
identity, and the narrowest bin (1.7e-4 wide, at 0) is wider than 16-bit PCM's steps (3.1e-5): the sc09 dataset reads
back exactly the packed codes (tested; the lossy step is the quantization the model sees anyway). A constant clip is
all 128 either way. The val and test lists travel verbatim.
"""
from __future__ import annotations

import argparse
import json
import lzma
import struct
from pathlib import Path

import numpy as np
import torch

from ssmkit.data.audio import mu_law_decode, read_wav, write_wav
from ssmkit.data.sc09 import DIGITS, RATE, mu_law_clip

LISTS = ("validation_list.txt", "testing_list.txt")


def levels(codes: torch.Tensor) -> np.ndarray:
    """int16 samples for μ-law codes: each bin's centre, the extreme codes at ±1 (module docstring)."""
    x = mu_law_decode(codes.long(), dtype=torch.float64)
    x[codes == 0], x[codes == 255] = -1.0, 1.0
    return np.round(x.numpy() * 32767).astype(np.int16)


def pack(src: Path, out: Path) -> str:
    clips = sorted(p.relative_to(src).as_posix() for d in DIGITS for p in (src / d).glob("*.wav"))
    if not clips:
        raise ValueError(f"src: expected an SC09-layout folder (zero/ … nine/ of WAVs), {src} has no clips")
    codes, lengths = [], []
    for rel in clips:
        samples, rate = read_wav(src / rel)
        if rate != RATE:
            raise ValueError(f"{src / rel}: sampled at {rate} Hz, expected {RATE}")
        codes.append(mu_law_clip(samples[:RATE]).to(torch.uint8).numpy())
        lengths.append(len(codes[-1]))
    header = json.dumps({"rate": RATE, "clips": clips, "lengths": lengths,
                         "lists": {name: (src / name).read_text() for name in LISTS if (src / name).is_file()}})
    with lzma.open(out, "wb", preset=6) as f:
        f.write(struct.pack("<Q", len(header)) + header.encode())
        f.write(np.concatenate(codes).tobytes())
    return f"{out}: {len(clips)} clips, {out.stat().st_size / 1e6:.1f} MB"


def unpack(archive: Path, dst: Path) -> str:
    with lzma.open(archive, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        codes = np.frombuffer(f.read(), dtype=np.uint8)
    ends = np.cumsum(header["lengths"])
    if len(codes) != ends[-1]:
        raise ValueError(f"{archive}: holds {len(codes)} codes, its header lists {ends[-1]}")
    for d in DIGITS:
        (dst / d).mkdir(parents=True, exist_ok=True)
    for rel, end, n in zip(header["clips"], ends, header["lengths"]):
        write_wav(dst / rel, levels(torch.from_numpy(codes[end - n:end].copy())), header["rate"])
    for name, text in header["lists"].items():
        (dst / name).write_text(text)
    return f"{dst}: {len(header['clips'])} clips"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["pack", "unpack"])
    p.add_argument("source", type=Path, help="pack: an SC09-layout folder; unpack: an archive")
    p.add_argument("target", type=Path, help="pack: the archive to write; unpack: the folder to write")
    a = p.parse_args()
    print((pack if a.action == "pack" else unpack)(a.source, a.target))


if __name__ == "__main__":
    main()
