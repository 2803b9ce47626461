"""The LRA text tasks, Text (IMDB sentiment) and Retrieval (AAN citation pairs), at byte or character level
(byte_tokens.py, char_tokens.py).

lra-text: the Large Movie Review Dataset as released (aclImdb_v1.tar.gz, extracted): data_dir is aclImdb/ (or the
    folder holding it), with train/{pos,neg}/*.txt and test/{pos,neg}/*.txt (train/unsup is not used); label 1 for
    pos, 0 for neg; each review cut to l_max = 4096 tokens (LRA). Validation is a seeded val_fraction of the training
    reviews, or with val_fraction 0 the test set (the LRA protocol the official code follows); test is the official
    test set.
lra-retrieval: the LRA release's tsv_data/new_aan_pairs.{train,eval,test}.tsv (eval is our val): tab-separated,
    no header, columns label, id of paper 1, id of paper 2, text 1, text 2; label 1 when one paper cites the other.
    Each text is cut to l_max = 4000 tokens; items are two-tower pairs, x (2, l_max) with lengths (2,).
The LRA release is lra_release.gz from github.com/google-research/long-range-arena.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch

from ..progress import progress
from .byte_tokens import VOCAB_SIZE, TokenDataset, encode_bytes
from .char_tokens import char_vocabulary, encode_chars, vocabulary_size
from .registry import data_folder, holdout, register_dataset

_IMDB_CLASSES = {"neg": 0, "pos": 1}
TEXT_LEVELS = ("byte", "char")
_AAN_SPLITS = {"train": "train", "val": "eval", "test": "test"}


def _read_imdb(root: Path, part: str) -> tuple[list[bytes], list[int]]:
    docs, labels = [], []
    for name, label in _IMDB_CLASSES.items():
        folder = root / part / name
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if not files:
            raise FileNotFoundError(f"data_dir: no reviews in {folder} (expected "
                                    f"aclImdb/{part}/{name}/<id>_<rating>.txt)")
        docs += [f.read_bytes() for f in progress(files, f"reading aclImdb/{part}/{name}")]
        labels += [label] * len(files)
    return docs, labels


def _texts(docs: list[bytes], where: str) -> list[str]:
    try:
        return [doc.decode("utf-8") for doc in docs]
    except UnicodeDecodeError as e:
        raise ValueError(f"data_dir: a review in {where} is not UTF-8 text ({e.reason}); level=byte reads it") from None


@register_dataset("lra-text", "LRA Text: IMDB sentiment, 4096 tokens of bytes (level=byte) or of characters with a "
                              "vocabulary from the training reviews (level=char, the official S4 reading); the "
                              "aclImdb folder in data_dir; val_fraction=0 validates on the test set, as the LRA code")
def lra_text(data_dir: str | None, split: str, l_max: int = 4096, val_fraction: float = 0.1,
             seed: int = 0, level: str = "byte", min_freq: int = 15) -> TokenDataset:
    """level byte: byte_tokens.py; char: char_tokens.py (min_freq). val_fraction 0: no held-out training reviews, the
    val split is the test set (the official S4 IMDB loader's val_split 0, "as done in the LRA paper")."""
    if level not in TEXT_LEVELS:
        raise ValueError(f"level: expected one of {TEXT_LEVELS}, got {level!r}")
    root = data_folder(data_dir, "the aclImdb folder of the Large Movie Review Dataset (aclImdb_v1.tar.gz from "
                                 "ai.stanford.edu/~amaas/data/sentiment, extracted)", inner="aclImdb")
    on_test = val_fraction == 0
    part = "test" if split == "test" or (split == "val" and on_test) else "train"
    docs, labels = _read_imdb(root, part)
    if level == "char":  # decoded once; the vocabulary comes from every training review, before any holdout
        docs = _texts(docs, f"aclImdb/{part}")
        vocabulary = char_vocabulary(docs if part == "train" else _texts(_read_imdb(root, "train")[0],
                                                                         "aclImdb/train"), l_max, min_freq)
    if part == "train" and not on_test:
        keep = holdout(len(docs), split, val_fraction, seed)
        docs, labels = [docs[i] for i in keep], [labels[i] for i in keep]
    if level == "byte":
        tokens, lengths = encode_bytes(docs, l_max)
        return TokenDataset(tokens, torch.tensor(labels), lengths, n_classes=2)
    tokens, lengths = encode_chars(docs, vocabulary, l_max)
    return TokenDataset(tokens, torch.tensor(labels), lengths, n_classes=2, vocab_size=vocabulary_size(vocabulary))


def _aan_label(row: list[str], where: str) -> int:
    if len(row) != 5:
        raise ValueError(f"{where} has {len(row)} tab-separated fields, expected 5 (label, id 1, id 2, text 1, text 2)")
    try:
        label = float(row[0])
    except ValueError:
        raise ValueError(f"{where}: the label {row[0]!r} is not a number") from None
    if label not in (0.0, 1.0):
        raise ValueError(f"{where}: the label is {row[0]!r}, expected 0 or 1")
    return int(label)


def read_aan(path: Path) -> tuple[list[int], list[str], list[str]]:
    """(labels, texts 1, texts 2) of an AAN pairs TSV."""
    if not path.is_file():
        raise FileNotFoundError(f"data_dir: no {path.name} in {path.parent} (the tsv_data folder of the LRA release, "
                                f"lra_release.gz)")
    labels, first, second = [], [], []
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a paper's text is far longer than csv's 128 KiB default
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
                labels.append(_aan_label(row, f"{path}: row {line}"))
                first.append(row[3])
                second.append(row[4])
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    if not labels:
        raise ValueError(f"{path}: the file has no rows")
    return labels, first, second


@register_dataset("lra-retrieval", "LRA Retrieval: AAN citation pairs, 4000 tokens each (bytes, or with level=char "
                                   "characters from the training texts' vocabulary as the official S4 loader), "
                                   "two-tower (tsv_data/new_aan_pairs.*.tsv in data_dir)")
def lra_retrieval(data_dir: str | None, split: str, l_max: int = 4000, level: str = "byte",
                  min_freq: int = 1) -> TokenDataset:
    """level byte: byte_tokens.py; char: char_tokens.py over both texts of the training pairs (min_freq 1: every
    character seen, as the official S4 AAN loader)."""
    if level not in TEXT_LEVELS:
        raise ValueError(f"level: expected one of {TEXT_LEVELS}, got {level!r}")
    root = data_folder(data_dir, "the LRA release's tsv_data folder (new_aan_pairs.train.tsv, ...; lra_release.gz)",
                       inner="tsv_data")
    labels, first, second = read_aan(root / f"new_aan_pairs.{_AAN_SPLITS[split]}.tsv")
    if level == "byte":
        (t1, n1), (t2, n2) = (encode_bytes([t.encode() for t in texts], l_max) for texts in (first, second))
        vocab_size = VOCAB_SIZE
    else:
        train = (first, second) if split == "train" else read_aan(root / "new_aan_pairs.train.tsv")[1:]
        vocabulary = char_vocabulary([t for texts in train for t in texts], l_max, min_freq)
        (t1, n1), (t2, n2) = (encode_chars(texts, vocabulary, l_max) for texts in (first, second))
        vocab_size = vocabulary_size(vocabulary)
    ds = TokenDataset(torch.stack([t1, t2], 1), torch.tensor(labels), torch.stack([n1, n2], 1), n_classes=2,
                      vocab_size=vocab_size)
    ds.pair = True
    return ds
