
import pytest
import torch

from ssmkit import data
from ssmkit.data.byte_tokens import EOS, VOCAB_SIZE

from datafiles import write_aan, write_imdb


def test_imdb_reads_the_release_folders_at_byte_level(tmp_path):
    reviews = write_imdb(tmp_path)
    test = data.build("lra-text", str(tmp_path), "test", l_max=64)
    assert len(test) == 20 and test.vocab_size == VOCAB_SIZE and test.n_classes == 2 and test.l_max == 64
    assert sorted(test.labels.tolist()) == [0] * 10 + [1] * 10
    for x, y, length in (test[i] for i in range(len(test))):
        assert x.dtype == torch.int64 and x.shape == (64,)
        assert x[length - 1] == EOS and (x[length:] == 0).all() and (x[:length - 1] > 0).all()
        body = bytes((x[:length - 1] - 1).tolist())
        matches = [k for k, v in reviews.items() if k[0] == "test" and v[:63] == body]
        assert len(matches) == 1 and (matches[0][1] == "pos") == bool(y)
    assert max(test.lengths) == 64  # long reviews are cut to l_max, EOS included
    train, val = (data.build("lra-text", str(tmp_path / "aclImdb"), s, l_max=64, val_fraction=0.25)
                  for s in ("train", "val"))
    assert (len(train), len(val)) == (15, 5)
    both = torch.cat([train.tokens, val.tokens])
    assert len(torch.unique(both, dim=0)) == 20  # train and val split the 20 training reviews


def test_imdb_at_character_level_as_the_official_s4_loader(tmp_path):
    """level=char: characters, a vocabulary of those seen min_freq times in the training reviews (<pad> 0, <unk> 1,
    <eos> 2, then most frequent first), EOS appended; val_fraction 0 validates on the test set."""
    reviews = write_imdb(tmp_path)
    options = dict(l_max=64, level="char", min_freq=3, val_fraction=0.0)
    train, val, test = (data.build("lra-text", str(tmp_path), s, **options) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (20, 20, 20) and torch.equal(val.tokens, test.tokens)
    assert train.vocab_size == test.vocab_size and train.padding_idx == 0
    from ssmkit.data.char_tokens import char_vocabulary
    texts = [v.decode() for k, v in reviews.items() if k[0] == "train"]
    vocabulary = char_vocabulary(texts, 64, 3)
    assert train.vocab_size == 3 + len(vocabulary) and vocabulary[" "] == 3  # the space: the most frequent
    x, y, length = test[0]
    text = reviews[("test", "neg", 0)].decode()[:63]
    expected = [vocabulary.get(c, 1) for c in text] + [2]
    assert x[:length].tolist() == expected and (x[length:] == 0).all()
    assert "0" not in vocabulary and x[11] == 1  # "neg review 0": the digit 0 is in 2 training reviews, < 3: <unk>
    assert "\u00e9" in vocabulary  # a character, not its two UTF-8 bytes
    with pytest.raises(ValueError, match="level: expected one of"):
        data.build("lra-text", str(tmp_path), "train", level="word")


def test_imdb_errors_say_where_the_data_comes_from(tmp_path):
    with pytest.raises(ValueError, match="aclImdb"):
        data.build("lra-text", None, "train")
    (tmp_path / "aclImdb" / "test" / "pos").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no reviews in .*neg"):
        data.build("lra-text", str(tmp_path), "test")


def test_aan_pairs_are_two_tower_byte_sequences(tmp_path):
    long_text = "x" * 5000
    rows = [["1.0", "P10-1001", "W05-0201", "we cite \"them\" here", long_text],
            ["0.0", "D09-1234", "J93-2003", "abstract one", "abstract two"]]
    write_aan(tmp_path / "lra_release" / "tsv_data", {"train": rows, "eval": rows[:1], "test": rows[1:]})
    train = data.build("lra-retrieval", str(tmp_path / "lra_release"), "train")
    assert train.pair and len(train) == 2 and train.l_max == 4000 and train.n_classes == 2
    x, y, lengths = train[0]
    assert x.shape == (2, 4000) and lengths.tolist() == [len(rows[0][3]) + 1, 4000] and y == 1
    assert bytes((x[0, :lengths[0] - 1] - 1).tolist()).decode() == rows[0][3]
    assert train[1][1] == 0
    assert len(data.build("lra-retrieval", str(tmp_path / "lra_release" / "tsv_data"), "val")) == 1


def test_aan_at_character_level_shares_the_training_vocabulary(tmp_path):
    rows = [["1", "A", "B", "caf\u00e9 cites", "it"], ["0", "C", "D", "plain", "text"]]
    write_aan(tmp_path / "tsv_data", {"train": rows, "eval": rows[:1], "test": [["1", "E", "F", "new words?", "x"]]})
    train, test = (data.build("lra-retrieval", str(tmp_path), s, l_max=16, level="char") for s in ("train", "test"))
    assert train.vocab_size == test.vocab_size and train.pair
    x, _, lengths = train[0]
    assert x.shape == (2, 16) and lengths.tolist() == [11, 3]  # "café cites": 10 characters (11 bytes) + EOS
    x, _, lengths = test[0]
    assert (x[0, :lengths[0] - 1] == 1).any()  # "?" and "w" never occur in training: <unk>


def test_aan_rejects_malformed_rows_by_file_and_row(tmp_path):
    write_aan(tmp_path, {"train": [["1", "a", "b", "only four"]], "eval": [["yes", "a", "b", "c", "d"]],
                         "test": [["2", "a", "b", "c", "d"]]})
    with pytest.raises(ValueError, match=r"new_aan_pairs.train.tsv: row 1 has 4 .* expected 5"):
        data.build("lra-retrieval", str(tmp_path), "train")
    with pytest.raises(ValueError, match="not a number"):
        data.build("lra-retrieval", str(tmp_path), "val")
    with pytest.raises(ValueError, match="expected 0 or 1"):
        data.build("lra-retrieval", str(tmp_path), "test")
    with pytest.raises(FileNotFoundError, match="lra_release"):
        data.build("lra-retrieval", str(tmp_path / "missing"), "test")
