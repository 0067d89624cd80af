"""Fast, in-process unit tests of ``benchmark.merge`` (each well under a second).

Shard result folders are built here directly with the project's own writers, as the runner
writes them (:class:`benchmark.shard.ShardStore` and its ``prepare`` for the manifest,
:func:`benchmark.datarecord.record`, :func:`benchmark.images.write_png_atomic` for the samples,
:func:`benchmark.scoring.score_sets` and :func:`benchmark.scoring.tidy` for the scores,
:meth:`benchmark.results.Result.from_scores`, :func:`benchmark.store.atomic_write_csv` /
``atomic_write_json``), from per-image scores and sample pixels chosen by the test, without
running a method or a per-image metric. The expected merged numbers are computed here with
numpy from those chosen values (DESIGN.md: mean over images of the mean over runs; G-STD = mean
over images of the population std, ddof=0, over runs; L-STD = mean over images of the per-pixel
population std over runs of the 8-bit samples scaled to [0, 1], border-cropped; set metrics
recomputed per run over all images, mean and population std over runs).

``tests/test_shard_merge.py`` checks the same end to end (real runs of every shard, merged
result equal to an unsharded run); it is too slow to kill mutants, which these tests do
(``benchmarks/mutation.py``, TEST_MAP).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import datarecord, merge as merge_mod
from benchmark.data import Sample
from benchmark.images import read_image, write_png_atomic
from benchmark.lock import OutputLock, OutputLockedError
from benchmark.merge import find_sharded, main, merge, merge_folder
from benchmark.metrics import METRICS, MetricSpec
from benchmark.results import Excluded, Result
from benchmark.scoring import MetricPlan, build_scorers, score_sets, tidy
from benchmark.shard import store_for
from benchmark.stats import StatsConfig
from benchmark.store import SET_IMAGE, atomic_write_csv, atomic_write_json, config_hash

IDS = ["001", "img_b", "img_c", "img_d", "img_e"]  # "001": ids stay strings through the CSV files
RUNS, SEED, CROP, SIZE = 3, 7, 1, 6
DATASET, METHOD = "tiny", "noisy"


class _Spread:
    """A set-level metric that is not an average over images: per run, the population std over
    images of their mean SR intensity (read back from the PNGs). Over one shard's images it gives
    another number than over all images, so a merge that averages shard values is caught.
    ``fail_on``: (number of images, run) pairs on which it raises, as a metric failing on a run."""

    def __init__(self, calls: list, fail_on: set) -> None:
        self.calls, self.fail_on = calls, fail_on

    def score_set(self, sr_paths, hr_paths) -> float:
        run = int(Path(sr_paths[0]).parent.name[len("sample"):])
        self.calls.append((len(sr_paths), run))
        if (len(sr_paths), run) in self.fail_on:
            raise RuntimeError("spread: planted failure")
        return float(np.std([read_image(p).mean() for p in sr_paths]))


def _never_built(options, device):
    raise AssertionError("merge built a per-image scorer: it must only rescore set-level metrics")


@dataclass
class Metrics:
    """The test's metrics: ``spread`` (set, above), ``gain`` (per-image, its factory must never run
    in merge: per-image values come from the shards, whose weights need not exist at merge time)
    and the real ``psnr`` spec (per-image, capped at 80 dB)."""

    calls: list = field(default_factory=list)
    devices: list = field(default_factory=list)
    fail_on: set = field(default_factory=set)


@pytest.fixture
def metrics(monkeypatch) -> Metrics:
    m = Metrics()

    def spread_factory(options, device):
        m.devices.append(device)
        return _Spread(m.calls, m.fail_on)

    monkeypatch.setitem(METRICS._items, "spread", MetricSpec("spread", "set", True, False, "test", spread_factory))
    monkeypatch.setitem(METRICS._items, "gain", MetricSpec("gain", "NR", False, False, "test", _never_built))
    return m


NAMES = ["psnr", "gain", "spread"]


@dataclass
class Data:
    """What the test chose: per-image values ``values[metric]`` (images x runs, NaN = excluded, with
    ``reasons``), sample pixels ``pixels`` (images x runs x H x W x 3, uint8)."""

    ids: list[str]
    values: dict[str, np.ndarray]
    pixels: np.ndarray
    reasons: dict[tuple[str, str, int], str]
    runs: int = RUNS


def _data(ids=IDS, runs=RUNS, seed=0) -> Data:
    rng = np.random.default_rng(seed)
    m = len(ids)
    values = {"psnr": rng.uniform(20, 35, (m, runs)), "gain": rng.normal(1.0, 0.2, (m, runs))}
    values["psnr"][0, 0] = 80.0  # identical to HR: pyiqa's cap (counted in num_capped)
    reasons = {}
    if runs > 1:
        values["gain"][2, 1] = np.nan  # one value the metric could not give (issue 12)
        reasons[("gain", ids[2], 1)] = "gain: undefined on a flat image (zero variance)"
    pixels = rng.integers(0, 256, (m, runs, SIZE, SIZE, 3), dtype=np.uint8)
    return Data(list(ids), values, pixels, reasons, runs)


def _config(out: Path, runs: int, index: int, count: int, extra: dict | None = None) -> dict[str, Any]:
    cfg = {"method": {"name": METHOD, "sigma": 0.1}, "dataset": {"name": DATASET}, "runs": runs, "seed": SEED,
           "crop_border": CROP, "metrics": {n: {} for n in NAMES}, "output_dir": str(out),
           "shard": {"index": index, "count": count}, "pipeline": True, "stats": {"enabled": False}}
    cfg.update(extra or {})
    return cfg


def _timing(index: int) -> dict[str, Any]:
    return {"generation_seconds": 10.0 + index, "scoring_seconds": 2.0 + 0.5 * index, "pipeline": True,
            "image_runs_timed": 3 + 2 * index, "seconds_per_image_run": 0.5 + 0.25 * index, "parameters": 99,
            "image_runs_generated_now": 1}


def write_run(out: Path, data: Data, index: int = 0, count: int = 1, *, gen_seed: int | None = SEED,
              chash: str = "c0ffee", cfg_extra: dict | None = None, timing: dict | None = None,
              device: str = "cpu", set_excluded: list | None = None, drop_rows: int = 0,
              skip: tuple[str, ...] = (), overwrite: bool = False) -> Path:
    """Write the result files of shard ``index`` of ``count`` (``count=1``: an unsharded run) as
    benchmark.runner.run does, with the scores and samples of ``data``; return the folder."""
    samples = [Sample(i, out.parent / "LR" / f"{i}.png", out.parent / "HR" / f"{i}.png", (SIZE // 4 + 1, 2))
               for i in data.ids]
    mine = samples[index::count]
    cfg = _config(out, data.runs, index, count, cfg_extra)
    store = store_for(cfg, out, DATASET, METHOD, [s.id for s in mine])
    generation = {"method": cfg["method"], "seed": gen_seed, "dataset": {"name": DATASET, "content_hash": chash}}
    manifest = {"generation": generation, "generation_hash": config_hash(generation), "config": cfg,
                "config_hash": config_hash(cfg), "git_commit": "abc", "versions": {"srbench": "t"}, "device": f"host {index}",
                "created": f"2026-11-30T0{index}:00:00+00:00",  # shards run on other hosts, at other times
                datarecord.RECORD_KEY: datarecord.record(DATASET, 4, chash, samples)}
    store.prepare(manifest, overwrite=overwrite)
    seeds = [None if gen_seed is None else gen_seed + r for r in range(data.runs)]  # None: precomputed outputs
    rows, lstd_rows, excluded = [], [], []
    for s in mine:
        j = data.ids.index(s.id)
        for r in range(data.runs):
            write_png_atomic(store.sample_path(s.id, r), data.pixels[j, r])
            for name in ("psnr", "gain"):
                v = data.values[name][j, r]
                if np.isnan(v):
                    excluded.append(Excluded(name, s.id, r, data.reasons[(name, s.id, r)]))
                else:
                    rows.append((s.id, r, seeds[r], name, float(v)))
        from benchmark.stability import lstd_image  # the runner's per-image L-STD (numpy below checks it)

        lstd_rows.append((s.id, lstd_image(list(data.pixels[j]), CROP)))
    plan = MetricPlan(build_scorers(["spread"], {"spread": {}}, torch.device(device), CROP, kinds=("set",)), {})
    plan.active = {"psnr": (METRICS.get("psnr"), None), "gain": (METRICS.get("gain"), None), **plan.active}
    for name in skip:
        plan.active.pop(name)
        plan.skipped[name] = f"{name}: weights missing"
    plan.excluded += excluded
    scores = tidy(rows, score_sets(mine, store, data.runs, seeds, plan))
    plan.excluded += list(set_excluded or [])
    lstd_df = pd.DataFrame(lstd_rows, columns=["image", "lstd"])
    if drop_rows:  # a damaged shard: its last images' L-STD rows lost
        lstd_df = lstd_df.iloc[:-drop_rows]
    result = Result.from_scores(
        scores, lstd_df, plan.specs, method=METHOD, dataset=DATASET, runs=data.runs, seed=gen_seed,
        crop_border=CROP, stochastic=True, num_images=len(mine), skipped=plan.skipped,
        timing=_timing(index) if timing is None else timing, config=cfg, versions={"srbench": "t"},
        excluded=plan.excluded, scoring_device=device, stats=StatsConfig.from_mapping(cfg.get("stats")))
    result.extra = {"note": "kept"}
    atomic_write_csv(store.scores_csv, scores)
    atomic_write_csv(store.lstd_csv, lstd_df)
    atomic_write_json(store.results_json, result.to_json())
    return store.root


def write_shards(out: Path, data: Data, count: int = 3, **kw: Any) -> Path:
    for i in range(count):
        root = write_run(out, data, i, count, **kw)
    return root


# ----------------------------------------------------------------------------- expected values (numpy)


def expected(data: Data) -> dict[str, Any]:
    """The merged numbers, from the chosen values and pixels (DESIGN.md's definitions)."""
    out: dict[str, Any] = {}
    for name, v in data.values.items():
        per_image = np.nanmean(v, axis=1)
        counts = np.sum(~np.isnan(v), axis=1)
        stds = np.array([np.std(row[~np.isnan(row)]) for row in v])  # np.std: population std, ddof=0
        out[name] = {"mean": per_image.mean(), "gstd": stds[counts >= 2].mean() if data.runs > 1 else None,
                     "num_values": int(counts.sum()), "num_images": len(v)}
    x = data.pixels.astype(np.float64) / 255.0
    x = x[:, :, CROP:-CROP, CROP:-CROP, :]
    out["lstd"] = x.std(axis=1).mean(axis=(1, 2, 3)).mean() if data.runs > 1 else None
    spread = [np.std(data.pixels[:, r].reshape(len(data.ids), -1).mean(axis=1)) for r in range(data.runs)]
    out["spread"] = {"mean": np.mean(spread), "std_over_runs": np.std(spread) if data.runs > 1 else None}
    return out


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _without_timing(path: Path) -> dict[str, Any]:
    res = _read(path)
    res.pop("timing")
    return res


# ----------------------------------------------------------------------------- the numbers


def test_merged_numbers_equal_numpy_over_all_images(tmp_path, metrics):
    data = _data()
    root = write_shards(tmp_path / "out", data, 3)
    res = merge_folder(root)
    exp = expected(data)
    got = _read(root / "results.json")
    assert got == res.to_json()
    for name in ("psnr", "gain"):
        m = got["metrics"][name]
        assert m["mean"] == pytest.approx(exp[name]["mean"], rel=1e-12)
        assert m["gstd"] == pytest.approx(exp[name]["gstd"], rel=1e-12)
        assert (m["num_images"], m["num_values"]) == (exp[name]["num_images"], exp[name]["num_values"])
    assert got["metrics"]["psnr"]["num_capped"] == 1 and got["metrics"]["psnr"]["cap"] == 80.0
    assert got["metrics"]["gain"]["excluded"] == [
        {"image": "img_c", "run": 1, "reason": "gain: undefined on a flat image (zero variance)"}]
    assert got["metrics"]["psnr"]["excluded"] == [] and got["metrics"]["spread"]["excluded"] == []
    assert got["lstd"] == pytest.approx(exp["lstd"], rel=1e-12)
    # the set metric recomputed per run over all five images, not averaged over the shards
    assert got["metrics"]["spread"]["mean"] == pytest.approx(exp["spread"]["mean"], rel=1e-12)
    assert got["metrics"]["spread"]["std_over_runs"] == pytest.approx(exp["spread"]["std_over_runs"], rel=1e-12)
    assert got["metrics"]["spread"]["gstd"] is None
    shard_means = [_read(root / f"results.shard-{i}-of-3.json")["metrics"]["spread"]["mean"] for i in range(3)]
    assert abs(np.mean(shard_means) - exp["spread"]["mean"]) > 1e-3
    assert [c for c in metrics.calls if c[0] == 5] == [(5, r) for r in range(RUNS)]
    assert (got["method"], got["dataset"], got["runs"], got["seed"], got["crop_border"], got["num_images"]) == (
        METHOD, DATASET, RUNS, SEED, CROP, 5)
    assert got["stochastic"] is True and got["note"] == "kept"
    assert got["config"] == _config(tmp_path / "out", RUNS, 0, 1)


def test_merged_files_hold_every_image_and_run_of_every_shard(tmp_path, metrics):
    data = _data()
    root = write_shards(tmp_path / "out", data, 3)
    merge_folder(root)
    scores = pd.read_csv(root / "scores.csv", dtype={"image": str})
    for name in ("psnr", "gain"):
        df = scores[scores["metric"] == name]
        want = {(i, r): data.values[name][j, r] for j, i in enumerate(IDS) for r in range(RUNS)
                if not np.isnan(data.values[name][j, r])}
        assert {(i, r): v for i, r, v in zip(df["image"], df["run"], df["value"])} == pytest.approx(want)
        assert list(df["seed"]) == [SEED + r for r in df["run"]]
    sets = scores[scores["image"] == SET_IMAGE]
    assert list(sets["metric"]) == ["spread"] * RUNS and list(sets["run"]) == list(range(RUNS))
    assert list(sets["seed"]) == [SEED + r for r in range(RUNS)]
    # per-image L-STD: one row per image, in the data set's order (not shard by shard)
    lstd = pd.read_csv(root / "lstd.csv", dtype={"image": str})
    assert list(lstd["image"]) == IDS
    x = data.pixels.astype(np.float64)[:, :, CROP:-CROP, CROP:-CROP, :] / 255.0
    np.testing.assert_allclose(lstd["lstd"], x.std(axis=1).mean(axis=(1, 2, 3)), rtol=1e-12)
    assert list(lstd.columns) == ["image", "lstd"]


@pytest.mark.parametrize("gen_seed", [SEED, None])  # None: precomputed outputs, no seeds (empty cells)
def test_merged_result_equals_the_unsharded_run(tmp_path, metrics, gen_seed):
    data = _data(seed=3)
    # what an unsharded run writes from the same scores and samples
    whole = write_run(tmp_path / "a", data, gen_seed=gen_seed)
    root = write_shards(tmp_path / "b", data, 2, gen_seed=gen_seed)
    merge_folder(root)
    a, b = _without_timing(whole / "results.json"), _without_timing(root / "results.json")
    a["config"]["output_dir"] = b["config"]["output_dir"]  # the two folders differ only there
    assert a == b
    assert (root / "scores.csv").read_bytes() == (whole / "scores.csv").read_bytes()
    assert (root / "lstd.csv").read_bytes() == (whole / "lstd.csv").read_bytes()
    assert b["seed"] == gen_seed


def test_intervals_are_over_all_images(tmp_path, metrics):
    data = _data(seed=5)
    stats = {"enabled": True, "resamples": 200, "seed": 4}
    whole = write_run(tmp_path / "a", data, cfg_extra={"stats": stats})
    root = write_shards(tmp_path / "b", data, 2, cfg_extra={"stats": stats})
    merged = merge_folder(root)
    a = _read(whole / "results.json")
    assert merged.lstd_ci is not None and merged.stats == a["stats"]
    assert merged.lstd_ci.to_json() == a["lstd_ci"]
    for name in NAMES:
        assert merged.metrics[name].to_json(True)["mean_ci"] == a["metrics"][name]["mean_ci"]
    assert merged.metrics["psnr"].to_json(True)["gstd_ci"] == a["metrics"]["psnr"]["gstd_ci"]


def test_single_run_merges_to_undefined_spread(tmp_path, metrics):
    data = _data(runs=1)
    root = write_shards(tmp_path / "out", data, 2)
    merged = merge_folder(root)
    got = _read(root / "results.json")
    assert got["lstd"] is None and merged.lstd is None
    assert got["metrics"]["psnr"]["gstd"] is None
    assert got["metrics"]["psnr"]["mean"] == pytest.approx(data.values["psnr"][:, 0].mean())
    assert got["metrics"]["spread"]["std_over_runs"] is None
    assert got["runs"] == 1
    # the empty L-STD cells stay empty (None), not "nan"
    assert (root / "lstd.csv").read_text().splitlines()[1:] == [f"{i}," for i in IDS]


def test_timing_sums_the_shards(tmp_path, metrics):
    root = write_shards(tmp_path / "out", _data(), 3)
    t = merge_folder(root).timing
    shards = [_timing(i) for i in range(3)]
    assert t["generation_seconds"] == pytest.approx(sum(s["generation_seconds"] for s in shards))
    assert t["scoring_seconds"] == pytest.approx(sum(s["scoring_seconds"] for s in shards))
    assert t["image_runs_timed"] == sum(s["image_runs_timed"] for s in shards) == 3 + 5 + 7
    # weighted by each shard's image-runs: total seconds / total image-runs
    total = sum(s["seconds_per_image_run"] * s["image_runs_timed"] for s in shards)
    assert t["seconds_per_image_run"] == pytest.approx(total / 15)
    assert t["shards"] == 3 and t["parameters"] == 99 and t["pipeline"] is True
    assert _read(root / "results.json")["timing"] == t


def test_timing_of_a_shard_without_timing_is_not_summed(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2)
    root = write_run(tmp_path / "out", data, 1, 2, timing={})
    t = merge_folder(root).timing
    # shard 1 recorded nothing: no sum would be complete, the first shard's figures are shown as they are
    assert t == dict(_timing(0), shards=2)


def test_no_timed_image_runs_keep_the_first_shards_figure(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2, timing=dict(_timing(0), image_runs_timed=0, seconds_per_image_run=None))
    root = write_run(tmp_path / "out", data, 1, 2, timing=dict(_timing(1), image_runs_timed=0))
    t = merge_folder(root).timing
    assert t["image_runs_timed"] == 0 and t["seconds_per_image_run"] is None


def test_a_shard_that_did_not_count_its_image_runs_has_no_weight(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2)
    root = write_run(tmp_path / "out", data, 1, 2, timing={k: v for k, v in _timing(1).items()
                                                           if k != "image_runs_timed"})
    t = merge_folder(root).timing
    assert t["seconds_per_image_run"] == _timing(0)["seconds_per_image_run"]  # weights 3 and 0


def test_scoring_devices_of_the_shards_are_listed(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2, device="meta")
    root = write_run(tmp_path / "out", data, 1, 2)
    assert merge_folder(root).scoring_device == "cpu, meta"
    assert _read(root / "results.json")["scoring_device"] == "cpu, meta"


def test_set_metrics_are_rescored_on_the_device_asked_for(tmp_path, metrics, capsys):
    root = write_shards(tmp_path / "out", _data(), 2)
    metrics.devices.clear()
    assert merge(tmp_path / "out", device="meta") == [root / "results.json"]
    assert metrics.devices == [torch.device("meta")]
    metrics.devices.clear()
    assert main([str(tmp_path / "out"), "--device", "meta"]) == 0
    assert metrics.devices == [torch.device("meta")]
    metrics.devices.clear()
    merge_folder(root)
    assert metrics.devices == [torch.device("cpu")]  # the default
    metrics.devices.clear()
    assert main([str(root)]) == 0
    assert metrics.devices == [torch.device("cpu")]


def test_exclusions_of_per_image_metrics_travel_and_set_metrics_are_rescored(tmp_path, metrics):
    data = _data()
    # shard 0 could not score spread on run 2 over its images; over all five images it can,
    # while run 1 over all five fails: the merged exclusions are the merge's own
    metrics.fail_on = {(2, 2), (5, 1)}
    root = write_shards(tmp_path / "out", data, 3)
    assert any(e["run"] == 2 for e in _read(root / "results.shard-0-of-3.json")["metrics"]["spread"]["excluded"])
    merged = merge_folder(root)
    spread = merged.metrics["spread"]
    assert [(e["image"], e["run"]) for e in spread.excluded] == [(SET_IMAGE, 1)]
    assert "planted failure" in spread.excluded[0]["reason"]
    exp = [np.std(data.pixels[:, r].reshape(5, -1).mean(axis=1)) for r in (0, 2)]
    assert spread.mean == pytest.approx(np.mean(exp)) and spread.num_values == 2
    assert [(e["image"], e["run"]) for e in merged.metrics["gain"].excluded] == [("img_c", 1)]


def test_skipped_metrics_are_kept(tmp_path, metrics):
    data = _data()
    root = write_shards(tmp_path / "out", data, 2, skip=("gain",))
    merged = merge_folder(root)
    assert merged.skipped == {"gain": "gain: weights missing"}
    assert list(merged.metrics) == ["psnr", "spread"]
    assert _read(root / "results.json")["skipped"] == {"gain": "gain: weights missing"}


def test_merged_manifest(tmp_path, metrics):
    root = write_shards(tmp_path / "out", _data(), 3)
    merge_folder(root)
    shard0 = _read(root / "manifest.shard-0-of-3.json")
    man = _read(root / "manifest.json")
    config = dict(shard0["config"], shard={"index": 0, "count": 1})
    assert "shard" not in man and man["config"] == config
    assert man["config_hash"] == hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    assert man["merged_from"] == [f"manifest.shard-{i}-of-3.json" for i in range(3)]
    for key in ("generation", "generation_hash", "git_commit", "versions", "device", "created", "data"):
        assert man[key] == shard0[key]
    assert (man["device"], man["created"]) == ("host 0", "2026-11-30T00:00:00+00:00")  # the first shard's


# ----------------------------------------------------------------------------- refusals


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file() and not p.name.startswith(".lock")}


