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


def test_non_finite_values_excluded_lists_and_cap_counts_by_hand():
    """NaN/inf rows never enter a mean; each metric lists its own exclusions sorted by (image, run);
    values within CAP_SLACK (1e-3) of the cap count as capped, 79.99 dB does not; one run of a set
    metric has no std over runs."""
    from benchmark.results import CAP_SLACK, Excluded

    rows = [("a", 0, 0, "psnr", 80.0), ("a", 1, 1, "psnr", 80.0 - CAP_SLACK / 2), ("b", 0, 0, "psnr", 79.99),
            ("b", 1, 1, "psnr", float("nan")), ("a", 0, 0, "niqe", 5.0), ("a", 1, 1, "niqe", float("inf")),
            ("b", 0, 0, "niqe", 3.0), ("b", 1, 1, "niqe", 4.0), (SET_IMAGE, 0, 0, "fid", 10.0)]
    scores = pd.DataFrame(rows, columns=["image", "run", "seed", "metric", "value"])
    facts = {"psnr": SimpleNamespace(kind="FR", higher_is_better=True, cap=80.0),
             "niqe": SimpleNamespace(kind="NR", higher_is_better=False),
             "fid": SimpleNamespace(kind="set", higher_is_better=False)}
    ex = [Excluded("psnr", "b", 1, "psnr: undefined"), Excluded("niqe", "a", 1, "niqe: undefined"),
          Excluded("psnr", "a", 3, "psnr: failed")]
    r = Result.from_scores(scores, [0.1, 0.3], facts, method="m", dataset="d", runs=2, seed=0, crop_border=0,
                           stochastic=True, num_images=2, excluded=ex)
    psnr, niqe, fid = r.metrics["psnr"], r.metrics["niqe"], r.metrics["fid"]
    assert psnr.mean == pytest.approx(((80.0 + 80.0 - CAP_SLACK / 2) / 2 + 79.99) / 2)
    assert psnr.num_values == 3 and psnr.num_images == 2
    assert psnr.excluded == [{"image": "a", "run": 3, "reason": "psnr: failed"},
                             {"image": "b", "run": 1, "reason": "psnr: undefined"}]
    assert (psnr.cap, psnr.num_capped) == (80.0, 2)
    assert niqe.mean == pytest.approx((5.0 + 3.5) / 2) and niqe.num_values == 3
    assert niqe.excluded == [{"image": "a", "run": 1, "reason": "niqe: undefined"}]
    assert niqe.cap is None and niqe.num_capped is None
    assert (fid.mean, fid.std_over_runs, fid.num_values, fid.excluded) == (10.0, None, 1, [])
    assert r.lstd == pytest.approx(0.2)


def test_metric_json_writes_each_number_and_intervals_beside_their_values():
    """The results.json keys of one metric (module docstring): the numbers themselves, the intervals
    ({low, high}) right after the value they belong to only when asked, std_over_runs for every set
    metric (null for one run)."""
    from benchmark.stats import Interval

    m = MetricResult(25.5, 0.5, True, "FR", num_images=2, mean_ci=Interval(25.0, 26.0), gstd_ci=Interval(0.4, 0.6))
    assert m.to_json() == {"mean": 25.5, "gstd": 0.5, "higher_is_better": True, "kind": "FR", "num_images": 2}
    with_ci = m.to_json(intervals=True)
    assert list(with_ci) == ["mean", "mean_ci", "gstd", "gstd_ci", "higher_is_better", "kind", "num_images"]
    assert with_ci["mean_ci"] == {"low": 25.0, "high": 26.0} and with_ci["gstd_ci"] == {"low": 0.4, "high": 0.6}
    bare = MetricResult(25.5, None, True, "FR").to_json(intervals=True)
    assert bare["mean_ci"] is None and bare["gstd_ci"] is None
    one_run = MetricResult(10.0, None, False, "set")
    assert one_run.to_json() == {"mean": 10.0, "gstd": None, "std_over_runs": None, "higher_is_better": False,
                                 "kind": "set"}
    data = _build().to_json()
    assert (data["metrics"]["psnr"]["mean"], data["metrics"]["psnr"]["gstd"]) == (25.5, 0.5)
    assert (data["metrics"]["fid"]["mean"], data["metrics"]["fid"]["std_over_runs"]) == (12.0, 2.0)


def test_metric_json_round_trip_keeps_intervals_cap_exclusions_and_unknown_keys():
    """Every key a schema-2 metric may hold reads back into its field and is written back unchanged;
    a key this version does not know travels in ``extra``; a metric without higher_is_better is refused."""
    data = {"mean": 79.5, "mean_ci": {"low": 79.0, "high": 80.0}, "gstd": 0.25, "gstd_ci": {"low": 0.125, "high": 0.5},
            "higher_is_better": True, "kind": "FR", "num_images": 3, "num_values": 5,
            "excluded": [{"image": "a", "run": 1, "reason": "psnr: failed"}], "cap": 80.0, "num_capped": 2,
            "future": {"x": 1}}
    m = MetricResult.from_json("psnr", data)
    assert (m.mean, m.gstd, m.num_images, m.num_values, m.cap, m.num_capped) == (79.5, 0.25, 3, 5, 80.0, 2)
    assert (m.mean_ci.low, m.mean_ci.high, m.gstd_ci.low, m.gstd_ci.high) == (79.0, 80.0, 0.125, 0.5)
    assert m.excluded == data["excluded"] and m.extra == {"future": {"x": 1}}
    assert m.to_json(intervals=True) == data
    for bad in ({"mean": 1.0, "kind": "FR"}, [1.0]):
        with pytest.raises(ValueError, match="metric 'psnr' has no 'higher_is_better' key"):
            MetricResult.from_json("psnr", bad, "r.json")


def test_scoring_device_is_optional_and_round_trips():
    old = {"method": "m", "dataset": "d", "metrics": {}, "schema": 2}
    r = Result.from_json(old, "old.json")
    assert r.scoring_device is None and "scoring_device" not in r.to_json()
    new = Result.from_json(dict(old, scoring_device="cuda:0"), "new.json")
    assert new.scoring_device == "cuda:0" and new.to_json()["scoring_device"] == "cuda:0"
    assert "scoring_device" not in new.extra
