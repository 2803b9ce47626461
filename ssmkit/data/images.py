"""Sequential images, read from the standard release files in data_dir.

smnist / psmnist: MNIST as 784 pixels in row-major order (1 feature, scaled to [0, 1]); psMNIST applies one fixed,
    seeded permutation. Files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte, each optionally gzipped (.gz), as distributed by the MNIST site.
scifar: CIFAR-10 as 1024 pixels with 3 features (R, G, B in [0, 1]); grayscale=True gives 1 feature (the LRA Image
    task: 0.299 R + 0.587 G + 0.114 B). Files: the python version's folder cifar-10-batches-py/ (data_batch_1..5,
    test_batch: pickled dicts with b"data" (10000, 3072) uint8, channel planes, and b"labels").
Validation is the last val_fraction of the official training set (a fixed split); test is the official test set.
The CIFAR-10 python release is a pickle, and unpickling runs code: point data_dir only at files you trust.
"""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .registry import data_folder, register_dataset

_MNIST = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
WHERE = {"mnist": "the four IDX files of MNIST (train-images-idx3-ubyte[.gz], ...)",
         "cifar": "cifar-10-batches-py/ from the CIFAR-10 python release (cifar-10-python.tar.gz, extracted)"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (unsigned bytes): big-endian magic 0x00000800 + ndim, the dims as uint32, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, expected 0000 08 0n)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} = {int(np.prod(dims))} values, the file holds {data.size}")
    return data.reshape(dims)


def _idx_file(root: Path, name: str) -> Path:
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"data_dir: {root} has neither {name} nor {name}.gz ({WHERE['mnist']})")


def _split_train(x: np.ndarray, y: np.ndarray, split: str, val_fraction: float):
    n_val = int(round(len(y) * val_fraction))
    return (x[:-n_val], y[:-n_val]) if split == "train" else (x[-n_val:], y[-n_val:])


def _dataset(x: np.ndarray, y: np.ndarray, d_input: int) -> TensorDataset:
    ds = TensorDataset(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                       torch.from_numpy(y.astype(np.int64)))
    ds.d_input, ds.n_classes, ds.l_max = d_input, 10, x.shape[1]
    return ds


def _mnist(data_dir, split: str, permute: bool, seed: int, val_fraction: float) -> TensorDataset:
    root = data_folder(data_dir, f"the folder holding {WHERE['mnist']}")
    images_name, labels_name = _MNIST["test" if split == "test" else "train"]
    images, labels = read_idx(_idx_file(root, images_name)), read_idx(_idx_file(root, labels_name))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"data_dir: {root}: images {images.shape} and labels {labels.shape} do not match "
                         f"(expected (n, 28, 28) and (n,))")
    x = images.reshape(len(images), -1, 1) / 255.0
    if split != "test":
        x, labels = _split_train(x, labels, split, val_fraction)
    if permute:
        x = x[:, np.random.default_rng(seed).permutation(x.shape[1])]
    return _dataset(x, labels, 1)


@register_dataset("smnist", "sequential MNIST, 784 pixels (IDX files in data_dir)")
def smnist(data_dir: str | None, split: str, val_fraction: float = 0.1) -> TensorDataset:
    return _mnist(data_dir, split, False, 0, val_fraction)


@register_dataset("psmnist", "permuted sequential MNIST (one seeded permutation; IDX files in data_dir)")
def psmnist(data_dir: str | None, split: str, seed: int = 0, val_fraction: float = 0.1) -> TensorDataset:
    return _mnist(data_dir, split, True, seed, val_fraction)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"data_dir: no {path.name} in {path.parent} ({WHERE['cifar']})")
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path}: not a CIFAR-10 python batch (expected a dict with b'data' and b'labels')")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' has shape {data.shape}, expected (n, 3072)")
    return data, np.asarray(batch[b"labels"])


@register_dataset("scifar", "sequential CIFAR-10, 1024 pixels x RGB, or grayscale=True for LRA Image "
                            "(cifar-10-batches-py in data_dir)")
def scifar(data_dir: str | None, split: str, grayscale: bool = False, val_fraction: float = 0.1) -> TensorDataset:
    folder = data_folder(data_dir, f"the folder holding {WHERE['cifar']}", inner="cifar-10-batches-py")
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    parts = [_cifar_batch(folder / name) for name in names]
    data, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    rgb = data.reshape(-1, 3, 1024).transpose(0, 2, 1) / 255.0  # (n, 1024, 3): pixel order row-major
    x = (rgb @ np.array([0.299, 0.587, 0.114]))[..., None] if grayscale else rgb
    if split != "test":
        x, labels = _split_train(x, labels, split, val_fraction)
    return _dataset(x, labels, x.shape[-1])
