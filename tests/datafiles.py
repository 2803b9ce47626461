"""Writers of tiny dataset files in exactly the release formats, for the loader and experiment tests."""
import csv
import gzip
import math
import pickle
import struct
import wave

import numpy as np


def write_idx(path, array: np.ndarray, gz: bool):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_mnist(root, n_train=50, n_test=20):
    """The four MNIST IDX files (the training ones gzipped)."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28))
        labels = np.arange(n) % 10
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, gz=prefix == "train")
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels, gz=False)
    return root


def write_cifar(root, per_batch=4, n_test=6):
    """cifar-10-batches-py/ with data_batch_1..5 and test_batch, pickled as the python release."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"labels": list(rng.integers(0, 10, n)),
                 b"batch_label": name.encode()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def write_imdb(root, n_per_class=10):
    """aclImdb as released: {train,test}/{pos,neg}/<id>_<rating>.txt, plus the unused train/unsup."""
    reviews = {}
    for part in ("train", "test"):
        for name, rating in (("pos", 9), ("neg", 2)):
            folder = root / "aclImdb" / part / name
            folder.mkdir(parents=True)
            for i in range(n_per_class):
                repeats = i * 40 if name == "pos" else 1
                text = f"{name} review {i} of {part}: caf\u00e9 " + "so good<br /><br />" * repeats
                (folder / f"{i}_{rating}.txt").write_text(text, encoding="utf-8")
                reviews[(part, name, i)] = text.encode()
    (root / "aclImdb" / "train" / "unsup").mkdir()
    (root / "aclImdb" / "train" / "unsup" / "0_0.txt").write_text("unlabeled")
    return reviews


def write_aan(folder, rows_by_split):
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        with open(folder / f"new_aan_pairs.{split}.tsv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter="\t").writerows(rows)


UEA_HEADER = """#Example of a multivariate, unequal-length UEA file, as the archive writes them
@problemName Toy
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down flat
@data
"""


def write_uea(folder, name, cases):
    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in cases.items():
        lines = [":".join(",".join(v for v in dim) for dim in dims) + f":{label}" for dims, label in rows]
        (folder / f"{name}_{part}.ts").write_text(UEA_HEADER + "\n".join(lines) + "\n")


def toy_cases(rng, n, labels=("up", "down", "flat")):
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        length = int(rng.integers(5, 9))
        slope = {"up": 1.0, "down": -1.0, "flat": 0.0}[label]
        a = [f"{slope * t + rng.normal():.3f}" for t in range(length)]
        b = [f"{rng.normal():.3f}" for _ in range(length)]
        if i == 1:
            b[2] = "?"
        rows.append(((a, b), label))
    return rows


BIDMC_HEADER = """@problemName BIDMC32{target}
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength true
@seriesLength {length}
@classLabel false
@targetLabel true
@data
"""


def write_bidmc(folder, target, n_train, n_test, length=40, seed=0):
    rng = np.random.default_rng(seed)
    values = {}
    for part, n in (("TRAIN", n_train), ("TEST", n_test)):
        lines = []
        for i in range(n):
            ppg, ecg = rng.normal(size=length), rng.normal(size=length)
            y = float(rng.uniform(10, 30))
            values[(part, i)] = y
            lines.append(",".join(f"{v:.5f}" for v in ppg) + ":" + ",".join(f"{v:.5f}" for v in ecg) + f":{y:.4f}")
        (folder / f"BIDMC32{target}_{part}.ts").write_text(BIDMC_HEADER.format(target=target, length=length) +
                                                          "\n".join(lines) + "\n")
    return values


def write_wav(path, samples, rate=16000, width=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples, dtype="<i2" if width == 2 else np.uint8).tobytes())


def write_music_folder(root, lengths, rate=16000, seed=0):
    """The Beethoven / YouTubeMix layout: WAVs 1.wav … n.wav of the given lengths (every third one stereo) in one
    folder; returns each file's samples averaged over its channels (float64)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    mono = {}
    for i, n in enumerate(lengths, 1):
        channels = 2 if i % 3 == 0 else 1
        frames = rng.integers(-30000, 30000, (n, channels)).astype("<i2")
        with wave.open(str(root / f"{i}.wav"), "wb") as f:
            f.setnchannels(channels)
            f.setsampwidth(2)
            f.setframerate(rate)
            f.writeframes(frames.tobytes())
        mono[f"{i}.wav"] = frames.mean(1, dtype=np.float64)
    return mono


def write_speech_commands(root, words, per_word=3, seed=0):
    """The v0.02 layout: <word>/<speaker>_nohash_<n>.wav, _background_noise_/, and the two lists."""
    rng = np.random.default_rng(seed)
    val, test, clips = [], [], {}
    for w, word in enumerate(words):
        for n in range(per_word):
            rel = f"{word}/{w:04x}beef_nohash_{n}.wav"
            length = 16000 if n else 12000  # some clips are shorter than a second
            samples = (3000 * np.sin(2 * math.pi * (200 + 50 * w) * np.arange(length) / 16000)
                       + rng.normal(0, 100, length)).astype(np.int16)
            write_wav(root / rel, samples)
            clips[rel] = samples
            (val if n == 1 else test if n == 2 else []).append(rel)
    write_wav(root / "_background_noise_" / "white_noise.wav", rng.normal(0, 1000, 16000 * 3).astype(np.int16))
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    return clips




def write_uea_equal(folder, name, n_train, n_test, length=24, dims=3, seed=0):
    """An equal-length multivariate UEA pair {name}_TRAIN.ts / _TEST.ts of smooth noisy sines, two classes."""
    rng = np.random.default_rng(seed)
    header = (f"@problemName {name}\n@timeStamps false\n@missing false\n@univariate false\n@dimensions {dims}\n"
              f"@equalLength true\n@seriesLength {length}\n@classLabel true a b\n@data\n")
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("TRAIN", n_train), ("TEST", n_test)):
        lines = []
        for i in range(n):
            t = np.arange(length) / 4 + rng.uniform(0, 6)
            dims_text = [",".join(f"{10 + 3 * np.sin(t + d) + 0.1 * rng.normal():.4f}" for t in t) for d in range(dims)]
            lines.append(":".join(dims_text) + f":{'ab'[i % 2]}")
        (folder / f"{name}_{part}.ts").write_text(header + "\n".join(lines) + "\n")
