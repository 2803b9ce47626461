"""ListOps (Long Range Arena): a generator following the LRA rules, and the loader of the LRA TSV files.

An expression is a tree of operators over digits: [MIN, [MAX, [MED (the median, truncated to an int) and [SM (sum
mod 10), each closed by "]". Generation, as in LRA: below max_depth a node is an operator with probability 0.25
(else a digit 0-9), with 2..max_args arguments; at max_depth it is a digit; a tree's length counts its digits and,
for each operator, the operator token and its "]"; trees with min_length < length < max_length are kept (LRA: 500,
2000, depth 10, 10 arguments). Files: {task}_train.tsv, {task}_val.tsv, {task}_test.tsv, tab-separated with a
"Source\tTarget" header; Source writes each operator application as left-nested pairs in parentheses, e.g.
"( ( ( [MAX 2 ) 9 ) ] )". The loader drops the parentheses (as LRA's tokenizer does) and maps the 15 symbols to ids
1..15 (0 pads to max_length; with eos, id 16 ends each expression, as the official S4 loader appends EOS); items are
(x, label, length), and the model pools over the first `length` positions.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .registry import check_labels, output_folder, register_dataset

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
VOCAB = {tok: i + 1 for i, tok in enumerate([str(d) for d in range(10)] + list(OPERATORS) + [END])}  # 0: padding
EOS = len(VOCAB) + 1  # ends an expression with eos=True (the official S4 loader's append_eos)


def generate_tree(rng: np.random.Generator, max_depth: int, max_args: int, depth: int = 1):
    """A random expression: an int, or (operator, [children]); returns (tree, length in tokens)."""
    if depth >= max_depth or rng.random() > 0.25:
        return int(rng.integers(10)), 1
    children, length = [], 2
    for _ in range(int(rng.integers(2, max_args + 1))):
        child, n = generate_tree(rng, max_depth, max_args, depth + 1)
        children.append(child)
        length += n
    return (OPERATORS[int(rng.integers(len(OPERATORS)))], children), length


def evaluate(tree) -> int:
    if isinstance(tree, int):
        return tree
    op, children = tree
    values = [evaluate(c) for c in children]
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        return int(np.median(values))
    return sum(values) % 10


def to_source(tree) -> str:
    """The LRA string: ((op c0) c1) ... END, each pair in parentheses."""
    if isinstance(tree, int):
        return str(tree)
    op, children = tree
    text = f"( {op} {to_source(children[0])} )"
    for child in children[1:]:
        text = f"( {text} {to_source(child)} )"
    return f"( {text} {END} )"


def write_listops(out_dir: str | Path, n_train: int, n_val: int, n_test: int, seed: int = 0, task: str = "basic",
                  min_length: int = 500, max_length: int = 2000, max_depth: int = 10, max_args: int = 10) -> Path:
    """Generate distinct expressions and write the three LRA TSV files into out_dir."""
    for key, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key}: expected a positive integer, got {value!r}")
    out = output_folder(out_dir)
    rng = np.random.default_rng(seed)
    seen, rows = set(), []
    while len(rows) < n_train + n_val + n_test:
        tree, length = generate_tree(rng, max_depth, max_args)
        if min_length < length < max_length:
            source = to_source(tree)
            if source not in seen:
                seen.add(source)
                rows.append((source, evaluate(tree)))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(rows))}
    for split, (a, b) in bounds.items():
        with open(out / f"{task}_{split}.tsv", "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(["Source", "Target"])
            writer.writerows(rows[a:b])
    return out


def tokenize(source: str) -> list[str]:
    return source.replace("(", " ").replace(")", " ").split()


def _read_row(row: list[str], max_length: int, where: str, eos: bool = False) -> tuple[torch.Tensor, int, int]:
    """(token ids padded to max_length, label, length) of one TSV row; eos: EOS ends it (within max_length)."""
    if len(row) != 2:
        raise ValueError(f"{where} has {len(row)} fields, expected 2 (Source, Target)")
    tokens = tokenize(row[0])
    if not tokens:
        raise ValueError(f"{where}: the expression is empty")
    unknown = {t for t in tokens if t not in VOCAB}
    if unknown:
        raise ValueError(f"{where} has tokens outside the ListOps vocabulary: {sorted(unknown)[:5]}")
    try:
        label = int(row[1])
    except ValueError:
        raise ValueError(f"{where}: the label {row[1]!r} is not an integer") from None
    check_labels([label], 10, where)
    ids = torch.zeros(max_length, dtype=torch.long)
    kept = [VOCAB[t] for t in tokens[:max_length - eos]] + ([EOS] if eos else [])
    ids[:len(kept)] = torch.tensor(kept)
    return ids, label, len(kept)


@register_dataset("listops", "LRA ListOps from {task}_{split}.tsv in data_dir (generate with "
                             "ssmkit.data.listops.write_listops); 10 classes, padded to max_length; eos=true ends each "
                             "expression with EOS, as the official S4 loader")
def listops(data_dir: str | None, split: str, task: str = "basic", max_length: int = 2000,
            eos: bool = False) -> TensorDataset:
    if data_dir is None:
        raise ValueError("data_dir: set it to the folder with the LRA ListOps files (basic_train.tsv, ...); "
                         "ssmkit.data.listops.write_listops makes them")
    if max_length < 1 + eos:
        raise ValueError(f"max_length: expected a positive integer (2 or more with eos), got {max_length}")
    path = Path(data_dir) / f"{task}_{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"data_dir: no {path.name} in {data_dir} (the LRA release's listops-1000 folder, or "
                                f"generated ones: python3 -m ssmkit data listops {data_dir}, with --size lra at the "
                                f"LRA's size)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader, None)
            if header != ["Source", "Target"]:
                raise ValueError(f"{path}: expected the header 'Source<TAB>Target', got {header}")
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except csv.Error as e:
        raise ValueError(f"{path}: not a readable TSV file ({e})") from None
    if not rows:
        raise ValueError(f"{path}: no expressions after the header")
    x = torch.zeros(len(rows), max_length, dtype=torch.long)
    y = torch.empty(len(rows), dtype=torch.long)
    lengths = torch.empty(len(rows), dtype=torch.long)
    for i, row in enumerate(rows):
        x[i], y[i], lengths[i] = _read_row(row, max_length, f"{path}: line {i + 2}", eos)
    ds = TensorDataset(x, y, lengths)
    ds.d_input = ds.vocab_size = EOS + 1 if eos else len(VOCAB) + 1
    ds.n_classes, ds.l_max = 10, max_length
    ds.padding_idx = 0
    return ds
