"""The typed results model: one builder (from_scores) with hand-computed numbers, JSON round trip,
old schema-1 files, and blanking for deterministic methods."""

from __future__ import annotations

import dataclasses
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


def test_run_facts_and_intervals_are_wired_into_the_result():
    """Every run fact reaches the result; with stats enabled each metric's intervals are those
    benchmark.stats.intervals computes from the same scores (its values are checked against scipy in
    tests/test_stats.py) and contain the mean; a list of per-image L-STDs gives what a frame gives."""
    from benchmark.stats import StatsConfig, intervals

    r = _build()
    assert (r.method, r.dataset, r.runs, r.seed, r.crop_border, r.num_images) == ("m", "d", 2, 0, 4, 2)
    assert r.stochastic is True and _build(stochastic=False).stochastic is False
    assert r.skipped == {"lpips": "missing file"} and r.timing == {"seconds_per_image_run": 1.5}
    assert r.stats is None and r.lstd_ci is None and r.metrics["psnr"].mean_ci is None
    cfg = StatsConfig(resamples=200, seed=3)
    lstd = pd.DataFrame({"image": ["a", "b"], "lstd": [0.02, 0.04]})
    kw = dict(method="m", dataset="d", runs=2, seed=0, crop_border=4, stochastic=True, num_images=2, stats=cfg)
    with_ci = Result.from_scores(_scores(), lstd, FACTS, **kw)
    want = intervals(_scores(), lstd, {n: f.kind for n, f in FACTS.items() if n != "empty"}, True, cfg)
    for name in ("psnr", "niqe", "fid"):
        m = with_ci.metrics[name]
        got = {"mean_ci": m.mean_ci.to_json() if m.mean_ci else None,
               "gstd_ci": m.gstd_ci.to_json() if m.gstd_ci else None}
        assert got == {k: want["metrics"][name][k] for k in ("mean_ci", "gstd_ci")}, name
        assert m.mean_ci.low <= m.mean <= m.mean_ci.high, name
    assert with_ci.metrics["psnr"].gstd_ci is not None and with_ci.metrics["empty"].mean_ci is None
    assert with_ci.lstd_ci.to_json() == want["lstd_ci"] and with_ci.stats == cfg.record()
    from_list = Result.from_scores(_scores(), [0.02, 0.04], FACTS, **kw)
    assert from_list.lstd_ci == with_ci.lstd_ci and from_list.metrics["psnr"].mean_ci == with_ci.metrics["psnr"].mean_ci
    kw["stochastic"] = False
    assert Result.from_scores(_scores(), lstd, FACTS, **kw).lstd_ci is None  # no L-STD, no interval
    assert r.scoring_device is None  # the device the per-image metrics ran on, when the runner names it
    assert Result.from_scores(_scores(), lstd, FACTS, **dict(kw, stats=None), scoring_device="cuda:1").scoring_device \
        == "cuda:1"


def test_a_set_metric_without_values_has_no_mean_and_the_cap_boundary_counts():
    from benchmark.results import CAP_SLACK

    rows = [(SET_IMAGE, 0, 0, "fid", float("nan")), ("a", 0, 0, "psnr", 80.0 - CAP_SLACK),
            ("a", 1, 1, "psnr", 80.0 - 2 * CAP_SLACK)]
    facts = {"fid": SimpleNamespace(kind="set", higher_is_better=False),
             "psnr": SimpleNamespace(kind="FR", higher_is_better=True, cap=80.0)}
    r = Result.from_scores(pd.DataFrame(rows, columns=["image", "run", "seed", "metric", "value"]), [0.1], facts,
                           method="m", dataset="d", runs=2, seed=0, crop_border=0, stochastic=True, num_images=1)
    assert (r.metrics["fid"].mean, r.metrics["fid"].std_over_runs, r.metrics["fid"].num_values) == (None, None, 0)
    assert r.metrics["psnr"].num_capped == 1  # exactly CAP_SLACK below the cap is "within" it; twice is not


