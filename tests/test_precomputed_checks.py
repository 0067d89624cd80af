"""Precomputed outputs (issue 12 item 4, issue 16 item 3): every problem listed together before
anything is imported; duplicate stems refused in flat folders and in every sampleNN/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark import preflight
from conftest import compose, make_pairs, write_png


def _cfg(tmp_path: Path, lr: Path, hr: Path, outputs: Path):
    return compose(["method=precomputed", f"method.path={outputs}", "dataset=folder", f"dataset.lr_dir={lr}",
                    f"dataset.hr_dir={hr}", "metrics=[psnr]", "crop_border=0", f"output_dir={tmp_path / 'o'}"])


def _sr(seed: int = 0, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_every_problem_of_sample_folders_listed_before_import(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["a", "b", "c"], lr_size=(8, 8))  # outputs must be 32x32
    out = tmp_path / "outputs"
    for run in (0, 1):
        for i in ("a", "b", "c"):
            write_png(out / f"sample{run:02d}" / f"{i}.png", _sr(run))
    write_png(out / "sample01" / "a.jpg", _sr(5))                 # duplicate stem in sample01
    (out / "sample00" / "b.png").unlink()                         # missing
    write_png(out / "sample00" / "c.png", _sr(0, size=30))        # mis-sized
    (out / "sample01" / "b.png").write_bytes(b"\x89PNG garbage")  # undecodable
    (out / "sample01" / "log.txt").write_text("official scripts leave logs")  # ignored
    cfg = _cfg(tmp_path, lr, hr, out)
    with pytest.raises(preflight.PreflightError) as info:
        preflight.check(cfg)
    text = str(info.value)
    assert "4 problem(s) with the outputs" in text
    assert f"duplicate stem 'a' in precomputed folder {out / 'sample01'}: a.jpg and a.png; keep only one" in text
    assert f"1 output(s) missing" in text and f"{out / 'sample00'}/b" in text
    assert "(image 'c', run 0) is 30x30, expected 32x32" in text
    assert "undecodable" in text and str(out / "sample01" / "b.png") in text
    assert not (tmp_path / "o").exists()  # nothing imported, no folder made


def test_flat_folder_with_duplicate_stem_is_refused(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["a", "b"], lr_size=(8, 8))
    flat = tmp_path / "flat"
    write_png(flat / "a.png", _sr(1))
    write_png(flat / "b.png", _sr(2))
    write_png(flat / "a.jpg", _sr(3))  # a stale file beside the real output: used to be scored silently
    with pytest.raises(preflight.PreflightError, match=r"duplicate stem 'a' in precomputed folder .*a\.jpg and a\.png"):
        preflight.check(_cfg(tmp_path, lr, hr, flat))


def test_same_wording_as_lr_hr_folders(tmp_path):
    from benchmark.data import DatasetError, FolderDataset

    lr, hr = make_pairs(tmp_path / "d", ["a"], lr_size=(8, 8))
    write_png(lr / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"duplicate stem 'a' in LR folder .*: a\.jpg and a\.png; keep only one"):
        FolderDataset(str(lr), str(hr)).samples()


def test_duplicate_run_numbers_listed_with_the_rest(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["a"], lr_size=(8, 8))
    out = tmp_path / "outputs"
    write_png(out / "sample0" / "a.png", _sr(0))
    write_png(out / "sample00" / "a.png", _sr(0))
    write_png(out / "sample01" / "a.png", _sr(0, size=16))
    with pytest.raises(preflight.PreflightError) as info:
        preflight.check(_cfg(tmp_path, lr, hr, out))
    text = str(info.value)
    assert "run folders with the same number: sample0, sample00" in text and "is 16x16, expected 32x32" in text


def test_a_gap_in_the_run_folders_is_reported_not_silently_renumbered(tmp_path, caplog):
    """sample00 and sample02 without sample01 (an official run that crashed?): imported as runs 0 and 1,
    in numeric order, with a warning naming the folders and the absent number (new-user trial)."""
    from methods.precomputed import Precomputed

    out = tmp_path / "outputs"
    write_png(out / "sample00" / "a.png", _sr(0))
    write_png(out / "sample02" / "a.png", _sr(2))
    with caplog.at_level("WARNING", logger="srbench"):
        src = Precomputed(str(out))
    assert src.stored_path("a", 1) == out / "sample02" / "a.png"
    (msg,) = [r.getMessage() for r in caplog.records]
    assert f"method.path {out} has 2 run folder(s) (sample00, sample02) but none numbered 1" in msg
    caplog.clear()
    write_png(out / "sample01" / "a.png", _sr(1))
    with caplog.at_level("WARNING", logger="srbench"):
        assert Precomputed(str(out)).stored_path("a", 1) == out / "sample01" / "a.png"
    assert not caplog.records
