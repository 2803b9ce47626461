"""Hostile and damaged data files: every loader answers with one ValueError that names the file, nothing runs code,
and wrong labels or options are caught when the data is loaded, not mid-training."""
import gzip
import os
import pickle

import numpy as np
import pytest

from ssmkit import data
from ssmkit.data.listops import write_listops

from datafiles import UEA_HEADER, toy_cases, write_bidmc, write_cifar, write_idx, write_mnist, write_speech_commands, \
    write_uea, write_wav


class _Planted:
    """A pickle payload that runs a command when unpickled (what a malicious 'CIFAR batch' carries)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_cifar_batch_that_would_run_code_is_refused_and_never_runs(tmp_path):
    write_cifar(tmp_path)
    marker = tmp_path / "ran"
    batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3], b"hook": _Planted(marker)}
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(batch))
    with pytest.raises(ValueError, match=r"test_batch: not a CIFAR-10 python batch \(refused to load posix.system"):
        data.build("scifar", str(tmp_path), "test")
    assert not marker.exists()


def test_a_cifar_batch_pickled_by_python_2_protocol_still_loads(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch = {b"data": np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072), b"labels": [3, 9],
             b"filenames": [b"a.png", b"b.png"], b"batch_label": b"testing batch 1 of 1"}
    path.write_bytes(pickle.dumps(batch, protocol=2))  # numpy arrays, bytes via _codecs, as old pickles are
    test = data.build("scifar", str(tmp_path), "test")
    assert test.tensors[1].tolist() == [3, 9] and test.tensors[0].shape == (2, 1024, 3)


@pytest.mark.parametrize("damage, match", [
    (lambda raw: raw[:len(raw) // 2], "corrupt or truncated"),
    (lambda raw: b"garbage" + raw, "corrupt or truncated|not a CIFAR-10"),
    (lambda raw: pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": [1, 2, 3]}), "3 integers|4 integers"),
    (lambda raw: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]}), "label 10 is outside"),
    (lambda raw: pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}), "expected uint8"),
])
def test_damaged_cifar_batches_name_the_file(tmp_path, damage, match):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=f"test_batch: .*({match})"):
        data.build("scifar", str(tmp_path), "test")


def test_damaged_mnist_files_name_the_file(tmp_path):
    write_mnist(tmp_path)
    gz = tmp_path / "train-images-idx3-ubyte.gz"
    payload = gzip.decompress(gz.read_bytes())
    gz.write_bytes(gzip.compress(payload)[:200])  # a truncated gzip stream
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: unreadable"):
        data.build("smnist", str(tmp_path), "train")
    gz.write_bytes(payload)  # named .gz but not gzip at all
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: unreadable"):
        data.build("smnist", str(tmp_path), "train")
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x03\x00\x00")  # three dimensions announced, half of one given
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: the header is cut short"):
        data.build("smnist", str(tmp_path), "test")
    write_idx(labels, np.array([1] * 19 + [200]), gz=False)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: label 200 is outside 0\.\.9"):
        data.build("smnist", str(tmp_path), "test")


@pytest.mark.parametrize("body, match", [
    ("", "no expressions after the header"),
    ("( [MAX 2 ] )\tseven\n", "line 2: the label 'seven' is not an integer"),
    ("( [MAX 2 ] )\t12\n", "line 2: label 12 is outside 0..9"),
    ("( [MAX 2 ] )\t-1\n", "line 2: label -1 is outside 0..9"),
    ("( [MAX 2 ] )\t2\n( )\t3\n", "line 3: the expression is empty"),
])
def test_listops_files_with_bad_rows_name_the_file_and_line(tmp_path, body, match):
    write_listops(tmp_path, 4, 4, 4, min_length=3, max_length=30, max_depth=3)
    (tmp_path / "basic_val.tsv").write_text("Source\tTarget\n" + body)
    with pytest.raises(ValueError, match=f"basic_val.tsv: {match}"):
        data.build("listops", str(tmp_path), "val", max_length=30)


def test_non_utf8_text_files_name_the_file(tmp_path):
    write_listops(tmp_path, 4, 4, 4, min_length=3, max_length=30, max_depth=3)
    (tmp_path / "basic_test.tsv").write_bytes(b"Source\tTarget\n( [MAX 2 \xff ] )\t2\n")
    with pytest.raises(ValueError, match="basic_test.tsv: not UTF-8 text"):
        data.build("listops", str(tmp_path), "test", max_length=30)
    aan = tmp_path / "tsv_data"
    aan.mkdir()
    (aan / "new_aan_pairs.test.tsv").write_bytes(b"1\ta\tb\tcaf\xe9\ttext\n")
    with pytest.raises(ValueError, match="new_aan_pairs.test.tsv: not UTF-8 text"):
        data.build("lra-retrieval", str(tmp_path), "test")


def test_ts_class_label_tag_without_values_names_the_file(tmp_path):
    bad = tmp_path / "Bad_TRAIN.ts"
    bad.write_text(UEA_HEADER.replace("@classLabel true up down flat", "@classLabel") + "1,2:3,4:up\n")
    with pytest.raises(ValueError, match="Bad_TRAIN.ts: @classLabel ''"):
        data.build("ucr-uea", str(tmp_path), "train", problem="Bad")


def test_ucr_uea_pads_every_split_to_the_longest_series_of_train_and_test(tmp_path):
    rng = np.random.default_rng(0)
    test_cases = toy_cases(rng, 6)
    long = ([f"{v:.1f}" for v in range(20)], [f"{v:.1f}" for v in range(20)])
    write_uea(tmp_path / "Toy", "Toy", {"TRAIN": toy_cases(rng, 20), "TEST": test_cases + [(long, "up")]})
    splits = [data.build("ucr-uea", str(tmp_path), s, problem="Toy") for s in ("train", "val", "test")]
    assert {ds.l_max for ds in splits} == {20}  # the training series are 5 to 8 steps long
    assert splits[2].tensors[2][-1] == 20


def test_bidmc_train_and_test_of_different_dimensions_name_the_file(tmp_path):
    write_bidmc(tmp_path, "RR", 14, 6)
    test = tmp_path / "BIDMC32RR_TEST.ts"
    lines = test.read_text().splitlines()
    cut = [line.split(":", 1)[1] if not line.startswith("@") else line for line in lines]  # one dimension dropped
    test.write_text("\n".join(cut) + "\n")
    with pytest.raises(ValueError, match=r"BIDMC32RR_TEST.ts: series of 1 dimensions, .*BIDMC32RR_TRAIN.ts has 2"):
        data.build("bidmc", str(tmp_path), "train", target="RR")


def test_a_truncated_wav_body_is_refused(tmp_path):
    from ssmkit.data.audio import read_wav
    path = tmp_path / "cut.wav"
    write_wav(path, np.arange(1000, dtype=np.int16))
    path.write_bytes(path.read_bytes()[:-600])  # the header still declares 1000 frames
    with pytest.raises(ValueError, match="cut.wav: truncated: the header declares 1000 frames, the file holds 700"):
        read_wav(path)


def test_a_corrupt_pathfinder_png_names_the_file_when_read(tmp_path):
    from ssmkit.data.pathfinder_gen import write_pathfinder
    root = write_pathfinder(tmp_path, 8, level="easy")
    png = root / "imgs" / "0" / "sample_3.png"
    png.write_bytes(png.read_bytes()[:60])
    ds = data.build("lra-pathfinder", str(tmp_path), "train", level="easy", val_fraction=0.25, test_fraction=0.25)
    with pytest.raises(ValueError, match="sample_3.png: not a readable PNG image"):
        for i in range(len(ds)):
            ds[i]
    for i in range(len(ds)):  # the index is built without opening the images; the others read fine
        if ds.samples[i][0] != png:
            assert ds[i][0].shape == (1024, 1)


@pytest.mark.parametrize("options, match", [
    ({"permute": "maybe"}, "option permute: expected bool, got 'maybe'"),
    ({"seed": "abc"}, "option seed: expected int, got 'abc'"),
])
def test_dataset_options_of_the_wrong_type_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        data.build("digits", None, "train", **options)


def test_wrong_dataset_option_values_are_refused(tmp_path):
    write_listops(tmp_path, 4, 4, 4, min_length=3, max_length=30, max_depth=3)
    with pytest.raises(ValueError, match="option max_length: expected int, got 'abc'"):
        data.build("listops", str(tmp_path), "train", max_length="abc")
    write_mnist(tmp_path)
    for fraction in (0, 0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="val_fraction: expected a fraction strictly between 0 and 1"):
            data.build("smnist", str(tmp_path), "val", val_fraction=fraction)
    rng = np.random.default_rng(0)
    write_uea(tmp_path / "Toy", "Toy", {"TRAIN": toy_cases(rng, 9), "TEST": toy_cases(rng, 3)})
    with pytest.raises(ValueError, match="val_fraction: expected a fraction strictly between 0 and 1"):
        data.build("ucr-uea", str(tmp_path), "val", problem="Toy", val_fraction=0)


def test_speech_commands_lists_in_another_encoding_name_the_file(tmp_path):
    from ssmkit.data.speech_commands import WORDS_10
    write_speech_commands(tmp_path, WORDS_10, per_word=3)
    (tmp_path / "testing_list.txt").write_bytes(b"yes/\xff.wav\n")
    with pytest.raises(ValueError, match="testing_list.txt: not UTF-8 text"):
        data.build("speech-commands", str(tmp_path), "train", classes=10)


def test_generators_refuse_a_file_as_output_folder_and_empty_sizes(tmp_path):
    from ssmkit.data.pathfinder_gen import write_pathfinder
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    with pytest.raises(ValueError, match="out_dir: .*afile is a file"):
        write_listops(afile, 4, 4, 4, min_length=3, max_length=30, max_depth=3)
    with pytest.raises(ValueError, match="out_dir: .*afile is a file"):
        write_pathfinder(afile, 4)
    with pytest.raises(ValueError, match="n_images: expected a positive integer, got 0"):
        write_pathfinder(tmp_path / "pf", 0)
    assert afile.read_text() == "keep me" and not (tmp_path / "pf" / "pathfinder32").exists()
