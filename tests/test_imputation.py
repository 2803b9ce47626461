"""Imputation data: SSSD's missingness masks, the impute dataset over a UEA archive, and `ssmkit impute`."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from ssmkit import data
from ssmkit.data.masks import missing_mask

from datafiles import write_uea_equal


def _missing_runs(column: torch.Tensor) -> list[tuple[int, int]]:
    """(start, stop) of each run of zeros."""
    idx = torch.nonzero(column == 0).flatten().tolist()
    runs = []
    for i in idx:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def test_random_missing_hides_exactly_k_steps_in_each_channel():
    m = missing_mask("rm", 100, 6, 37, torch.Generator().manual_seed(0))
    assert m.shape == (100, 6) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert ((1 - m).sum(0) == 37).all()
    assert not all(torch.equal(m[:, 0], m[:, c]) for c in range(1, 6))  # drawn per channel


def test_mnr_hides_one_whole_segment_per_channel_and_bm_the_same_one_in_all():
    for seed in range(5):
        mnr = missing_mask("mnr", 100, 6, 30, torch.Generator().manual_seed(seed))
        for c in range(6):
            (a, b), = _missing_runs(mnr[:, c])
            assert a % 30 == 0 and b - a == min(30, 100 - a)  # one of [0,30) [30,60) [60,90) [90,100)
        bm = missing_mask("bm", 100, 6, 30, torch.Generator().manual_seed(seed))
        assert all(torch.equal(bm[:, 0], bm[:, c]) for c in range(6)) and len(_missing_runs(bm[:, 0])) == 1
    forecast = missing_mask("forecast", 100, 6, 25)
    assert (forecast[75:] == 0).all() and (forecast[:75] == 1).all()


def test_masks_are_reproducible_from_their_seed():
    draw = lambda kind, seed: missing_mask(kind, 50, 4, 10, torch.Generator().manual_seed(seed))
    for kind in ("rm", "mnr", "bm"):
        assert torch.equal(draw(kind, 1), draw(kind, 1))
    assert not torch.equal(draw("rm", 1), draw("rm", 2))
    with pytest.raises(ValueError, match="kind"):
        missing_mask("random", 10, 2, 3)
    with pytest.raises(ValueError, match="k: expected an integer in"):
        missing_mask("rm", 10, 2, 11)


def test_impute_dataset_gives_series_masks_and_keeps_the_normalization(tmp_path):
    write_uea_equal(tmp_path, "Toy", n_train=20, n_test=6, length=24, dims=3)
    options = dict(problem="Toy", missing="rm", missing_ratio=0.25, repeat=3)
    train = data.build("impute", str(tmp_path), "train", **options)
    test = data.build("impute", str(tmp_path), "test", **options)
    assert len(train) == 3 * 18 and len(test) == 6  # 10 % of the training file is val; repeat is for training only
    x, m, m2 = train[0]
    assert x.shape == m.shape == (24, 3) and m is m2 and ((1 - m).sum(0) == 6).all()
    assert torch.equal(train[0][0], train[18][0]) and not torch.equal(train[0][1], train[18][1])  # new mask per visit
    again = data.build("impute", str(tmp_path), "test", **options)
    assert torch.equal(test.masks, again.masks) and torch.equal(test[2][1], test[2][1])
    assert train.task == "impute" and train.mean.shape == (3,) and (train.std > 0).all()
    assert abs(float(train.x.mean())) < 1e-5  # z-scored with the training statistics
    with pytest.raises(ValueError, match="missing: expected one of"):
        data.build("impute", str(tmp_path), "train", problem="Toy", missing="random")
    with pytest.raises(ValueError, match="dataset 'ucr-uea'"):
        data.build("impute", str(tmp_path), "train", problem="Toy", problm="x")


def test_shared_mask_gives_a_training_batch_one_mask_as_the_official_loop(tmp_path):
    write_uea_equal(tmp_path, "Toy", n_train=20, n_test=6, length=24, dims=3)
    options = dict(problem="Toy", missing="rm", missing_ratio=0.25)
    shared = data.take(data.build("impute", str(tmp_path), "train", shared_mask=True, **options), 10)
    x, m, m2 = next(iter(torch.utils.data.DataLoader(shared, batch_size=5, collate_fn=shared.collate)))
    assert x.shape == m.shape == (5, 24, 3) and m is m2 and all(torch.equal(m[0], m[b]) for b in range(5))
    own = data.build("impute", str(tmp_path), "train", **options)
    _, m, _ = own.collate([own[b] for b in range(5)])
    assert not all(torch.equal(m[0], m[b]) for b in range(5))
    test = data.build("impute", str(tmp_path), "test", shared_mask=True, **options)
    _, m, _ = test.collate([test[b] for b in range(3)])
    assert all(torch.equal(m[b], test.masks[b]) for b in range(3))  # evaluation keeps its fixed masks
    with pytest.raises(ValueError, match="shared_mask: expected bool"):
        data.build("impute", str(tmp_path), "train", shared_mask="yes", **options)


@pytest.mark.slow
def test_train_sssd_then_impute_a_csv_from_the_command_line(tmp_path):
    write_uea_equal(tmp_path / "uea", "Toy", n_train=20, n_test=4, length=24, dims=3)
    args = ["sssd-basicmotions-small", f"data_dir={tmp_path / 'uea'}", "dataset_options.problem=Toy", "n_layers=1",
            "d_model=8", "d_state=4", "model_options.d_skip=8", "model_options.d_embed=16", "epochs=1",
            f"out_dir={tmp_path}", "run_name=s"]
    subprocess.run([sys.executable, "-m", "ssmkit", "train", *args], check=True, capture_output=True, text=True)
    series = 10 + 3 * np.sin(np.arange(24)[:, None] / 4 + np.arange(3))
    mask = (np.random.default_rng(0).random((24, 3)) > 0.5).astype(int)
    text = ["a,b,c"] + [",".join("" if not mk else repr(float(v)) for v, mk in zip(row, mrow))
                        for row, mrow in zip(series, mask)]
    (tmp_path / "x.csv").write_text("\n".join(text) + "\n")
    np.savetxt(tmp_path / "m.csv", mask, delimiter=",", fmt="%d")
    out = subprocess.run([sys.executable, "-m", "ssmkit", "impute", str(tmp_path / "s"), "--input",
                          str(tmp_path / "x.csv"), "--mask", str(tmp_path / "m.csv"), "--samples", "3", "--out",
                          str(tmp_path / "imp")], check=True, capture_output=True, text=True)
    assert {"median.csv", "low.csv", "high.csv", "imputation.png"} <= {p.name for p in (tmp_path / "imp").iterdir()}
    assert "median.csv" in out.stdout
    median = np.genfromtxt(tmp_path / "imp" / "median.csv", delimiter=",", names=True)
    assert median.dtype.names == ("a", "b", "c")
    values = np.stack([median[n] for n in "abc"], 1)
    assert np.array_equal(values[mask > 0], series[mask > 0]) and np.isfinite(values).all()
    low, high = (np.genfromtxt(tmp_path / "imp" / f"{k}.csv", delimiter=",", skip_header=1) for k in ("low", "high"))
    assert (low <= values + 1e-9).all() and (values <= high + 1e-9).all()
    cells = [line.split(",") for line in (tmp_path / "imp" / "median.csv").read_text().splitlines()[1:]]
    imputed = [c for row, mrow in zip(cells, mask) for c, mk in zip(row, mrow) if not mk]
    assert imputed and max(len(c.lstrip("-").replace(".", "").lstrip("0")) for c in imputed) <= 12  # float32 digits
    # without its data: the run's normalization.json gives the units, and eval finds the data where it moved
    from ssmkit.train import evaluate_run
    from ssmkit.train.imputing import impute_files

    assert set(__import__("json").loads((tmp_path / "s" / "normalization.json").read_text())) == {"mean", "std"}
    (tmp_path / "uea").rename(tmp_path / "moved")
    impute_files(tmp_path / "s", tmp_path / "x.csv", tmp_path / "m.csv", 3, tmp_path / "again")
    assert (tmp_path / "again" / "median.csv").read_text() == (tmp_path / "imp" / "median.csv").read_text()
    with pytest.raises(FileNotFoundError, match=r"no Toy_TRAIN.ts .* \(if the run's data moved: --set data_dir=DIR\)"):
        evaluate_run(tmp_path / "s")
    assert evaluate_run(tmp_path / "s", dataset_options={"data_dir": str(tmp_path / "moved")})["samples"] > 0
    with pytest.raises(ValueError, match="split: choose the split to score with --split"):
        evaluate_run(tmp_path / "s", dataset_options={"split": "train"})
    # bad input: one line naming the file, the cell and what is wrong
    def fails(series_rows, mask_rows, match, samples=3):
        (tmp_path / "bx.csv").write_text("\n".join(series_rows) + "\n")
        (tmp_path / "bm.csv").write_text("\n".join(mask_rows) + "\n")
        with pytest.raises(ValueError, match=match):
            impute_files(tmp_path / "s", tmp_path / "bx.csv", tmp_path / "bm.csv", samples, tmp_path / "bad")

    ones = ["1,1,1"] * 24
    fails(["1,2,3"] * 23 + ["1,nan,3"], ones, r"bx.csv: time step 24, column 2 is marked observed but holds nan")
    fails(["1,2,3"] * 23 + ["1,,3"], ones, r"time step 24, column 2 is marked observed but holds nan")
    fails(["1,2,3"] * 24, ones[:-1] + ["1,2,1"], r"bm.csv: expected 0 \(missing\) or 1 \(observed\), got 2 at time step 24, column 2")
    fails(["1,2,3"] * 24, ones[:-1], r"bm.csv: expected the shape of the series \(24, 3\)")
    fails(["1,2,3"] * 23 + ["1,foo,3"], ones, r"bx.csv: line 24: expected numbers, got '1,foo,3'")
    fails(["1,2,3"] * 30, ["1,1,1"] * 30, r"bx.csv: 30 rows \(time steps\); the model imputes series of up to 24")
    fails(["1,2,3"] * 24, ones, r"n_samples \(--samples\): expected an integer >= 1, got 0", samples=0)
