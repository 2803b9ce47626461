"""Sequential-image loaders on tiny files written in exactly the release formats (MNIST IDX, CIFAR-10 python)."""
import gzip
import pickle

import numpy as np
import pytest
import torch

from ssmkit import data

from datafiles import write_cifar, write_idx, write_mnist


@pytest.fixture
def mnist_dir(tmp_path):
    return write_mnist(tmp_path)


def test_smnist_reads_idx_files_plain_and_gzipped(mnist_dir):
    train, val, test = (data.build("smnist", str(mnist_dir), s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (45, 5, 20)
    x, y = train[3]
    assert x.shape == (784, 1) and 0 <= x.min() and x.max() <= 1 and train.l_max == 784 and train.n_classes == 10
    with gzip.open(mnist_dir / "train-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(50, 784)
    assert torch.allclose(train.tensors[0][3, :, 0], torch.from_numpy(raw[3] / 255.0).float())
    assert int(y) == 3 and val.tensors[1].tolist() == [5, 6, 7, 8, 9]  # val is the end of the official train set
    standard = data.build("smnist", str(mnist_dir), "train", normalize=True)  # the CCNN code's standardization
    assert torch.allclose(standard.tensors[0][3, :, 0], torch.from_numpy((raw[3] / 255.0 - 0.1307) / 0.3081).float())


def test_psmnist_is_one_fixed_permutation_of_smnist(mnist_dir):
    plain, perm = data.build("smnist", str(mnist_dir), "test"), data.build("psmnist", str(mnist_dir), "test", seed=7)
    order = np.random.default_rng(7).permutation(784)
    assert torch.equal(perm.tensors[0], plain.tensors[0][:, order])
    assert not torch.equal(perm.tensors[0], data.build("psmnist", str(mnist_dir), "test", seed=8).tensors[0])


def test_mnist_errors_say_what_file_is_wrong(mnist_dir, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        data.build("smnist", str(empty), "train")
    with pytest.raises(ValueError, match="set it to the folder"):
        data.build("smnist", None, "train")
    (mnist_dir / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        data.build("smnist", str(mnist_dir), "test")
    write_idx(mnist_dir / "t10k-labels-idx1-ubyte", np.arange(7), gz=False)
    with pytest.raises(ValueError, match="do not match"):
        data.build("smnist", str(mnist_dir), "test")


@pytest.fixture
def cifar_dir(tmp_path):
    return write_cifar(tmp_path)


def test_scifar_reads_python_batches_as_rgb_pixel_sequences(cifar_dir):
    train, val, test = (data.build("scifar", str(cifar_dir), s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (18, 2, 6)
    with open(cifar_dir / "cifar-10-batches-py" / "test_batch", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    img = batch[b"data"][2].reshape(3, 32, 32)
    x = test.tensors[0][2]
    assert x.shape == (1024, 3)
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.247, 0.243, 0.261])  # the official loader's
    assert torch.allclose(x[32 * 5 + 7], torch.from_numpy((img[:, 5, 7] / 255.0 - mean) / std).float())  # row 5, col 7
    assert test.tensors[1].tolist() == list(batch[b"labels"])
    plain = data.build("scifar", str(cifar_dir), "test", normalize=False).tensors[0][2]
    assert torch.allclose(plain[32 * 5 + 7], torch.from_numpy(img[:, 5, 7] / 255.0).float())


def test_scifar_grayscale_is_the_lra_image_input(cifar_dir):
    gray = data.build("scifar", str(cifar_dir), "test", grayscale=True)
    rgb = data.build("scifar", str(cifar_dir), "test", normalize=False)
    assert gray.d_input == 1 and gray.tensors[0].shape == (6, 1024, 1)
    expected = (rgb.tensors[0] @ torch.tensor([0.299, 0.587, 0.114]) - 122.6 / 255) / (61 / 255)
    assert torch.allclose(gray.tensors[0][..., 0], expected, atol=1e-5)


def test_scifar_images_are_channels_last_32x32(cifar_dir):
    seq, img = data.build("scifar", str(cifar_dir), "test"), data.build("scifar", str(cifar_dir), "test", image=True)
    assert img.tensors[0].shape == (6, 32, 32, 3) and img.l_max == (32, 32) and img.d_input == 3
    assert torch.equal(img.tensors[0].flatten(1, 2), seq.tensors[0])
    assert data.build("scifar", str(cifar_dir), "test", image=True, size=16).tensors[0].shape == (6, 16, 16, 3)


def test_cifar_errors_name_the_batch(cifar_dir):
    (cifar_dir / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="no data_batch_3"):
        data.build("scifar", str(cifar_dir), "train")
    with open(cifar_dir / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({b"pixels": 1}, f)
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch"):
        data.build("scifar", str(cifar_dir), "test")