def test_missing_shard_is_named(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 3)
    root = write_run(tmp_path / "out", data, 2, 3)
    before = _files(root)
    with pytest.raises(FileNotFoundError, match=r"shard\(s\) 1 of 3 have not finished"):
        merge(tmp_path / "out")
    (root / "results.shard-2-of-3.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"shard\(s\) 1, 2 of 3 have not finished"):
        merge_folder(root)
    del before["results.shard-2-of-3.json"]
    assert _files(root) == before  # nothing written


def test_a_started_shard_without_results_is_unfinished(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2)
    root = write_run(tmp_path / "out", data, 1, 2)
    (root / "results.shard-1-of-2.json").unlink()
    (root / "results.shard-1-of-2.json").mkdir()  # not a file
    with pytest.raises(FileNotFoundError, match=r"shard\(s\) 1 of 2"):
        merge_folder(root)


def test_shards_of_different_counts_are_refused(tmp_path, metrics):
    data = _data()
    write_shards(tmp_path / "out", data, 2)
    root = write_run(tmp_path / "out", data, 0, 3)
    with pytest.raises(ValueError, match=r"different shard.count values \(\[2, 3\]\)"):
        merge_folder(root)
    assert not (root / "results.json").exists()


def test_other_manifest_names_are_not_shards(tmp_path, metrics):
    root = write_shards(tmp_path / "out", _data(), 2)
    (root / "manifest.shard-x-of-2.json").write_text("{}")  # not written by srbench: ignored
    (root / "manifest.shard-0-of-3.json.bak").write_text("{}")
    assert merge_folder(root).num_images == 5


def test_no_shards_to_merge(tmp_path, metrics):
    root = tmp_path / "out" / DATASET / METHOD
    root.mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds no manifest.shard"):
        merge_folder(root)
    with pytest.raises(FileNotFoundError, match="no sharded results under"):
        merge(tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        merge(tmp_path / "nowhere")


def test_shard_with_another_generation_config_is_refused(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2)
    root = write_run(tmp_path / "out", data, 1, 2, gen_seed=SEED + 1, overwrite=True)
    with pytest.raises(ValueError, match="generated with different configurations"):
        merge_folder(root)
    assert not (root / "results.json").exists() and not (root / "manifest.json").exists()


@pytest.mark.parametrize("extra", [{"runs": 2}, {"crop_border": 0}, {"metrics": {"psnr": {}, "spread": {}, "gain": {"x": 1}}}])
def test_shard_scored_with_another_config_is_refused(tmp_path, metrics, extra):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2)
    root = write_run(tmp_path / "out", data, 1, 2, cfg_extra=extra)
    with pytest.raises(ValueError, match="scored with different configurations"):
        merge_folder(root)
    assert not (root / "results.json").exists()


def test_shards_may_differ_in_shard_and_pipeline_only(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2, cfg_extra={"pipeline": False})
    root = write_run(tmp_path / "out", data, 1, 2)
    merged = merge_folder(root)
    assert merged.num_images == 5 and merged.config["pipeline"] is False  # the first shard's config


def test_shard_with_another_data_set_record_is_refused(tmp_path, metrics):
    root = write_shards(tmp_path / "out", _data(), 2)
    path = root / "manifest.shard-1-of-2.json"
    good = _read(path)
    man = _read(path)
    man["data"]["content_hash"] = "other"  # same images, another content
    atomic_write_json(path, man)
    with pytest.raises(ValueError, match=r"manifest.shard-1-of-2.json records another data set"):
        merge_folder(root)
    man = _read(path)
    man["data"] = dict(good["data"], images=good["data"]["images"][:-1])  # same hash, another image list
    atomic_write_json(path, man)
    with pytest.raises(ValueError, match=r"manifest.shard-1-of-2.json records another data set"):
        merge_folder(root)
    assert not (root / "results.json").exists()
    atomic_write_json(path, good)
    assert merge_folder(root).num_images == 5


def test_shards_covering_fewer_images_than_the_data_set_are_refused(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2)
    root = write_run(tmp_path / "out", data, 1, 2, drop_rows=1)  # img_d lost from shard 1
    with pytest.raises(ValueError, match=r"cover 4 of the data set's 5 images \(missing: img_d\)"):
        merge_folder(root)
    assert not (root / "results.json").exists()


@pytest.mark.parametrize("index", [0, 1])
def test_shard_results_without_data_set_record_are_refused(tmp_path, metrics, index):
    root = write_shards(tmp_path / "out", _data(), 2)
    man = _read(root / f"manifest.shard-{index}-of-2.json")
    del man["data"]
    atomic_write_json(root / f"manifest.shard-{index}-of-2.json", man)
    with pytest.raises(ValueError, match=rf"/manifest\.shard-{index}-of-2\.json has no data set record"):
        merge_folder(root)


# ----------------------------------------------------------------------------- lock and temporaries


def test_merge_holds_the_folder_lock_exclusively_and_releases_it(tmp_path, metrics, monkeypatch):
    root = write_shards(tmp_path / "out", _data(), 2)
    seen = []
    real = merge_mod.atomic_write_json

    def probe(path, obj):
        # while merge writes, neither a shard nor a whole run can take the folder (tried from a
        # thread with timeout 0: a merge that did not lock lets the probe in)
        def attempt():
            for idx, count in ((1, 2), (0, 1)):
                try:
                    OutputLock(root, idx, count).acquire().release()
                    seen.append("acquired")
                except OutputLockedError:
                    seen.append("refused")
        t = threading.Thread(target=attempt)
        t.start()
        t.join(timeout=10)
        assert not t.is_alive()
        real(path, obj)

    monkeypatch.setattr(merge_mod, "atomic_write_json", probe)
    merge_folder(root)
    assert seen == ["refused", "refused"] * 2
    OutputLock(root, 0, 1).acquire().release()  # released when merge returned


def test_merge_is_refused_while_a_shard_holds_the_folder(tmp_path, metrics):
    root = write_shards(tmp_path / "out", _data(), 2)
    shard = OutputLock(root, 1, 2).acquire()
    try:
        with pytest.raises(OutputLockedError, match=r"\.lock is held"):
            merge_folder(root)
    finally:
        shard.release()
    assert not (root / "results.json").exists()
    merge_folder(root)  # the lock of the refused merge was released
    assert (root / "results.json").is_file()


def test_merge_releases_the_lock_when_it_fails(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2)
    root = write_run(tmp_path / "out", data, 1, 2, gen_seed=1, overwrite=True)
    with pytest.raises(ValueError):
        merge_folder(root)
    OutputLock(root, 0, 1).acquire().release()


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path, metrics, caplog):
    root = write_shards(tmp_path / "out", _data(), 2)
    stale = [root / ".results.k1l2ed.json.tmp", root / ".scores.x9.csv.tmp", root / ".manifest.json.123.tmp"]
    for p in stale:
        p.write_text("half")
    kept = [root / ".lock.shard-0-of-2.info.77.tmp",  # a lock's description being written
            root / "samples" / "sample00" / ".001.png.5.tmp",  # samples/ is not the merge's
            root / "notes.tmp", root / ".hidden.txt"]
    for p in kept:
        p.write_text("keep")
    (root / ".dir.tmp").mkdir()
    caplog.set_level("INFO", logger="srbench")
    merge_folder(root)
    assert not any(p.exists() for p in stale)
    assert all(p.read_text() == "keep" for p in kept) and (root / ".dir.tmp").is_dir()
    assert "removed 3 temporary file(s)" in caplog.text
    caplog.clear()
    merge_folder(root)  # nothing left to remove: nothing said
    assert "temporary" not in caplog.text


