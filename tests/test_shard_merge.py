"""Image shards write into one folder without clashing, and merge equals an unsharded run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.data import folder_name
from benchmark.images import read_image
from benchmark.merge import merge
from benchmark.metrics import METRICS, MetricSpec
from conftest import folder_dir, make_pairs, run_bench

IDS = ["001", "img_b", "img_c", "img_d", "img_e"]  # "001" checks that ids stay strings through CSV


class _SpreadOfMeans:
    """A set-level metric that is not an average over images: the std over images of their
    mean SR intensity. Averaging it over shards gives a different number than over all images."""

    def score_set(self, sr_paths, hr_paths) -> float:
        return float(np.std([read_image(p).mean() for p in sr_paths]))


@pytest.fixture
def spread_metric(monkeypatch):
    spec = MetricSpec("spread", "set", True, False, "test", lambda options, device: _SpreadOfMeans())
    monkeypatch.setitem(METRICS._items, "spread", spec)
    return spec


def _args(data: Path, *extra: str) -> list[str]:
    return ["method=noise_control", "runs=3", "dataset=folder", f"dataset.lr_dir={data / 'LR'}",
            f"dataset.hr_dir={data / 'HR'}", "metrics=[psnr,ssim]", "+metrics.spread={}", "output_dir=out",
            "device=cpu", *extra]


def _without_timing(path: Path) -> str:
    res = json.loads(path.read_text())
    res.pop("timing")
    return json.dumps(res, sort_keys=True)


def test_merge_of_shards_equals_unsharded_run(tmp_path, monkeypatch, spread_metric):
    data = tmp_path / "data"
    make_pairs(data, IDS)
    # the same relative output_dir in both runs, so the configs in results.json are identical
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    run_bench(_args(data))
    monkeypatch.chdir(tmp_path / "b")
    shard_results = [run_bench(_args(data, f"shard.index={i}", "shard.count=3")) for i in range(3)]
    name = folder_name(data / "LR", data / "HR")  # dataset=folder without dataset.name: named after its folders
    root_a, root_b = tmp_path / "a" / "out" / name / "noise_control", tmp_path / "b" / "out" / name / "noise_control"

    # shards did not clash: one file each, images dealt round-robin, no unsharded files yet
    for i in range(3):
        for name in ("manifest", "results"):
            assert (root_b / f"{name}.shard-{i}-of-3.json").is_file()
        for name in ("scores", "lstd"):
            assert (root_b / f"{name}.shard-{i}-of-3.csv").is_file()
    assert not (root_b / "results.json").exists() and not (root_b / "manifest.json").exists()
    assert [r["num_images"] for r in shard_results] == [2, 2, 1]
    assert json.loads((root_b / "manifest.shard-1-of-3.json").read_text())["shard"]["images"] == ["img_b", "img_e"]

    written = merge(tmp_path / "b" / "out")
    assert written == [root_b / "results.json"]
    assert _without_timing(root_b / "results.json") == _without_timing(root_a / "results.json")
    assert (root_b / "scores.csv").read_bytes() == (root_a / "scores.csv").read_bytes()
    assert (root_b / "lstd.csv").read_bytes() == (root_a / "lstd.csv").read_bytes()
    for r in range(3):
        for i in IDS:
            p = Path("samples") / f"sample{r:02d}" / f"{i}.png"
            assert (root_b / p).read_bytes() == (root_a / p).read_bytes()

    merged = json.loads((root_b / "results.json").read_text())
    # recomputed over all images, not averaged over shards (which would give another number)
    shard_mean = np.mean([s["metrics"]["spread"]["mean"] for s in shard_results])
    assert abs(merged["metrics"]["spread"]["mean"] - shard_mean) > 1e-6
    assert merged["num_images"] == 5 and merged["timing"]["shards"] == 3
    manifest = json.loads((root_b / "manifest.json").read_text())
    assert manifest["config"]["shard"] == {"index": 0, "count": 1} and len(manifest["merged_from"]) == 3


def test_merge_names_the_missing_shard(tmp_path, monkeypatch):
    data = tmp_path / "data"
    make_pairs(data, IDS)
    monkeypatch.chdir(tmp_path)
    args = [a for a in _args(data) if a != "+metrics.spread={}"]
    run_bench(args + ["shard.index=0", "shard.count=2"])
    with pytest.raises(FileNotFoundError, match=r"shard\(s\) 1 of 2 have not finished.*shard.index=<i> shard.count=2"):
        merge(tmp_path / "out")


def test_shard_with_other_generation_config_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "data"
    make_pairs(data, IDS)
    monkeypatch.chdir(tmp_path)
    args = [a for a in _args(data) if a != "+metrics.spread={}"]
    run_bench(args + ["shard.index=0", "shard.count=2"])
    with pytest.raises(ValueError, match="manifest.shard-0-of-2.json record.*different generation"):
        run_bench(args + ["shard.index=1", "shard.count=2", "seed=5"])
    # overwrite deletes only the images of shard 1: shard 0's samples stay
    run_bench(args + ["shard.index=1", "shard.count=2", "seed=5", "overwrite=true"])
    assert (folder_dir(tmp_path / "out", data / "LR", data / "HR") / "noise_control" / "samples" / "sample00" / "001.png").is_file()


@pytest.mark.parametrize("index, count", [(2, 2), (-1, 2), (0, 0)])
def test_bad_shard_values_are_rejected(tmp_path, index, count):
    data = tmp_path / "data"
    make_pairs(data, IDS[:2])
    with pytest.raises(ValueError, match="0 <= shard.index < shard.count"):
        run_bench(_args(data, f"shard.index={index}", f"shard.count={count}", f"output_dir={tmp_path / 'o'}"))


def test_more_shards_than_images_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    make_pairs(data, IDS[:2])
    args = [a for a in _args(data) if a != "+metrics.spread={}"]
    with pytest.raises(ValueError, match="gets no image.*shard.count <= 2"):
        run_bench(args + ["shard.index=2", "shard.count=3", f"output_dir={tmp_path / 'o'}"])
