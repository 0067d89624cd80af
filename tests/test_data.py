"""Data sets: stem matching, the conversion rule, and every bad-input error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmark.data import DatasetError, DemoDataset, FolderDataset
from benchmark.testsets import RealSRDataset
from benchmark.images import read_image
from conftest import make_pairs, write_png


def test_pairs_match_by_stem_not_sort_order(tmp_path):
    # LR a, b, c; HR only a and c: pairing by sort order would pair b with c
    lr, hr = make_pairs(tmp_path, ["a", "c"], lr_size=(8, 8))
    write_png(lr / "b.png", np.zeros((10, 6, 3), np.uint8))
    samples = FolderDataset(str(lr), str(hr)).samples()
    assert [(s.id, s.hr_path.stem if s.hr_path else None) for s in samples] == [("a", "a"), ("b", None), ("c", "c")]
    assert samples[1].lr_size == (10, 6)


def test_lr_only_dataset(tmp_path):
    lr, _ = make_pairs(tmp_path, ["x"], hr=False)
    ds = FolderDataset(str(lr))
    assert [s.hr_path for s in ds.samples()] == [None] and not ds.has_hr


def test_one_error_lists_every_problem(tmp_path):
    lr, hr = make_pairs(tmp_path, ["ok", "wrong_size", "dup"], lr_size=(8, 8))
    (lr / "notes.txt").write_text("not an image")
    (lr / "broken.png").write_bytes((lr / "ok.png").read_bytes()[:40])  # truncated PNG
    write_png(lr / "dup.bmp", np.zeros((8, 8, 3), np.uint8))
    write_png(hr / "wrong_size.png", np.zeros((33, 32, 3), np.uint8))
    write_png(hr / "orphan.png", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(DatasetError) as err:
        FolderDataset(str(lr), str(hr)).samples()
    msg = str(err.value)
    assert "notes.txt is not an image" in msg
    assert "broken.png" in msg and "unreadable" in msg
    assert "duplicate stem 'dup'" in msg and "dup.bmp" in msg
    assert "size mismatch for 'wrong_size'" in msg and "expected exactly 32x32" in msg
    assert "orphan.png has no LR partner" in msg
    assert "5 problem(s)" in msg


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        FolderDataset(str(tmp_path / "empty")).samples()
    with pytest.raises(FileNotFoundError, match="does not exist.*dataset.lr_dir"):
        FolderDataset(str(tmp_path / "nope")).samples()
    with pytest.raises(FileNotFoundError, match="dataset.hr_dir"):
        make_pairs(tmp_path / "d", ["a"], hr=False)
        FolderDataset(str(tmp_path / "d" / "LR"), str(tmp_path / "nope")).samples()


def test_realsr_missing_root_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="StableSR-TestSets.*dataset.root="):
        RealSRDataset(str(tmp_path / "none"))


def test_demo_is_deterministic_and_valid(tmp_path):
    a = DemoDataset(cache_dir=str(tmp_path / "c1"))
    b = DemoDataset(cache_dir=str(tmp_path / "c2"))
    sa = a.samples()
    assert len(sa) == 6 and all(s.lr_size == (64, 64) for s in sa)
    assert a.describe()["content_hash"] == b.describe()["content_hash"]
    assert read_image(sa[0].hr_path).shape == (256, 256, 3)


# --- the conversion rule: 8-bit RGB from every input kind


def test_grayscale_is_replicated(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3) and (out == g[:, :, None]).all()


def test_rgba_drops_alpha(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    assert (read_image(tmp_path / "a.png") == a[:, :, :3]).all()


def test_palette_is_expanded(tmp_path):
    idx = np.array([[0, 1], [2, 1]], np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (256 * 3 - 9))
    img.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out[0, 0].tolist() == [10, 20, 30] and out[1, 0].tolist() == [70, 80, 90]


def test_16_bit_rgb_and_gray_are_rounded_to_8_bit(tmp_path):
    import cv2

    v = np.array([[0, 257, 32896], [65535, 128, 129]], np.uint16)  # 128/257 = 0.498 -> 0, 129/257 -> 1
    rgb = np.stack([v, v[::-1], v], axis=2)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb[:, :, ::-1])  # OpenCV writes BGR
    out = read_image(tmp_path / "c16.png")
    expect = np.rint(rgb / 257.0).astype(np.uint8)
    assert (out == expect).all() and out[0, 1, 0] == 1 and out[1, 0, 0] == 255
    Image.fromarray(v.astype(np.uint16)).save(tmp_path / "g16.png")
    assert (read_image(tmp_path / "g16.png")[:, :, 0] == np.rint(v / 257.0)).all()