def _entry(**change) -> dict:
    """A well-formed results.json dict (schema 2) with ``change`` applied (None values delete the key)."""
    e = {"schema": 2, "method": "m", "dataset": "d", "runs": 2, "seed": 0, "crop_border": 4, "stochastic": True,
         "num_images": 2, "lstd": 0.03, "lstd_ci": {"low": 0.02, "high": 0.04}, "skipped": {"lpips": "missing file"},
         "metrics": {"psnr": {"mean": 25, "gstd": 0.5, "mean_ci": {"low": 24, "high": 26.5}, "gstd_ci": None,
                              "higher_is_better": True, "kind": "FR"},
                     "fid": {"mean": 12.0, "gstd": None, "std_over_runs": 2.0, "higher_is_better": False,
                             "kind": "set"}}}
    e.update(change)
    return e


def _metric(**change) -> dict:
    m = {"mean": 25.5, "gstd": 0.5, "higher_is_better": True, "kind": "FR"}
    m.update(change)
    return _entry(metrics={"psnr": m})


@pytest.mark.parametrize("entry, problems", [
    (_entry(), []),
    (_entry(runs=None, seed=None, crop_border=None, num_images=None, lstd=None, skipped=None, lstd_ci=None), []),
    ([1, 2], ["is a JSON list, not an object"]),
    (_entry(dataset=5, method=None), ["'dataset' is 5, expected a string", "'method' is None, expected a string"]),
    (_entry(runs=2.0, seed=True, crop_border="4", num_images=False),
     ["'runs' is 2.0, expected an integer", "'seed' is True, expected an integer",
      "'crop_border' is '4', expected an integer", "'num_images' is False, expected an integer"]),
    (_entry(stochastic=1), ["'stochastic' is 1, expected true or false"]),
    (_entry(lstd="0.03"), ["'lstd' is '0.03', expected a number or null"]),
    (_entry(lstd=True), ["'lstd' is True, expected a number or null"]),
    (_entry(skipped=["lpips"]), ["'skipped' is ['lpips'], expected an object"]),
    (_entry(metrics=None), ["'metrics' is None, expected an object of metric name -> {mean, gstd, higher_is_better}"]),
    (_entry(stochastic="yes", metrics=[]),
     ["'stochastic' is 'yes', expected true or false",
      "'metrics' is [], expected an object of metric name -> {mean, gstd, higher_is_better}"]),
    (_entry(metrics={"psnr": 25.5, "ssim": {"mean": 0.7, "higher_is_better": "yes"}, "lpips": {"higher_is_better": False}}),
     ["metric 'psnr' is 25.5, expected an object", "metric 'ssim' has higher_is_better 'yes', expected true or false"]),
    (_metric(higher_is_better=1), ["metric 'psnr' has higher_is_better 1, expected true or false"]),
    (_metric(higher_is_better=None), ["metric 'psnr' has higher_is_better None, expected true or false"]),
    (_metric(mean="25.5", gstd=False, std_over_runs=[1.0]),
     ["metric 'psnr' has mean '25.5', expected a number or null", "metric 'psnr' has gstd False, expected a number or null",
      "metric 'psnr' has std_over_runs [1.0], expected a number or null"]),
    (_metric(mean=None, gstd=None, std_over_runs=None, mean_ci=None, gstd_ci=None), []),
    (_metric(mean_ci={"low": 1.0}, gstd_ci={"low": "a", "high": 1.0}),
     ["metric 'psnr' has mean_ci {'low': 1.0}, expected null or {low, high} numbers",
      "metric 'psnr' has gstd_ci {'low': 'a', 'high': 1.0}, expected null or {low, high} numbers"]),
    (_metric(mean_ci={"high": 1.0, "low": 0}, gstd_ci=[0.1, 0.2]),
     ["metric 'psnr' has gstd_ci [0.1, 0.2], expected null or {low, high} numbers"]),
    (_entry(lstd_ci={"low": 0.02, "high": None}),
     ["'lstd_ci' is {'low': 0.02, 'high': None}, expected null or {low, high} numbers"]),
    (_entry(lstd_ci=[0.02, 0.04]), ["'lstd_ci' is [0.02, 0.04], expected null or {low, high} numbers"]),
])
def test_result_problems_lists_every_wrong_key(entry, problems):
    """Each malformed key is named with what was found and what was expected, all at once; integers,
    floats and null pass where numbers are expected, booleans do not (JSON true is not a number)."""
    from benchmark.results import result_problems

    assert result_problems(entry) == problems
    if problems and isinstance(entry, dict) and "metrics" in entry:
        with pytest.raises(ValueError, match="x.json is malformed: " + problems[0][:20].replace("[", r"\[")):
            Result.from_json(entry, "x.json")


