"""Every shipped experiment runs: its YAML keys, dataset options and layer options are valid, on files written in
the release format of its dataset (the model shrunk to a sliver, one epoch on a few samples)."""
import pytest

from ssmkit.data.listops import write_listops
from ssmkit.data.pathfinder_gen import write_pathfinder
from ssmkit.data.sc09 import DIGITS
from ssmkit.data.speech_commands import WORDS_35
from ssmkit.train import load_experiment, make_config, train
from ssmkit.train.config import experiment_names

from datafiles import (write_aan, write_bidmc, write_cifar, write_imdb, write_mnist, write_music_folder,
                       write_speech_commands, write_uea_equal)


def _aan(root):
    rows = [[str(i % 2), f"A{i}", f"B{i}", f"paper {i} text", f"other paper {i}"] for i in range(10)]
    write_aan(root, {"train": rows, "eval": rows[:4], "test": rows[4:]})


def _pathfinder(root, options, resolution):
    write_pathfinder(root, 24, resolution=resolution, level=options.get("level", "hard"), per_folder=12)


WRITERS = {
    "listops": lambda root, o: write_listops(root, 12, 4, 4, min_length=10, max_length=60),
    "lra-text": lambda root, o: write_imdb(root, n_per_class=6),
    "lra-retrieval": lambda root, o: _aan(root),
    "scifar": lambda root, o: write_cifar(root),
    "lra-pathfinder": lambda root, o: _pathfinder(root, o, o.get("resolution", 32)),
    "lra-pathx": lambda root, o: _pathfinder(root, o, 128),
    "smnist": lambda root, o: write_mnist(root),
    "psmnist": lambda root, o: write_mnist(root),
    "speech-commands": lambda root, o: write_speech_commands(root, WORDS_35, per_word=3),
    "sc09": lambda root, o: write_speech_commands(root, DIGITS, per_word=3),
    "impute": lambda root, o: write_uea_equal(root, o["problem"], n_train=12, n_test=4, length=20, dims=6),
    "bidmc": lambda root, o: write_bidmc(root, o.get("target", "RR"), 14, 6),
    "music": lambda root, o: write_music_folder(root, [SHORT_WINDOWS] * 17),  # val and test: a file each
}
SHORT_WINDOWS = 4096  # the music experiments' 8-second windows, shortened (with the model's l_max)
GENERATED = {"digits", "digits-video", "copying", "associative-recall"}


@pytest.mark.slow
@pytest.mark.parametrize("name", experiment_names())
def test_shipped_experiment_trains_on_release_format_files(name, tmp_path):
    experiment = load_experiment(name)
    dataset = experiment.get("dataset", "digits")
    assert dataset in WRITERS or dataset in GENERATED, f"{name}: no test data for dataset {dataset!r}"
    overrides = ["d_model=8", "n_layers=1", "d_state=4", "epochs=1", "batch_size=4", "accumulate=1", "train_subset=8",
                 "eval_subset=4", f"out_dir={tmp_path / 'runs'}"]
    if dataset in WRITERS:
        (tmp_path / "data").mkdir()
        WRITERS[dataset](tmp_path / "data", experiment.get("dataset_options", {}))
        overrides.append(f"data_dir={tmp_path / 'data'}")
    if "blocks" in experiment.get("layer_options", {}):  # S5's HiPPO-N blocks must divide the shrunk d_state
        overrides.append("layer_options.blocks=1")
    if experiment.get("layer_options", {}).get("chunk_size", 0) > 64:  # Mega over a whole Path-X image: chunks
        overrides.append("layer_options.chunk_size=64")
    if dataset == "music":
        overrides += [f"dataset_options.sample_len={SHORT_WINDOWS}", f"model_options.l_max={SHORT_WINDOWS}"]
    results = train(make_config(overrides, experiment, source=name), log=lambda *_: None)
    metric = {"bidmc": "test_rmse", "sc09": "test_bits", "music": "test_bits", "impute": "test_mse"}.get(dataset,
                                                                                                          "test_acc")
    assert results[metric] >= 0
