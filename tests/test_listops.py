"""ListOps: the generator follows the LRA rules and writes the LRA TSV format; the loader reads it back."""
import csv

import numpy as np
import pytest
import torch

from ssmkit import data
from ssmkit.data.listops import EOS, VOCAB, evaluate, generate_tree, to_source, tokenize, write_listops


def test_operators_evaluate_as_in_lra():
    assert evaluate(("[MIN", [3, 7, 1])) == 1 and evaluate(("[MAX", [3, 7, 1])) == 7
    assert evaluate(("[MED", [3, 8])) == 5 and evaluate(("[MED", [1, 2, 9])) == 2  # int(np.median)
    assert evaluate(("[SM", [9, 8, 7])) == 4
    assert evaluate(("[MAX", [2, ("[MIN", [4, 7]), 0])) == 4


def test_source_string_is_the_lra_left_nested_form():
    assert to_source(("[MAX", [2, 9])) == "( ( ( [MAX 2 ) 9 ) ] )"
    assert tokenize(to_source(("[SM", [1, ("[MIN", [4, 7]), 0]))) == ["[SM", "1", "[MIN", "4", "7", "]", "0", "]"]


def test_generated_lengths_count_tokens_and_respect_depth():
    rng = np.random.default_rng(0)
    for _ in range(200):
        tree, length = generate_tree(rng, max_depth=4, max_args=5)
        assert len(tokenize(to_source(tree))) == length

        def depth(t):
            return 0 if isinstance(t, int) else 1 + max(depth(c) for c in t[1])

        assert depth(tree) <= 3  # nodes at depth max_depth are digits


def test_generator_files_are_read_by_the_loader_with_evaluated_labels(tmp_path):
    write_listops(tmp_path, 30, 5, 5, seed=1, min_length=20, max_length=200, max_depth=6)
    with open(tmp_path / "basic_train.tsv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["Source", "Target"] and len(rows) == 31
    assert all(20 < len(tokenize(src)) < 200 for src, _ in rows[1:])
    train = data.build("listops", str(tmp_path), "train", max_length=200)
    assert len(train) == 30 and train.tensors[0].shape == (30, 200) and train.vocab_size == 16
    inverse = {i: t for t, i in VOCAB.items()}
    for (src, target), (x, y) in zip(rows[1:], zip(*train.tensors[:2])):
        assert [inverse[i] for i in x.tolist() if i] == tokenize(src) and int(y) == int(target)
    sources = {r[0] for r in rows[1:]}
    with open(tmp_path / "basic_test.tsv", newline="") as f:
        assert not sources & {r[0] for r in list(csv.reader(f, delimiter="\t"))[1:]}  # distinct expressions


def test_listops_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="data_dir"):
        data.build("listops", None, "train")
    with pytest.raises(FileNotFoundError, match="basic_train.tsv"):
        data.build("listops", str(tmp_path), "train")
    (tmp_path / "basic_val.tsv").write_text("input\tlabel\n[MAX 1 2 ]\t2\n")
    with pytest.raises(ValueError, match="header"):
        data.build("listops", str(tmp_path), "val")
    (tmp_path / "basic_val.tsv").write_text("Source\tTarget\n( [FIRST 1 2 ] )\t1\n")
    with pytest.raises(ValueError, match="outside the ListOps vocabulary"):
        data.build("listops", str(tmp_path), "val")


def test_listops_items_carry_their_length_for_pooling(tmp_path):
    write_listops(tmp_path, 8, 2, 2, seed=3, min_length=10, max_length=60, max_depth=4)
    ds = data.build("listops", str(tmp_path), "train", max_length=60)
    x, y, lengths = ds.tensors
    assert torch.equal(lengths, (x > 0).sum(1))  # tokens are ids >= 1, padding is 0


def test_eos_ends_each_expression_as_the_official_loader(tmp_path):
    write_listops(tmp_path, 8, 2, 2, seed=3, min_length=10, max_length=60, max_depth=4)
    plain = data.build("listops", str(tmp_path), "train", max_length=60)
    ended = data.build("listops", str(tmp_path), "train", max_length=60, eos=True)
    x, _, lengths = plain.tensors
    xe, _, le = ended.tensors
    assert torch.equal(le, lengths + 1) and (xe[torch.arange(len(le)), le - 1] == EOS).all()
    assert torch.equal(xe[:, :-1] * (xe[:, :-1] != EOS), x[:, :-1]) and ended.vocab_size == plain.vocab_size + 1
    cut = data.build("listops", str(tmp_path), "train", max_length=12, eos=True)
    assert (cut.tensors[2] <= 12).all() and (cut.tensors[0][cut.tensors[2] == 12, 11] == EOS).all()



def test_a_subset_keeps_the_attributes_the_trainer_reads(tmp_path):
    """data.subset (evaluation's shards across processes, drop_last's whole batches, take) keeps the split's
    attributes (registry.ATTRIBUTES: its task, classes, padding, a collate where it has one), which a plain torch
    Subset loses: the trainer's Task of a shard is the split's."""
    from ssmkit.data.registry import ATTRIBUTES
    from ssmkit.train.task import Task
    write_listops(tmp_path, 8, 4, 4, min_length=5, max_length=40)
    split = data.build("listops", str(tmp_path), "val", max_length=40)
    part = data.subset(split, range(1, 4, 2))
    kept = [key for key in ATTRIBUTES if hasattr(split, key)]
    assert len(part) == 2 and "n_classes" in kept and all(getattr(part, k) == getattr(split, k) for k in kept)
    assert Task(part).metric == Task(split).metric and torch.equal(part[1][0], split[3][0])