def test_temporaries_are_removed_before_the_merge_runs(tmp_path, metrics):
    data = _data()
    write_run(tmp_path / "out", data, 0, 2)
    root = write_run(tmp_path / "out", data, 1, 2, gen_seed=1, overwrite=True)
    (root / ".results.a.json.tmp").write_text("half")
    with pytest.raises(ValueError, match="different configurations"):
        merge_folder(root)
    assert not (root / ".results.a.json.tmp").exists()


# ----------------------------------------------------------------------------- finding folders, CLI


def test_find_sharded_and_merge_every_folder(tmp_path, metrics):
    out = tmp_path / "out"
    data = _data()
    a = write_shards(out, data, 2)
    # a second (data set, method) folder: same writers, another data set name
    b = _copy_shards(a, out / "other" / "m2")
    # neither Hydra's own folders nor unsharded folders are sharded results
    hydra = out / "x" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "manifest.shard-0-of-2.json").write_text("{}")
    (out / "plain" / "m").mkdir(parents=True)
    (out / "plain" / "m" / "manifest.json").write_text("{}")
    assert find_sharded(out) == [b, a] == sorted([a, b])
    assert merge(out) == [b / "results.json", a / "results.json"]
    assert _read(b / "results.json")["metrics"] == _read(a / "results.json")["metrics"]
    assert merge(str(a)) == [a / "results.json"]


