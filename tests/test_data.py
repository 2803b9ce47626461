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


def test_bad_dataset_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        data.build("digits", None, "dev")
    with pytest.raises(ValueError, match="permuted"):
        data.build("digits", None, "train", permuted=True)