def test_result_json_writes_intervals_stats_and_baseline_keys_in_order():
    """Intervals are written beside their values for every metric once any interval is known (a baseline
    entry keeps only the ends it read), ``stats`` only when recorded; content_hash/protocol (baseline
    entries) and the scoring device only when set; unknown keys last, unchanged."""
    from benchmark.stats import Interval

    metrics = {"psnr": MetricResult(25.5, 0.5, True, "FR", gstd_ci=Interval(0.25, 0.75)),
               "fid": MetricResult(12.0, None, False, "set", std_over_runs=2.0)}
    r = Result(method="m", dataset="d", runs=2, seed=3, crop_border=4, stochastic=True, num_images=2, metrics=metrics,
               lstd=0.03, content_hash="abc", protocol="p", extra={"future": 1})
    data = r.to_json()
    assert list(data) == ["schema", "method", "dataset", "runs", "seed", "crop_border", "stochastic", "num_images",
                          "metrics", "skipped", "lstd", "lstd_ci", "content_hash", "protocol", "future"]
    assert (data["schema"], data["seed"], data["lstd"], data["lstd_ci"], data["future"]) == (SCHEMA, 3, 0.03, None, 1)
    assert data["metrics"]["psnr"] == {"mean": 25.5, "mean_ci": None, "gstd": 0.5,
                                       "gstd_ci": {"low": 0.25, "high": 0.75}, "higher_is_better": True, "kind": "FR"}
    assert data["metrics"]["fid"] == {"mean": 12.0, "mean_ci": None, "gstd": None, "gstd_ci": None,
                                      "std_over_runs": 2.0, "higher_is_better": False, "kind": "set"}
    back = Result.from_json(json.loads(json.dumps(data)), "b.json")
    assert back == r
    # only the L-STD interval known: still every metric writes its (null) intervals
    only_lstd = Result(method="m", dataset="d", runs=2, seed=0, crop_border=4, stochastic=True, num_images=2,
                       metrics={"psnr": MetricResult(25.5, 0.5, True, "FR")}, lstd=0.03, lstd_ci=Interval(0.02, 0.04))
    assert only_lstd.has_intervals
    d2 = only_lstd.to_json()
    assert d2["lstd_ci"] == {"low": 0.02, "high": 0.04} and d2["metrics"]["psnr"]["mean_ci"] is None
    assert "gstd_ci" in d2["metrics"]["psnr"] and Result.from_json(d2) == only_lstd
    # stats recorded, no interval defined: the keys are written (null), then stats
    rec = {"level": 0.95, "resamples": 200}
    with_stats = Result(method="m", dataset="d", runs=1, seed=0, crop_border=4, stochastic=False, num_images=2,
                        metrics={"psnr": MetricResult(25.5, None, True, "FR")}, stats=rec, scoring_device="cpu")
    d3 = with_stats.to_json()
    assert list(d3)[-4:] == ["lstd", "lstd_ci", "stats", "scoring_device"]
    assert d3["stats"] == rec and d3["lstd_ci"] is None and d3["metrics"]["psnr"]["mean_ci"] is None
    assert Result.from_json(d3) == with_stats
    # nothing known: no interval keys at all
    plain = Result(method="m", dataset="d", runs=1, seed=0, crop_border=4, stochastic=False, num_images=2,
                   metrics={"psnr": MetricResult(25.5, None, True, "FR")})
    assert not plain.has_intervals and "lstd_ci" not in plain.to_json()
    assert "mean_ci" not in plain.to_json()["metrics"]["psnr"]