def _copy_shards(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for p in src.glob("*.shard-*"):
        (dst / p.name).write_bytes(p.read_bytes())
    (dst / "samples").symlink_to(src / "samples")
    return dst


def test_a_folder_holding_shards_is_merged_alone(tmp_path, metrics):
    a = write_shards(tmp_path / "out", _data(), 2)
    nested = _copy_shards(a, a / "kept" / "m")  # whatever lies below a result folder is not merged with it
    assert merge(a) == [a / "results.json"]
    assert not (nested / "results.json").exists()
    assert merge(tmp_path / "out") == [a / "results.json", nested / "results.json"]


def test_main_prints_the_table_and_the_path(tmp_path, metrics, capsys):
    root = write_shards(tmp_path / "out", _data(), 2)
    assert main([str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"merged: {root / 'results.json'}" in out
    assert METHOD in out and "psnr" in out.lower()


@pytest.mark.parametrize("case", ["missing", "unfinished", "mixed", "locked"])
def test_main_exits_2_on_bad_input(tmp_path, metrics, capsys, case):
    data = _data()
    out = tmp_path / "out"
    root = write_run(out, data, 0, 2)
    lock = None
    if case == "missing":
        target = tmp_path / "nowhere"
    else:
        target = out
        if case == "mixed":
            write_run(out, data, 1, 2, gen_seed=1, overwrite=True)
        elif case == "locked":
            write_run(out, data, 1, 2)
            lock = OutputLock(root, 1, 2).acquire()
    try:
        assert main([str(target)]) == 2
    finally:
        if lock:
            lock.release()
    err = capsys.readouterr()
    assert err.err.startswith("error: ") and "merged:" not in err.out


def test_damaged_shard_results_are_named(tmp_path, metrics):
    root = write_shards(tmp_path / "out", _data(), 2)
    res = _read(root / "results.shard-1-of-2.json")
    del res["metrics"]
    atomic_write_json(root / "results.shard-1-of-2.json", res)
    with pytest.raises(ValueError, match=r"results\.shard-1-of-2\.json has no 'metrics' key"):
        merge_folder(root)


def test_shard_configs_are_compared_whatever_their_key_order(tmp_path, metrics):
    root = write_shards(tmp_path / "out", _data(), 2)
    path = root / "results.shard-1-of-2.json"
    res = _read(path)
    res["config"] = dict(reversed(list(res["config"].items())))  # e.g. written by another srbench version
    atomic_write_json(path, res)
    merged = merge_folder(root)
    assert merged.num_images == 5 and list(merged.config) == list(_config(tmp_path / "out", RUNS, 0, 1))


@pytest.mark.parametrize("ids", [["0801", "0802", "0803", "0804", "0805"],  # DIV2K's ids: all digits
                                 ["NA", "null", "nan", "None", "n/a"]])  # pandas' default NA strings
@pytest.mark.parametrize("skip", [(), ("spread",)])  # without a set metric no "*" row makes the column text
def test_image_ids_stay_strings_through_the_shard_files(tmp_path, metrics, ids, skip):
    data = _data(ids=ids)
    root = write_shards(tmp_path / "out", data, 2, skip=skip)
    merged = merge_folder(root)
    assert merged.num_images == 5 and merged.metrics["psnr"].num_images == 5
    scores = (root / "scores.csv").read_text().splitlines()
    assert sorted({line.split(",")[0] for line in scores[1:]}) == sorted([*ids] + ([] if skip else [SET_IMAGE]))
    assert [line.split(",")[0] for line in (root / "lstd.csv").read_text().splitlines()[1:]] == ids
    exp = expected(data)
    assert merged.metrics["gain"].mean == pytest.approx(exp["gain"]["mean"], rel=1e-12)
    assert merged.lstd == pytest.approx(exp["lstd"], rel=1e-12)


def test_help_names_the_command_and_its_arguments(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert text == ("usage: python -m benchmark merge [-h] [--device DEVICE] output_dir "
                    "``python -m benchmark merge <output_dir>``: assemble image shards into one result. "
                    "positional arguments: output_dir the output_dir of the shards (or one <dataset>/<method> folder) "
                    "options: -h, --help show this help message and exit "
                    "--device DEVICE device for set-level metrics such as FID (default cpu)")


def test_key_value_spelling_of_device_is_accepted_with_a_note(tmp_path, metrics, capsys):
    write_shards(tmp_path / "out", _data(), 2)
    assert main([str(tmp_path / "out"), "device=meta"]) == 0
    assert metrics.devices[-1] == torch.device("meta")
    assert "note: merge options are written --device meta; device=meta is accepted" in capsys.readouterr().err
