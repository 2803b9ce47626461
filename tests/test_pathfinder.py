import numpy as np
import pytest
import torch
from PIL import Image

from ssmkit import data
from ssmkit.data.pathfinder_gen import LEVELS, pathfinder_image, write_pathfinder


def _distance(a, b):
    return np.min(np.hypot(*(a[:, None, :] - b[None, :, :]).transpose(2, 0, 1)))


@pytest.mark.parametrize("size", [32, 64, 128])
def test_markers_sit_on_one_contour_exactly_when_positive(size):
    rng = np.random.default_rng(size)
    scale = size / 32
    for positive in (True, False, True, False):
        sample = pathfinder_image(rng, size, n_paddles=14, positive=positive)
        assert sample.image.shape == (size, size) and sample.image.dtype == np.uint8
        assert set(np.unique(sample.image)) == {0, 255}
        a, b = sample.contours
        assert _distance(a, b) > scale  # the two contours keep the margin: they never touch
        owner = [[i for i, c in enumerate(sample.contours) if np.allclose(m, c[0]) or np.allclose(m, c[-1])]
                 for m in sample.markers]
        assert all(len(o) == 1 for o in owner)  # each marker is the end of exactly one contour
        assert (owner[0] == owner[1]) == positive
        assert not np.allclose(*sample.markers)
        for contour in sample.contours:  # each contour is drawn: its pixels are lit
            rows, cols = np.floor(contour).astype(int).T
            assert (sample.image[rows, cols] == 255).all()
            steps = np.hypot(*np.diff(contour, axis=0).T)
            assert np.sum(steps > 0.5 * scale) == 13  # 14 paddles: 13 gaps between them


def test_generator_output_is_read_by_the_loader_with_its_labels_and_splits(tmp_path):
    root = write_pathfinder(tmp_path, 30, resolution=32, level="easy", seed=1, per_folder=8)
    assert root == tmp_path / "pathfinder32" / LEVELS["easy"][0]
    assert sorted(p.name for p in (root / "metadata").iterdir()) == ["0.npy", "1.npy", "2.npy", "3.npy"]
    lines = [line.split() for b in range(4) for line in (root / "metadata" / f"{b}.npy").read_text().splitlines()]
    assert len(lines) == 30 and sum(int(f[3]) for f in lines) == 15
    splits = {s: data.build("lra-pathfinder", str(tmp_path), s, level="easy") for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in splits] == [24, 3, 3]
    seen = [p for s in splits.values() for p, _ in s.samples]
    assert len(set(seen)) == 30
    labels = {str(root / f[0] / f[1]): int(f[3]) for f in lines}
    for ds in splits.values():
        assert ds.l_max == 1024 and ds.d_input == 1 and ds.n_classes == 2
        for i in range(len(ds)):
            x, y = ds[i]
            path = ds.samples[i][0]
            assert int(y) == labels[str(path)]
            pixels = np.asarray(Image.open(path), dtype=np.float32).reshape(-1, 1)
            torch.testing.assert_close(x, torch.from_numpy(pixels / 127.5 - 1))
            assert x.min() == -1 and x.max() == 1


def test_loader_skips_the_empty_file_and_rejects_bad_metadata_and_sizes(tmp_path):
    root = write_pathfinder(tmp_path, 10, resolution=32, level="hard", per_folder=10)
    (root / "imgs" / "0" / "sample_3.png").write_bytes(b"")  # the release has one empty image
    every = sum(len(data.build("lra-pathfinder", str(tmp_path / "pathfinder32"), s)) for s in ("train", "val", "test"))
    assert every == 9
    with pytest.raises(FileNotFoundError, match="curv_contour_length_9/metadata"):
        data.build("lra-pathfinder", str(tmp_path), "train", level="intermediate")
    with pytest.raises(ValueError, match="level"):
        data.build("lra-pathfinder", str(tmp_path), "train", level="medium")
    with pytest.raises(FileNotFoundError, match="pathfinder128"):
        data.build("lra-pathx", str(tmp_path), "train")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "imgs" / "0" / "sample_0.png")
    ds = data.build("lra-pathfinder", str(tmp_path), "train", val_fraction=0, test_fraction=0)
    with pytest.raises(ValueError, match="16x16 pixels, expected 32x32"):
        [ds[i] for i in range(len(ds))]
    (root / "metadata" / "0.npy").write_text("imgs/0 sample_0.png 0\n")
    with pytest.raises(ValueError, match=r"0.npy: line 1"):
        data.build("lra-pathfinder", str(tmp_path), "train")


def test_images_for_2d_models_and_resizing(tmp_path):
    write_pathfinder(tmp_path, 6, resolution=32, level="easy", per_folder=6)
    flat = data.build("lra-pathfinder", str(tmp_path), "train", level="easy", val_fraction=0, test_fraction=0)
    image = data.build("lra-pathfinder", str(tmp_path), "train", level="easy", val_fraction=0, test_fraction=0,
                       image=True)
    big = data.build("lra-pathfinder", str(tmp_path), "train", level="easy", val_fraction=0, test_fraction=0,
                     image=True, size=64)
    assert image.l_max == (32, 32) and big.l_max == (64, 64)
    x, y = flat[0]
    xi, yi = image[0]
    xb, _ = big[0]
    assert xi.shape == (32, 32, 1) and torch.equal(xi.reshape(-1, 1), x) and int(yi) == int(y)
    assert xb.shape == (64, 64, 1)
    # bilinear upsampling by 2 without corners: the mean of each 2x2 block is close to the source pixel
    blocks = xb[..., 0].reshape(32, 2, 32, 2).mean((1, 3))
    assert (blocks - xi[..., 0]).abs().mean() < 0.1
    seq = data.build("lra-pathfinder", str(tmp_path), "train", level="easy", val_fraction=0, test_fraction=0, size=64)
    assert seq.l_max == 4096 and torch.equal(seq[0][0], xb.reshape(-1, 1))
    with pytest.raises(ValueError, match="size"):
        data.build("lra-pathfinder", str(tmp_path), "train", level="easy", size=0)
