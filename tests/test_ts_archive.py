import numpy as np
import pytest
import torch

from ssmkit import data
from ssmkit.data.ts_archive import read_ts

from datafiles import UEA_HEADER, toy_cases, write_bidmc, write_uea

def test_uea_multivariate_unequal_lengths_labels_and_normalization(tmp_path):
    rng = np.random.default_rng(0)
    cases = {"TRAIN": toy_cases(rng, 30), "TEST": toy_cases(rng, 9)}
    write_uea(tmp_path / "Toy", "Toy", cases)
    parsed = read_ts(tmp_path / "Toy" / "Toy_TRAIN.ts")
    assert parsed.class_labels == ["up", "down", "flat"] and len(parsed.series) == 30
    assert parsed.series[1].shape[0] == 2 and np.isnan(parsed.series[1][1, 2])
    train, val, test = (data.build("ucr-uea", str(tmp_path), s, problem="Toy", val_fraction=0.2) for s in
                        ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (24, 6, 9)
    x, y, lengths = test.tensors
    assert train.d_input == 2 and train.n_classes == 3 and torch.isfinite(x).all()
    assert lengths.tolist() == [len(dims[0]) for dims, _ in cases["TEST"]]
    assert y.tolist() == [["up", "down", "flat"].index(label) for _, label in cases["TEST"]]
    with pytest.raises(FileNotFoundError, match=r"no Tyo_TRAIN.ts in .* \(did you mean 'Toy'\?\)"):
        data.build("ucr-uea", str(tmp_path), "train", problem="Tyo")
    for i, n in enumerate(lengths.tolist()):
        assert (x[i, n:] == 0).all()
    tx, _, tl = train.tensors  # z-scored with the training split's statistics: mean 0, std 1 over real steps
    real = torch.cat([tx[i, :n] for i, n in enumerate(tl.tolist())])
    torch.testing.assert_close(real.mean(0), torch.zeros(2), atol=0.05, rtol=0)
    assert ((real.std(0) - 1).abs() < 0.1).all()


def test_ts_reader_rejects_malformed_files_by_line(tmp_path):
    bad = tmp_path / "Bad_TRAIN.ts"
    bad.write_text(UEA_HEADER + "1,2,3:4,5:up\n")
    with pytest.raises(ValueError, match=r"line 10: the dimensions have lengths \[3, 2\]"):
        read_ts(bad)
    bad.write_text("% a comment in the style of some archive files\n" + UEA_HEADER + "1,2:3,4:sideways\n")
    with pytest.raises(ValueError, match="sideways.*not among the declared"):
        read_ts(bad)
    bad.write_text(UEA_HEADER + "1,x:3,4:up\n")
    with pytest.raises(ValueError, match="line 10"):
        read_ts(bad)
    bad.write_text("@problemName Bad\n@timeStamps true\n@classLabel true a\n@data\n(0,1):a\n")
    with pytest.raises(ValueError, match="time-stamped"):
        read_ts(bad)
    with pytest.raises(FileNotFoundError, match="no Nope_TRAIN.ts"):
        data.build("ucr-uea", str(tmp_path), "train", problem="Nope")
    with pytest.raises(ValueError, match="problem"):
        data.build("ucr-uea", str(tmp_path), "train")


def test_bidmc_regression_targets_and_both_split_modes(tmp_path):
    (tmp_path / "HR").mkdir()
    values = write_bidmc(tmp_path / "HR", "HR", 14, 6)
    sizes = {s: len(data.build("bidmc", str(tmp_path), s, target="HR")) for s in ("train", "val", "test")}
    assert sizes == {"train": 14, "val": 3, "test": 3}
    ds = data.build("bidmc", str(tmp_path / "HR"), "test", target="HR", shuffle=False)
    x, y, lengths = ds.tensors
    assert ds.task == "regress" and ds.n_classes == 1 and ds.d_input == 2 and x.shape == (6, 40, 2)
    torch.testing.assert_close(y[:, 0], torch.tensor([values[("TEST", i)] for i in range(6)]), atol=1e-4, rtol=0)
    assert len(data.build("bidmc", str(tmp_path), "val", target="HR", shuffle=False)) == 2  # 14 // 7
    with pytest.raises(ValueError, match="target"):
        data.build("bidmc", str(tmp_path), "val", target="BP")
    with pytest.raises(FileNotFoundError, match="BIDMC32RR_TRAIN.ts"):
        data.build("bidmc", str(tmp_path), "val", target="RR")


def test_bundled_archive_of_aeon_or_sktime_is_read_when_installed():
    from ssmkit.data.ts_archive import bundled_archive

    root = bundled_archive()
    if root is None or not (root / "BasicMotions").is_dir():
        pytest.skip("neither aeon nor sktime (with BasicMotions) is installed")
    ds = data.build("ucr-uea", None, "test", problem="BasicMotions")
    assert ds.d_input == 6 and ds.n_classes == 4 and ds.l_max == 100 and len(ds) == 40
