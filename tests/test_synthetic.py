import pytest
import torch

from ssmkit import data
from ssmkit.data.registry import IGNORE
from ssmkit.train.task import Task


def test_copying_targets_repeat_the_tokens_after_the_marker_and_nothing_else_is_scored():
    ds = data.build("copying", None, "train", copy_length=5, delay=7, n_tokens=4, n_train=64)
    x, y = ds.tensors
    assert x.shape == y.shape == (64, 2 * 5 + 7) and ds.l_max == 17 and ds.vocab_size == 6 and ds.task == "lm"
    assert torch.equal(y[:, 12:], x[:, :5]) and (y[:, :12] == IGNORE).all()
    assert ((x[:, :5] >= 1) & (x[:, :5] <= 4)).all() and (x[:, 12] == 5).all()
    assert (x[:, 5:12] == 0).all() and (x[:, 13:] == 0).all()
    other = data.build("copying", None, "val", copy_length=5, delay=7, n_tokens=4, n_eval=64)
    assert not torch.equal(other.tensors[0], x)  # splits are different draws


def test_associative_recall_target_is_the_value_stored_with_the_queried_key():
    ds = data.build("associative-recall", None, "test", n_pairs=6, n_keys=10, n_values=5, n_eval=200)
    x, y = ds.tensors
    assert x.shape == (200, 13) and (y[:, :-1] == IGNORE).all()
    for row, target in zip(x, y[:, -1]):
        keys, values = row[:-1:2], row[1:-1:2]
        assert len(set(keys.tolist())) == 6 and ((keys >= 1) & (keys <= 10)).all()
        assert ((values > 10) & (values <= 15)).all()
        assert target == values[(keys == row[-1]).nonzero()[0, 0]]
    with pytest.raises(ValueError, match="n_pairs"):
        data.build("associative-recall", None, "test", n_pairs=11, n_keys=10)
    with pytest.raises(ValueError, match="delay"):
        data.build("copying", None, "test", delay=0)


def test_task_leaves_ignored_targets_out_of_loss_metric_and_count():
    ds = data.build("copying", None, "train", copy_length=3, delay=2, n_tokens=4, n_train=2)
    x, y = ds.tensors
    logits = torch.randn(2, 8, ds.n_classes)
    logits[0, 5, y[0, 5]] = 100.0  # one right answer among the 6 scored positions
    logits[0, 6:].zero_()
    logits[0, 6:, 0] = 1.0
    logits[1, 5:].zero_()
    logits[1, 5:, 0] = 1.0
    loss, correct, count = Task(ds).sums(logits, y)
    assert count == 6 and correct == 1
    scored = y != IGNORE
    expected = torch.nn.functional.cross_entropy(logits[scored], y[scored], reduction="sum")
    torch.testing.assert_close(loss, expected)
