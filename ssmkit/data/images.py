"""Sequential images, read from the standard release files in data_dir.

smnist / psmnist: MNIST as 784 pixels in row-major order (1 feature, scaled to [0, 1] as the S4 code leaves them;
    normalize=True standardizes them with 0.1307 and 0.3081, as the CCNN code does); psMNIST applies one fixed,
    seeded permutation. Files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte, each optionally gzipped (.gz), as distributed by the MNIST site.
scifar: CIFAR-10 as 1024 pixels with 3 features (R, G, B), standardized as the official S4 loader does
    (x − mean)/std with means (0.4914, 0.4822, 0.4465) and deviations (0.247, 0.243, 0.261); grayscale=True gives 1
    feature (the LRA Image task: 0.299 R + 0.587 G + 0.114 B, standardized with 122.6/255 and 61/255); normalize=False
    keeps values in [0, 1]; image=True gives (n, 32, 32, C) channels-last images (S4ND's CIFAR-2D), and size resizes
    (data/grid.py). Files: the python version's folder cifar-10-batches-py/ (data_batch_1..5,
    test_batch: pickled dicts with b"data" (10000, 3072) uint8, channel planes, and b"labels").
Validation is the last val_fraction of the official training set (a fixed split); test is the official test set.
The CIFAR-10 python release is a pickle; it is read with an unpickler that builds only dicts, lists, bytes and numpy
arrays, so a file with anything else (code to run) is refused with an error naming it.
"""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .grid import check_size, pixel_grid
from .registry import check_fraction, check_labels, data_folder, register_dataset

_MNIST = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
WHERE = {"mnist": "the four IDX files of MNIST (train-images-idx3-ubyte[.gz], ...)",
         "cifar": "cifar-10-batches-py/ from the CIFAR-10 python release (cifar-10-python.tar.gz, extracted)"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (unsigned bytes): big-endian magic 0x00000800 + ndim, the dims as uint32, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; a truncated stream is an EOFError
        raise ValueError(f"{path}: unreadable ({e}); a .gz must be a complete gzip file") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, expected 0000 08 0n)")
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: the header is cut short ({len(raw)} bytes; {ndim} dimensions need {4 + 4 * ndim})")
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
    check_fraction("val_fraction", val_fraction)
    n_val = int(round(len(y) * val_fraction))
    return (x[:-n_val], y[:-n_val]) if split == "train" else (x[-n_val:], y[-n_val:])


def _dataset(x: np.ndarray, y: np.ndarray, d_input: int) -> TensorDataset:
    ds = TensorDataset(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                       torch.from_numpy(y.astype(np.int64)))
    ds.d_input, ds.n_classes, ds.l_max = d_input, 10, x.shape[1]
    return ds


def _mnist(data_dir, split: str, permute: bool, seed: int, val_fraction: float, normalize: bool) -> TensorDataset:
    root = data_folder(data_dir, f"the folder holding {WHERE['mnist']}")
    images_name, labels_name = _MNIST["test" if split == "test" else "train"]
    images_path, labels_path = _idx_file(root, images_name), _idx_file(root, labels_name)
    images, labels = read_idx(images_path), read_idx(labels_path)
    check_labels(labels, 10, labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"data_dir: {root}: images {images.shape} and labels {labels.shape} do not match "
                         f"(expected (n, 28, 28) and (n,))")
    x = images.reshape(len(images), -1, 1) / 255.0
    if normalize:
        x = (x - MNIST_MEAN) / MNIST_STD
    if split != "test":
        x, labels = _split_train(x, labels, split, val_fraction)
    if permute:
        x = x[:, np.random.default_rng(seed).permutation(x.shape[1])]
    return _dataset(x, labels, 1)


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the standardization of the CCNN code (datamodules/mnist.py)


@register_dataset("smnist", "sequential MNIST, 784 pixels (IDX files in data_dir)")
def smnist(data_dir: str | None, split: str, val_fraction: float = 0.1, normalize: bool = False) -> TensorDataset:
    return _mnist(data_dir, split, False, 0, val_fraction, normalize)


@register_dataset("psmnist", "permuted sequential MNIST (one seeded permutation; IDX files in data_dir)")
def psmnist(data_dir: str | None, split: str, seed: int = 0, val_fraction: float = 0.1,
            normalize: bool = False) -> TensorDataset:
    return _mnist(data_dir, split, True, seed, val_fraction, normalize)


class _Refused(pickle.UnpicklingError):
    pass


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only what a CIFAR-10 python batch holds: dicts, lists, bytes, numbers and numpy arrays
    (of numbers: checked after loading). Any other global, such as a planted os.system, is refused, never called."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                 for name in ("_reconstruct", "scalar"))}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise _Refused(f"refused to load {module}.{name}: a CIFAR-10 batch holds only dicts, lists, "
                                         f"bytes and numpy arrays")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"data_dir: no {path.name} in {path.parent} ({WHERE['cifar']})")
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except _Refused as e:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({e})") from None
    except Exception as e:  # a truncated or corrupt pickle raises many types (EOFError, ValueError, KeyError, ...)
        raise ValueError(f"{path}: not a readable CIFAR-10 python batch, corrupt or truncated "
                         f"({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path}: not a CIFAR-10 python batch (expected a dict with b'data' and b'labels')")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shown = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' is {shown}, expected uint8 (n, 3072)")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: b'labels' holds {labels.shape} {labels.dtype} values for {len(data)} images, "
                         f"expected {len(data)} integers")
    check_labels(labels, 10, path)
    return data, labels


# the official S4 loader's standardization (state-spaces/s4 src/dataloaders/basic.py, CIFAR10): (means, deviations)
CIFAR_RGB = ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))
CIFAR_GRAY = ((122.6 / 255.0,), (61.0 / 255.0,))


@register_dataset("scifar", "sequential CIFAR-10, 1024 pixels x RGB, or grayscale=True for LRA Image; image=True "
                            "for 32x32 images (cifar-10-batches-py in data_dir)")
def scifar(data_dir: str | None, split: str, grayscale: bool = False, val_fraction: float = 0.1, image: bool = False,
           size: int = 32, normalize: bool = True) -> TensorDataset:
    folder = data_folder(data_dir, f"the folder holding {WHERE['cifar']}", inner="cifar-10-batches-py")
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    parts = [_cifar_batch(folder / name) for name in names]
    data, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    rgb = data.reshape(-1, 3, 1024).transpose(0, 2, 1) / 255.0  # (n, 1024, 3): pixel order row-major
    x = (rgb @ np.array([0.299, 0.587, 0.114]))[..., None] if grayscale else rgb
    if normalize:
        mean, std = CIFAR_GRAY if grayscale else CIFAR_RGB
        x = (x - np.asarray(mean)) / np.asarray(std)
    if split != "test":
        x, labels = _split_train(x, labels, split, val_fraction)
    grid = pixel_grid(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), 32, check_size(size, 32), image)
    ds = _dataset(grid.numpy(), labels, x.shape[-1])
    ds.l_max = tuple(grid.shape[1:3]) if image else grid.shape[1]
    return ds
