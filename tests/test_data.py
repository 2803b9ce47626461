import pytest
import torch

from ssmkit import data


def test_digits_splits_are_disjoint_complete_and_balanced():
    splits = {s: data.build("digits", None, s) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [1257, 180, 360]
    x, y = splits["train"][0]
    assert x.shape == (64, 1) and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.int64
    everything = torch.cat([splits[s].tensors[0].flatten(1) for s in splits])
    assert len(torch.unique(everything, dim=0)) > 1700  # the splits come from distinct images
    counts = torch.bincount(splits["test"].tensors[1], minlength=10)
    assert counts.min() >= 20


def test_permuted_digits_use_one_fixed_permutation():
    plain, perm = data.build("digits", None, "test"), data.build("digits", None, "test", permute=True, seed=3)
    x, xp = plain.tensors[0][:, :, 0], perm.tensors[0][:, :, 0]
    assert torch.equal(x.sum(1), xp.sum(1)) and not torch.equal(x, xp)
    order = [int((xp[:, j:j + 1] == x).all(0).nonzero()[0]) for j in range(5)]
    assert torch.equal(xp[:, :5], x[:, order])


def test_digits_as_images_are_the_row_major_sequences_and_resize_bilinearly():
    seq, img = data.build("digits", None, "test"), data.build("digits", None, "test", image=True)
    assert img.tensors[0].shape == (360, 8, 8, 1) and img.l_max == (8, 8)
    assert torch.equal(img.tensors[0].flatten(1, 2), seq.tensors[0])
    big = data.build("digits", None, "test", image=True, size=32)
    assert big.tensors[0].shape == (360, 32, 32, 1) and big.l_max == (32, 32)
    # bilinear upsampling by 4 (half-pixel centres, edges clamped) keeps each image's mean intensity
    assert torch.allclose(big.tensors[0].mean((1, 2, 3)), img.tensors[0].mean((1, 2, 3)), rtol=1e-5)
    assert not torch.equal(big.tensors[0][:, ::4, ::4], img.tensors[0])  # interpolated, not repeated pixels
    flat = data.build("digits", None, "test", size=16)
    assert flat.tensors[0].shape == (360, 256, 1) and flat.l_max == 256


def test_bad_dataset_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        data.build("digits", None, "dev")
    with pytest.raises(ValueError, match="permuted"):
        data.build("digits", None, "train", permuted=True)
    with pytest.raises(ValueError, match="size: expected a positive image side"):
        data.build("digits", None, "train", size=0)
    with pytest.raises(ValueError, match="permute: a permuted pixel order is not an image"):
        data.build("digits", None, "train", permute=True, image=True)


def test_text_folder_is_read_as_bytes_with_next_byte_targets(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_bytes(bytes(range(200)) * 5)
    (tmp_path / "sub" / "b.txt").write_text("héllo wörld " * 50)
    (tmp_path / "skip.bin").write_bytes(b"\x00" * 999)
    train = data.build("text", str(tmp_path), "train", seq_len=32)
    x, y = train[0]
    assert x.shape == y.shape == (32,) and x.dtype == torch.int64
    assert torch.equal(x[1:], y[:-1])  # y is x shifted by one byte
    stream = bytes(range(200)) * 5 + b"\n" + ("héllo wörld " * 50).encode()
    assert bytes(train.tensors[0][0].tolist()) == stream[:32]
    sizes = {s: len(data.build("text", str(tmp_path), s, seq_len=8)) for s in ("train", "val", "test")}
    assert sizes["train"] > 8 * sizes["val"] and sizes["val"] > 0 and sizes["test"] > 0
    assert train.vocab_size == 256 and train.task == "lm"


def test_text_loader_errors_say_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="set data_dir"):
        data.build("text", None, "train")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        data.build("text", str(tmp_path / "nope"), "train")
    with pytest.raises(FileNotFoundError, match="matches pattern"):
        data.build("text", str(tmp_path), "train")
    (tmp_path / "tiny.txt").write_text("abc")
    with pytest.raises(ValueError, match="fewer than seq_len"):
        data.build("text", str(tmp_path), "test", seq_len=64)


def test_adding_problem_targets_are_the_sum_of_the_two_marked_values():
    ds = data.build("adding", None, "val", length=40, n_eval=64)
    x, y = ds.tensors
    assert x.shape == (64, 40, 2) and y.shape == (64, 1) and ds.task == "regress"
    marks = x[..., 1]
    assert torch.equal(marks.sum(1), torch.full((64,), 2.0))
    assert (marks[:, :20].sum(1) == 1).all() and (marks[:, 20:].sum(1) == 1).all()  # one in each half
    assert torch.allclose((x[..., 0] * marks).sum(1, keepdim=True), y)
    other = data.build("adding", None, "test", length=40, n_eval=64)
    assert not torch.equal(other.tensors[0], x)  # splits are different draws
    with pytest.raises(ValueError, match="length"):
        data.build("adding", None, "train", length=1)


def test_digit_pairs_label_same_digit_pairs():
    ds = data.build("digits-pairs", None, "test", n_pairs=200)
    x, label = ds.tensors
    assert x.shape == (200, 2, 64, 1) and ds.pair
    images = data.build("digits", None, "test")
    lookup = {tuple(img.flatten().tolist()): int(c) for img, c in zip(*images.tensors)}
    classes = [(lookup[tuple(a.flatten().tolist())], lookup[tuple(b.flatten().tolist())]) for a, b in x]
    assert [int(a == b) for a, b in classes] == label.tolist()
    assert 0.4 < label.float().mean() < 0.7