@pytest.mark.parametrize("change, stochastic", [
    ({"runs": 1}, False), ({"runs": 2}, True), ({"runs": None}, False),
    ({"runs": 3, "stochastic": False}, False), ({"runs": 1, "stochastic": True}, True),
])
def test_from_json_reads_stochastic_or_infers_it_from_the_runs(change, stochastic):
    """Files older than the ``stochastic`` key: a method run more than once was stochastic."""
    data = {"method": "m", "dataset": "d", "metrics": {}, **change}
    assert Result.from_json(data).stochastic is stochastic


def test_from_json_reads_every_field():
    from benchmark.stats import Interval

    data = _entry(timing={"seconds_per_image_run": 1.5}, config={"metrics": {"psnr": {}}}, versions={"torch": "2"},
                  content_hash="abc", protocol="p", stats={"level": 0.9}, scoring_device="cuda:0",
                  skipped={"lpips": "missing file", 3: 4}, lstd=float("nan"), future=[1])
    r = Result.from_json(data, "r.json")
    assert (r.method, r.dataset, r.runs, r.seed, r.crop_border, r.stochastic, r.num_images) == \
        ("m", "d", 2, 0, 4, True, 2)
    assert r.skipped == {"lpips": "missing file", "3": "4"} and r.lstd is None
    assert r.lstd_ci == Interval(0.02, 0.04) and r.stats == {"level": 0.9}
    assert (r.timing, r.config, r.versions) == ({"seconds_per_image_run": 1.5}, {"metrics": {"psnr": {}}},
                                               {"torch": "2"})
    assert (r.content_hash, r.protocol, r.scoring_device, r.extra, r.schema) == ("abc", "p", "cuda:0",
                                                                                 {"future": [1]}, SCHEMA)
    assert r.metric_options == {"psnr": {}} and r.timing_value("seconds_per_image_run") == 1.5
    assert r.timing_value("parameters") is None
    # a baseline entry carries a protocol and no config: no options to read
    assert dataclasses.replace(r, config=None).metric_options is None
    assert list(r.metrics) == ["psnr", "fid"] and r.metrics["psnr"].mean == 25.0
    assert r.metrics["psnr"].mean_ci == Interval(24.0, 26.5) and r.metrics["fid"].is_set
    assert Result.from_json(_entry(skipped=None)).skipped == {}
    assert Result.from_json(_entry(schema=SCHEMA)).schema == SCHEMA  # the newest schema is read
    with pytest.raises(ValueError, match=f"r.json has results schema {SCHEMA + 1}, this srbench reads up to {SCHEMA}"):
        Result.from_json(_entry(schema=SCHEMA + 1), "r.json")
    for key in ("method", "dataset", "metrics"):
        bad = _entry()
        del bad[key]
        with pytest.raises(ValueError, match=f"r.json has no '{key}' key"):
            Result.from_json(bad, "r.json")
    with pytest.raises(ValueError, match="^results does not hold a JSON object"):
        Result.from_json("x")


def test_excluded_round_trip():
    from benchmark.results import Excluded

    e = Excluded("niqe", "img_1", 2, "niqe: undefined below 96x96 px")
    assert e.to_json() == {"image": "img_1", "run": 2, "reason": "niqe: undefined below 96x96 px"}
    assert Excluded.from_json("niqe", {"image": 7, "run": "2", "reason": "r"}) == Excluded("niqe", "7", 2, "r")
    assert Excluded.from_json("niqe", e.to_json()) == e
