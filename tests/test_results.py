"""The typed results model: one builder (from_scores) with hand-computed numbers, JSON round trip,
old schema-1 files, and blanking for deterministic methods."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from benchmark.results import SCHEMA, MetricResult, Result
from benchmark.store import SET_IMAGE

FACTS = {"psnr": SimpleNamespace(kind="FR", higher_is_better=True),
         "niqe": SimpleNamespace(kind="NR", higher_is_better=False),
         "fid": SimpleNamespace(kind="set", higher_is_better=False),
         "empty": SimpleNamespace(kind="FR", higher_is_better=True)}


def _scores() -> pd.DataFrame:
    rows = [("a", 0, 0, "psnr", 20.0), ("a", 1, 1, "psnr", 22.0), ("b", 0, 0, "psnr", 30.0), ("b", 1, 1, "psnr", 30.0),
            ("a", 0, 0, "niqe", 5.0), ("a", 1, 1, "niqe", 7.0), ("b", 0, 0, "niqe", 3.0), ("b", 1, 1, "niqe", 4.0),
            (SET_IMAGE, 0, 0, "fid", 10.0), (SET_IMAGE, 1, 1, "fid", 14.0)]
    return pd.DataFrame(rows, columns=["image", "run", "seed", "metric", "value"])


def _build(stochastic: bool = True) -> Result:
    return Result.from_scores(_scores(), pd.DataFrame({"image": ["a", "b"], "lstd": [0.02, 0.04]}), FACTS,
                              method="m", dataset="d", runs=2, seed=0, crop_border=4, stochastic=stochastic,
                              num_images=2, skipped={"lpips": "missing file"}, timing={"seconds_per_image_run": 1.5},
                              config={"metrics": {"psnr": {}}}, versions={"python": "3"})


def test_from_scores_numbers_by_hand():
    r = _build()
    # PSNR: image means 21 and 30 -> 25.5; population std over runs 1 and 0 -> G-STD 0.5
    assert r.metrics["psnr"].mean == pytest.approx(25.5) and r.metrics["psnr"].gstd == pytest.approx(0.5)
    assert r.metrics["psnr"].num_images == 2
    # NIQE: image means 6 and 3.5 -> 4.75; stds 1 and 0.5 -> 0.75
    assert r.metrics["niqe"].mean == pytest.approx(4.75) and r.metrics["niqe"].gstd == pytest.approx(0.75)
    # FID (set): mean over runs 12, no G-STD, population std over runs 2
    fid = r.metrics["fid"]
    assert (fid.mean, fid.gstd, fid.std_over_runs) == (pytest.approx(12.0), None, pytest.approx(2.0))
    assert r.metrics["empty"].mean is None and r.metrics["empty"].num_images == 0
    assert r.lstd == pytest.approx(0.03)
    assert list(r.metrics) == list(FACTS)  # the order of the metric facts


def test_deterministic_method_has_no_spread():
    r = _build(stochastic=False)
    assert r.lstd is None and all(m.gstd is None for m in r.metrics.values())
    assert r.metrics["psnr"].mean == pytest.approx(25.5)


def test_json_round_trip_and_keys():
    r = _build()
    data = json.loads(json.dumps(r.to_json()))
    assert data["schema"] == SCHEMA
    # num_values / excluded (issue 12): values averaged and those left out, for every metric
    assert list(data["metrics"]["fid"]) == ["mean", "gstd", "std_over_runs", "higher_is_better", "kind",
                                            "num_values", "excluded"]
    assert list(data["metrics"]["psnr"]) == ["mean", "gstd", "higher_is_better", "kind", "num_images",
                                             "num_values", "excluded"]
    assert data["metrics"]["psnr"]["num_values"] == 4 and data["metrics"]["fid"]["num_values"] == 2
    assert data["metrics"]["psnr"]["excluded"] == [] and data["metrics"]["empty"]["num_values"] == 0
    assert {"method", "dataset", "runs", "seed", "crop_border", "stochastic", "num_images", "metrics", "skipped",
            "lstd", "timing", "config", "versions"} <= set(data)
    assert Result.from_json(data).to_json() == data


def test_schema_1_file_loads_and_unknown_keys_survive():
    old = {"method": "m", "dataset": "d", "runs": 3, "seed": 0, "crop_border": 4,
           "metrics": {"psnr": {"mean": 25.0, "gstd": 0.1, "higher_is_better": True}},
           "lstd": 0.01, "future_key": [1, 2]}
    r = Result.from_json(old)
    assert r.stochastic is True  # no stochastic key: three runs mean a stochastic method
    assert r.metrics["psnr"].kind == "FR" and r.metrics["psnr"].mean == 25.0
    assert r.to_json()["future_key"] == [1, 2] and r.to_json()["schema"] == SCHEMA


def test_bad_files_are_named():
    with pytest.raises(ValueError, match="x.json has no 'metrics' key"):
        Result.from_json({"method": "m", "dataset": "d"}, "x.json")
    with pytest.raises(ValueError, match="schema 99"):
        Result.from_json({"method": "m", "dataset": "d", "metrics": {}, "schema": 99}, "x.json")
    with pytest.raises(ValueError, match="does not hold a JSON object"):
        Result.from_json([1], "x.json")


def test_metric_result_nan_reads_as_none():
    m = MetricResult.from_json("psnr", {"mean": float(np.nan), "gstd": None, "higher_is_better": True, "kind": "FR"})
    assert m.mean is None


def test_scoring_device_is_optional_and_round_trips():
    old = {"method": "m", "dataset": "d", "metrics": {}, "schema": 2}
    r = Result.from_json(old, "old.json")
    assert r.scoring_device is None and "scoring_device" not in r.to_json()
    new = Result.from_json(dict(old, scoring_device="cuda:0"), "new.json")
    assert new.scoring_device == "cuda:0" and new.to_json()["scoring_device"] == "cuda:0"
    assert "scoring_device" not in new.extra
