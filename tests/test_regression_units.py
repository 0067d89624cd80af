"""The regression gate's pieces in-process, on hand-made results: baseline files (every number,
interval, skip and run fact kept), verdicts read from such files, ``--tol`` parsing, ``--update-baseline``
keeping other entries, malformed baselines, the diff table and the key=value spelling of ``main``.

Each expected value is worked out by hand from the documented rule (benchmark/regression.py
docstring: allowed = max(abs, rel * |baseline|); a mean regresses in its metric's bad direction,
a spread upwards; with --ci only outside the baseline's interval). These tests are fast, so
benchmarks/mutation.py runs them for every mutant of regression.py (TEST_MAP).
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from report_fixtures import fixed_results, write_results

from benchmark import regression
from benchmark.regression import Comparison, Line, Tolerance, compare, load_baseline, main, write_baseline
from benchmark.report.collect import frame, rows_of
from benchmark.results import MetricResult, Result
from benchmark.stats import Interval

RULES = [("*.mean", Tolerance(abs=0.5, rel=0.0)), ("*.gstd", Tolerance(abs=0.25, rel=0.0)),
         ("*.std_over_runs", Tolerance(abs=0.5, rel=0.0)), ("lstd", Tolerance(abs=0.0, rel=0.5))]


def _result(dataset="Set5", method="ccsr", psnr=24.5, psnr_gstd=0.25, fid=100.0, lstd=0.25, num_values=6,
            **facts) -> Result:
    """One hand-made result with intervals on every number that has one, a skipped metric and a set metric."""
    run = dict(runs=3, seed=7, crop_border=4, stochastic=True, num_images=2, content_hash="abc123",
               protocol="psnr:{}")
    run.update(facts)
    metrics = {
        "psnr": MetricResult(psnr, psnr_gstd, True, "FR", num_images=2, mean_ci=Interval(23.0, 25.0),
                             gstd_ci=Interval(0.125, 1.0), num_values=num_values),
        "niqe": MetricResult(4.0, 0.5, False, "NR", num_images=2, num_values=num_values),
        "fid": MetricResult(fid, None, False, "set", std_over_runs=2.0, mean_ci=Interval(98.0, 102.0), num_values=3),
    }
    return Result(method=method, dataset=dataset, metrics=metrics, skipped={"lpips": "missing lpips weights"},
                  lstd=lstd, lstd_ci=Interval(0.125, 0.75), **run)


def _frame(*results: Result) -> pd.DataFrame:
    return frame(row for r in results for row in rows_of(r))


# ----------------------------------------------------------------------------- baseline files


def test_baseline_file_keeps_every_number_interval_skip_and_fact(tmp_path):
    """write_baseline -> JSON -> load_baseline: the entry holds exactly the result's numbers (typed here by
    hand), and the frame read back equals the frame written, column by column."""
    df = _frame(_result(), _result(dataset="Urban100", method="bsrgan", stochastic=False, runs=1, lstd=None))
    path = tmp_path / "baseline.json"
    write_baseline(df, path)
    data = json.loads(path.read_text())
    assert data["srbench_baseline"] == 1
    created = dt.datetime.fromisoformat(data["created"])  # ISO time in UTC, to the second
    assert created.utcoffset() == dt.timedelta(0) and created.microsecond == 0
    assert [(e["dataset"], e["method"]) for e in data["entries"]] == [("Set5", "ccsr"), ("Urban100", "bsrgan")]
    e = data["entries"][0]
    assert {k: e[k] for k in ("runs", "seed", "crop_border", "stochastic", "num_images", "content_hash",
                              "protocol", "lstd", "skipped")} == {
        "runs": 3, "seed": 7, "crop_border": 4, "stochastic": True, "num_images": 2, "content_hash": "abc123",
        "protocol": "psnr:{}", "lstd": 0.25, "skipped": {"lpips": "missing lpips weights"}}
    assert e["lstd_ci"] == {"low": 0.125, "high": 0.75}
    assert e["metrics"]["psnr"] == {"mean": 24.5, "mean_ci": {"low": 23.0, "high": 25.0}, "gstd": 0.25,
                                    "gstd_ci": {"low": 0.125, "high": 1.0}, "higher_is_better": True, "kind": "FR",
                                    "num_values": 6}
    assert e["metrics"]["niqe"] == {"mean": 4.0, "mean_ci": None, "gstd": 0.5, "gstd_ci": None,
                                    "higher_is_better": False, "kind": "NR", "num_values": 6}
    assert e["metrics"]["fid"] == {"mean": 100.0, "mean_ci": {"low": 98.0, "high": 102.0}, "gstd": None,
                                   "gstd_ci": None, "std_over_runs": 2.0, "higher_is_better": False, "kind": "set",
                                   "num_values": 3}
    u = data["entries"][1]
    assert (u["runs"], u["stochastic"], u["lstd"], u["lstd_ci"]) == (1, False, None, {"low": 0.125, "high": 0.75})

    back = load_baseline(path)
    cols = ["dataset", "method", "metric", "kind", "higher_is_better", "status", "mean", "gstd", "std_over_runs",
            "mean_low", "mean_high", "gstd_low", "gstd_high", "note", "runs", "seed", "crop_border", "stochastic",
            "num_images", "content_hash", "protocol", "num_values"]
    key = ["dataset", "method", "metric"]
    got = back[cols].sort_values(key).reset_index(drop=True)
    want = df[cols].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_a_result_with_a_single_row_becomes_an_entry():
    """A (data set, method) with no metric at all has one tidy row (its L-STD): its entry still carries its facts."""
    r = Result(method="m", dataset="d", runs=2, seed=0, crop_border=4, stochastic=True, num_images=1, metrics={},
               lstd=0.5)
    (e,) = regression.entries(_frame(r))
    assert (e["dataset"], e["method"], e["runs"], e["lstd"], e["metrics"]) == ("d", "m", 2, 0.5, {})
    assert [(x.quantity, x.status) for x in compare(_frame(r), _frame(r), RULES).lines] == [("lstd", "ok")]


def test_facts_unknown_on_both_sides_are_equal():
    """Precomputed outputs have no seed: a seed missing on both sides (NaN in a frame where another pair has
    one) is the same fact, not a difference."""
    both = _frame(_result(seed=None), _result(dataset="Urban100"))
    assert both["seed"].isna().any()
    comp = compare(both, both, RULES)
    assert comp.exit_code == 0 and {x.status for x in comp.lines} == {"ok"}


def test_ci_verdicts_read_the_intervals_stored_in_a_baseline_file(tmp_path):
    """With --ci, changes beyond the tolerance but inside the baseline file's intervals are not counted:
    PSNR 24.5 -> 23.75 (-0.75 > 0.5 allowed; inside [23, 25]); G-STD 0.25 -> 0.75 (+0.5 > 0.25; inside
    [0.125, 1]); L-STD 0.25 -> 0.5 (+0.25 > 0.125 = 50 %; inside [0.125, 0.75]); FID 100 -> 101 (+1 > 0.5;
    inside [98, 102]). Without --ci all four regress; NIQE has no interval: judged by the tolerance."""
    path = tmp_path / "baseline.json"
    write_baseline(_frame(_result()), path)
    base = load_baseline(path)
    cur = _frame(_result(psnr=23.75, psnr_gstd=0.75, lstd=0.5, fid=101.0))
    plain = {x.quantity: x.status for x in compare(cur, base, RULES).lines}
    assert plain == {"psnr.mean": "regressed", "psnr.gstd": "regressed", "niqe.mean": "ok", "niqe.gstd": "ok",
                     "fid.mean": "regressed", "fid.std_over_runs": "ok", "lstd": "regressed"}
    same = {x.quantity: (x.status, x.message) for x in compare(_frame(_result()), base, RULES, ci=True).lines}
    assert same == {"psnr.mean": ("ok", ""), "psnr.gstd": ("ok", ""), "fid.mean": ("ok", ""),
                    **{q: ("ok", "no baseline interval: tolerance only")
                       for q in ("niqe.mean", "niqe.gstd", "fid.std_over_runs")}, "lstd": ("ok", "")}
    ci = {x.quantity: (x.status, x.interval) for x in compare(cur, base, RULES, ci=True).lines}
    assert ci == {"psnr.mean": ("ok", (23.0, 25.0)), "psnr.gstd": ("ok", (0.125, 1.0)), "niqe.mean": ("ok", None),
                  "niqe.gstd": ("ok", None), "fid.mean": ("ok", (98.0, 102.0)), "fid.std_over_runs": ("ok", None),
                  "lstd": ("ok", (0.125, 0.75))}
    # beyond the high end of each interval: counted
    out = _frame(_result(psnr=22.75, psnr_gstd=1.25, lstd=1.0, fid=103.0))
    assert {x.quantity: x.status for x in compare(out, base, RULES, ci=True).lines if x.status != "ok"} == {
        "psnr.mean": "regressed", "psnr.gstd": "regressed", "fid.mean": "regressed", "lstd": "regressed"}


def test_run_facts_and_value_counts_of_a_baseline_file_decide_comparability(tmp_path):
    """The data set content hash and the number of values averaged are kept in the baseline file, so results of
    another data set content, or a mean over fewer values, are not comparable (exit 2)."""
    path = tmp_path / "baseline.json"
    write_baseline(_frame(_result()), path)
    base = load_baseline(path)
    assert compare(_frame(_result()), base, RULES).exit_code == 0
    other = compare(_frame(_result(content_hash="def456")), base, RULES)
    assert other.exit_code == 2
    assert [(x.quantity, x.message) for x in other.lines] == [("content_hash", "data set content: baseline abc123, now def456")]
    fewer = compare(_frame(_result(num_values=5)), base, RULES)
    assert fewer.exit_code == 2
    why = "averaged over 6 values in the baseline, 5 now (excluded values are listed in results.json)"
    assert [(x.dataset, x.method, x.quantity, x.status, x.kind, x.message) for x in fewer.lines
            if x.status == "not comparable"] == [("Set5", "ccsr", "psnr.mean", "not comparable", "protocol", why),
                                                 ("Set5", "ccsr", "niqe.mean", "not comparable", "protocol", why)]


def test_write_baseline_replaces_its_pairs_and_keeps_the_others_sorted(tmp_path):
    path = tmp_path / "b.json"
    old = [_result(dataset="Set5", method="ccsr", psnr=20.0), _result(dataset="BSD100", method="ccsr"),
           _result(dataset="Urban100", method="bsrgan")]
    keep = [regression.entries(_frame(r))[0] for r in old]
    write_baseline(_frame(_result(dataset="Set5", method="ccsr", psnr=30.0)), path, keep)
    got = json.loads(path.read_text())["entries"]
    assert [(e["dataset"], e["method"], e["metrics"]["psnr"]["mean"]) for e in got] == [
        ("BSD100", "ccsr", 24.5), ("Set5", "ccsr", 30.0), ("Urban100", "bsrgan", 24.5)]


def test_update_baseline_keeps_the_entries_the_results_do_not_cover(tmp_path, capsys):
    """--update-baseline with --methods ccsr on an existing baseline: ccsr's entries are replaced, every other
    entry is kept (and listed); --replace-baseline drops them."""
    write_results(tmp_path / "r")
    path = tmp_path / "baseline.json"
    assert main([str(tmp_path / "r"), "--baseline", str(path), "--update-baseline"]) == 0
    res = fixed_results()
    for r in res:
        if r["method"] == "ccsr":
            r["metrics"]["psnr"]["mean"] = 30.0
    write_results(tmp_path / "new", res)
    capsys.readouterr()
    assert main([str(tmp_path / "new"), "--baseline", str(path), "--update-baseline", "--methods", "ccsr"]) == 0
    assert ("kept 3 baseline entries these results do not cover: DRealSR/bsrgan, RealSR/bsrgan, RealSR/stable_sr "
            "(--replace-baseline drops them)") in capsys.readouterr().out
    got = {(e["dataset"], e["method"]): e["metrics"]["psnr"]["mean"] for e in json.loads(path.read_text())["entries"]}
    assert got == {("DRealSR", "bsrgan"): 26.7, ("DRealSR", "ccsr"): 30.0, ("RealSR", "bsrgan"): 24.5812,
                   ("RealSR", "ccsr"): 30.0, ("RealSR", "stable_sr"): 24.6549}
    assert main([str(tmp_path / "new"), "--baseline", str(path), "--update-baseline", "--methods", "ccsr",
                 "--replace-baseline"]) == 0
    got = {(e["dataset"], e["method"]) for e in json.loads(path.read_text())["entries"]}
    assert got == {("DRealSR", "ccsr"), ("RealSR", "ccsr")}


def test_update_baseline_refuses_to_overwrite_a_file_that_is_not_a_baseline(tmp_path, capsys):
    """A results.json given as --baseline with --update-baseline is not overwritten (exit 2, the error says
    --replace-baseline would, naming how many results); the file is unchanged."""
    write_results(tmp_path / "r")
    one = tmp_path / "r" / "RealSR" / "ccsr" / "results.json"
    target = tmp_path / "results_copy.json"
    target.write_text(one.read_text())
    assert main([str(tmp_path / "r"), "--baseline", str(target), "--update-baseline"]) == 2
    err = capsys.readouterr().err
    assert "is not an srbench baseline" in err and "pass --replace-baseline" in err and "these 5 result(s)" in err
    assert target.read_text() == one.read_text()


def test_a_malformed_entry_anywhere_in_a_baseline_is_refused(tmp_path):
    """Every entry is checked, not only the last one: a bad first entry and a good second one are refused."""
    good = regression.entries(_frame(_result()))[0]
    bad = {**good, "method": "bsrgan", "runs": "three"}
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"srbench_baseline": 1, "entries": [bad, good]}))
    with pytest.raises(ValueError, match=r"entry 0 \(Set5/bsrgan\): 'runs' is 'three', expected an integer"):
        load_baseline(path)
    path.write_text(json.dumps({"srbench_baseline": 1, "entries": [good, 5]}))
    with pytest.raises(ValueError, match=r"entry 1 \(#1\): is a JSON int"):
        load_baseline(path)


def test_a_json_that_is_neither_baseline_nor_results_is_refused(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"entries": []}))
    with pytest.raises(ValueError, match="is neither an srbench baseline nor a results.json"):
        load_baseline(path)


# ----------------------------------------------------------------------------- --tol


@pytest.mark.parametrize("text, message", [
    ("x=y=abs:1", "each part must be"),             # the pattern ends at the first '='
    ("psnr.mean=foo:1", "each part must be"),       # unknown kind
    ("psnr.mean=abs:", "each part must be"),        # no number
    ("psnr.mean=abs:1:2", "'1:2' is not a number"),  # the kind ends at the first ':'
])
def test_malformed_tolerances_are_refused(text, message):
    with pytest.raises(ValueError, match="--tol") as err:
        regression.parse_tolerance(text)
    assert message in str(err.value)


def test_tolerance_is_the_larger_of_abs_and_rel():
    assert Tolerance(abs=0.5, rel=0.1).allowed(-10.0) == 1.0  # rel * |baseline| of a negative baseline
    assert Tolerance(abs=0.5, rel=0.01).allowed(10.0) == 0.5
    assert Tolerance().allowed(3.0) == 0.0
    assert Tolerance(rel=0.25).allowed(2.0) == 0.5 and Tolerance(abs=0.25).allowed(100.0) == 0.25


def test_tolerance_for_takes_each_field_from_the_last_rule_that_sets_it():
    rules = [("*.mean", Tolerance(abs=1.0, rel=0.5)), ("psnr.*", Tolerance(rel=0.25)),
             ("psnr.mean", Tolerance(abs=2.0)), ("niqe.mean", Tolerance(abs=3.0, rel=0.0))]
    assert regression.tolerance_for("psnr.mean", rules) == Tolerance(abs=2.0, rel=0.25)
    assert regression.tolerance_for("psnr.gstd", rules) == Tolerance(abs=0.0, rel=0.25)
    assert regression.tolerance_for("niqe.mean", rules) == Tolerance(abs=3.0, rel=0.0)
    assert regression.tolerance_for("PSNR.mean", rules) == Tolerance(abs=1.0, rel=0.5)  # case-sensitive
    assert regression.tolerance_for("lstd", rules) == Tolerance(abs=0.0, rel=0.0)


# ----------------------------------------------------------------------------- main


def test_main_accepts_key_value_options(tmp_path, capsys):
    """``baseline=... tol=... datasets=... methods=... junit=...`` work like ``--baseline ...`` and say so.
    PSNR 24.6451 -> 24.56 (-0.085) regresses only under psnr.mean=abs:0.05,rel:0; stable_sr's PSNR drop is
    filtered out by methods=ccsr, DRealSR by datasets=RealSR."""
    write_results(tmp_path / "base")
    path = tmp_path / "baseline.json"
    assert main([str(tmp_path / "base"), "--baseline", str(path), "--update-baseline"]) == 0
    res = fixed_results()
    for r in res:
        if r["method"] in ("ccsr", "stable_sr"):
            r["metrics"]["psnr"]["mean"] -= 0.085
    write_results(tmp_path / "cur", res)
    capsys.readouterr()
    junit = tmp_path / "j.xml"
    argv = [str(tmp_path / "cur"), f"baseline={path}", "tol=psnr.mean=abs:0.05,rel:0", "datasets=RealSR",
            "methods=ccsr", f"junit={junit}"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "note: check options are written --baseline" in err
    psnr = [ln for ln in out.splitlines() if "psnr.mean" in ln]
    assert len(psnr) == 1 and psnr[0].startswith("RealSR") and " ccsr " in psnr[0] and "REGRESSED" in psnr[0]
    assert 'failures="1"' in junit.read_text()
    # one filter alone also restricts the baseline: DRealSR/ccsr (-0.085 dB) regresses, RealSR is not compared
    assert main([str(tmp_path / "cur"), "--baseline", str(path), "--tol", "psnr.mean=abs:0.05,rel:0",
                 "--datasets", "DRealSR"]) == 1
    assert main([str(tmp_path / "cur"), "--baseline", str(path), "--methods", "bsrgan"]) == 0
    capsys.readouterr()
    # --ci reaches the comparison: these results store no intervals, so the table says tolerance only
    assert main([str(tmp_path / "cur"), "--baseline", str(path), "--methods", "bsrgan", "--ci"]) == 0
    out = capsys.readouterr().out
    assert "baseline CI" in out.splitlines()[0] and "ok (no baseline interval: tolerance only)" in out


# ----------------------------------------------------------------------------- the diff table


def test_diff_table_by_hand():
    """Every cell of the table: direction arrows, change with percent (none for a zero baseline), the allowed
    change, the interval column of --ci, statuses with their messages, and the summary counts."""
    comp = Comparison(ci=True, unused_rules=["psnr.std"], lines=[
        Line("Set5", "ccsr", "results", "not comparable", "protocol",
             message="in the baseline but not in the results (did the run fail?)"),
        Line("Set5", "ccsr", "psnr.mean", "regressed", "quality", True, 24.5, 23.75, 0.5, "", (23.0, 25.0)),
        Line("Set5", "ccsr", "niqe.mean", "improved", "quality", False, 4.0, 3.0, 0.02,
             "no baseline interval: tolerance only"),
        Line("Set5", "ccsr", "lstd", "ok", "stability", False, 0.0, 0.0001, 0.0001),
        Line("Set5", "ccsr", "psnr.gstd", "not comparable", "protocol", False, 0.25, None,
             message="defined on one side only"),
    ])
    # change -0.75 = -3.06 % of 24.5; -1 = -25 % of 4; a zero baseline has no percentage
    expected = """\
dataset  method  quantity   dir  baseline  baseline CI  current  change         allowed  status
-------  ------  ---------  ---  --------  -----------  -------  -------------  -------  --------------------------------------------------------------------------
Set5     ccsr    results                                                                 NOT COMPARABLE: in the baseline but not in the results (did the run fail?)
Set5     ccsr    psnr.mean  ↑    24.5      [23, 25]     23.75    -0.75 (-3.1%)  ±0.5     REGRESSED (quality)
Set5     ccsr    niqe.mean  ↓    4         -            3        -1 (-25.0%)    ±0.02    improved (no baseline interval: tolerance only)
Set5     ccsr    lstd       ↓    0         -            0.0001   +0.0001        ±0.0001  ok
Set5     ccsr    psnr.gstd  ↓    0.25      -            -                                NOT COMPARABLE: defined on one side only

NOT COMPARABLE (exit 2): 1 within tolerance or the baseline's interval, 1 improved, 1 regressed, 2 not comparable
warning: --tol pattern 'psnr.std' matched no quantity (quantities look like psnr.mean, psnr.gstd, fid.std_over_runs, lstd)"""
    assert regression.format_comparison(comp) == expected

    ok = Comparison(lines=[Line("Set5", "ccsr", "fid.mean", "improved", "quality", False, 120.0, 100.0, 2.4),
                           Line("Set5", "ccsr", "fid.std_over_runs", "ok", "stability", False, 1.5, 1.5, 0.15)])
    assert regression.format_comparison(ok) == """\
dataset  method  quantity           dir  baseline  current  change        allowed  status
-------  ------  -----------------  ---  --------  -------  ------------  -------  --------
Set5     ccsr    fid.mean           ↓    120       100      -20 (-16.7%)  ±2.4     improved
Set5     ccsr    fid.std_over_runs  ↓    1.5       1.5      +0 (+0.0%)    ±0.15    ok

PASS (exit 0): 1 within tolerance, 1 improved, 0 regressed, 0 not comparable
improvements: once intended, record them with --update-baseline"""
    bad = Comparison(lines=[Line("Set5", "ccsr", "lstd", "regressed", "stability", False, 0.5, 1.0, 0.25)])
    assert regression.format_comparison(bad).splitlines()[-1] == \
        "FAIL: regressed (exit 1): 0 within tolerance, 0 improved, 1 regressed, 0 not comparable"


def test_junit_message_carries_the_baseline_interval(tmp_path):
    import xml.etree.ElementTree as ET

    comp = Comparison(ci=True, lines=[
        Line("Set5", "ccsr", "psnr.mean", "regressed", "quality", True, 24.5, 22.75, 0.5, "", (23.0, 25.5)),
        Line("Set5", "ccsr", "results", "not comparable", "protocol", message="not in the baseline")])
    path = tmp_path / "j.xml"
    regression.write_junit(comp, path)
    text = path.read_bytes()
    assert text.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<testsuites>")
    suite = ET.parse(path).getroot().find("testsuite")
    fail = suite.find("testcase[@name='psnr.mean']/failure")
    assert fail.get("message") == ("quality regression: baseline 24.5, current 22.75, allowed change 0.5, "
                                   "baseline interval [23, 25.5]")
    err = suite.find("testcase[@name='results']/error")
    assert (err.get("message"), err.get("type")) == ("not in the baseline", "not-comparable")


# ----------------------------------------------------------------------------- compare: which lines


def _lines(comp: Comparison) -> list[tuple]:
    return [(x.dataset, x.method, x.quantity, x.status, x.kind, x.message) for x in comp.lines]


def test_compare_names_each_missing_pair_and_changed_fact_and_compares_the_rest():
    """Pairs on one side only, a changed run fact and a changed metric set each give one 'not comparable'
    line naming the pair, the quantity and the reason, and nothing else for that pair; every other pair is
    still compared (here BSD100/ccsr regresses: PSNR 24.5 -> 23.75 > 0.5 allowed)."""
    long_hash = "0123456789abcdef" * 4
    base = _frame(_result("BSD100", "ccsr"), _result("Set14", "ccsr", content_hash=long_hash),
                  _result("Set5", "ccsr"), _result("Urban100", "ccsr"), _result("Manga109", "ccsr"))
    set14 = _result("Set14", "ccsr", content_hash="f" * 64)
    urban = _result("Urban100", "ccsr", seed=8)
    del urban.metrics["niqe"]  # a fact and the metric set both changed: both named
    cur = _frame(_result("BSD100", "ccsr", psnr=23.75), set14, _result("Set5", "bsrgan"), urban,
                 _result("Manga109", "ccsr", runs=5))
    comp = compare(cur, base, RULES)
    assert comp.exit_code == 2
    proto = [x for x in _lines(comp) if x[3] == "not comparable"]
    assert proto == [
        ("Set5", "ccsr", "results", "not comparable", "protocol", "in the baseline but not in the results (did the run fail?)"),
        ("Set5", "bsrgan", "results", "not comparable", "protocol", "not in the baseline (add it with --update-baseline)"),
        ("Manga109", "ccsr", "runs", "not comparable", "protocol", "runs: baseline 3, now 5"),
        ("Set14", "ccsr", "content_hash", "not comparable", "protocol",
         "data set content: baseline 0123456789ab, now ffffffffffff"),
        ("Urban100", "ccsr", "seed", "not comparable", "protocol", "first seed: baseline 7, now 8"),
        ("Urban100", "ccsr", "metrics", "not comparable", "protocol",
         "metric set: baseline ['fid', 'niqe', 'psnr'], now ['fid', 'psnr']"),
    ]
    compared = {(x[0], x[1]) for x in _lines(comp) if x[3] != "not comparable"}
    assert compared == {("BSD100", "ccsr")}  # only the comparable pair has quantity lines
    assert ("BSD100", "ccsr", "psnr.mean", "regressed", "quality", "") in _lines(comp)


def test_unknown_content_hash_or_protocol_does_not_block_but_a_known_difference_does():
    """A results.json without manifest has no content hash: unknown on one side is not a difference; the
    facts after it (the metric options) are still checked."""
    base = _frame(_result())
    assert compare(_frame(_result(content_hash=None)), base, RULES).exit_code == 0
    assert compare(_frame(_result(protocol=None)), base, RULES).exit_code == 0
    assert compare(base, _frame(_result(content_hash=None, protocol=None)), RULES).exit_code == 0
    comp = compare(_frame(_result(content_hash=None, protocol="psnr:{color_space: yiq}")), base, RULES)
    assert _lines(comp) == [("Set5", "ccsr", "protocol", "not comparable", "protocol",
                             "metric options: baseline psnr:{}, now psnr:{color_space: yiq}")]
    # a fact other than these two is compared even when missing on one side
    assert compare(_frame(_result(seed=None)), base, RULES).exit_code == 2


def test_a_skipped_metric_is_passed_over_and_the_quantities_after_it_are_compared():
    """lpips is skipped in the baseline (rows: metrics, then skipped ones, then L-STD) and absent from the
    results; the L-STD after it still regresses: 0.25 -> 0.5 is +0.25 > 0.125 (50 %) allowed."""
    base = _frame(_result())
    cur_result = _result(lstd=0.5)
    cur_result.skipped = {}
    comp = compare(_frame(cur_result), base, RULES)
    assert {x.quantity: x.status for x in comp.lines} == {
        "psnr.mean": "ok", "psnr.gstd": "ok", "niqe.mean": "ok", "niqe.gstd": "ok", "fid.mean": "ok",
        "fid.std_over_runs": "ok", "lstd": "regressed"}
    assert comp.exit_code == 1


def test_ci_interval_ends_count_as_inside_and_lines_carry_direction_and_values():
    """--ci: a value exactly at an end of the baseline's interval is inside it (not counted); without --ci no
    line carries the interval message; each line carries its direction, baseline, current and allowed change."""
    base = _frame(_result())
    rules = [("*.mean", Tolerance(abs=0.5, rel=0.0))]
    at_low = {x.quantity: x for x in compare(_frame(_result(psnr=23.0)), base, rules, ci=True).lines}["psnr.mean"]
    assert (at_low.status, at_low.message) == ("ok", "inside the baseline's interval")  # 23 - 24.5 = -1.5 > 0.5
    at_high = {x.quantity: x for x in compare(_frame(_result(psnr=25.0, fid=102.0)), base, rules, ci=True).lines}
    assert (at_high["psnr.mean"].status, at_high["fid.mean"].status) == ("ok", "ok")  # 102 is FID's high end
    plain = compare(_frame(_result(psnr=23.75)), base, RULES)
    assert {x.message for x in plain.lines} == {""}
    psnr = {x.quantity: x for x in plain.lines}["psnr.mean"]
    assert (psnr.higher_is_better, psnr.baseline, psnr.current, psnr.allowed, psnr.kind) == (True, 24.5, 23.75, 0.5,
                                                                                            "quality")
    niqe = {x.quantity: x for x in plain.lines}["niqe.gstd"]
    assert (niqe.higher_is_better, niqe.baseline, niqe.current, niqe.allowed, niqe.kind) == (False, 0.5, 0.5, 0.25,
                                                                                            "stability")


def test_a_quantity_defined_on_one_side_only_is_not_comparable_with_its_value():
    base = _frame(_result())
    cur = _result()
    cur.metrics["psnr"].gstd = None
    comp = compare(_frame(cur), base, RULES)
    (line,) = [x for x in comp.lines if x.status == "not comparable"]
    assert (line.quantity, line.baseline, line.current, line.higher_is_better, line.message) == (
        "psnr.gstd", 0.25, None, False, "defined on one side only")
    back = compare(base, _frame(cur), RULES)
    (line,) = [x for x in back.lines if x.status == "not comparable"]
    assert (line.quantity, line.baseline, line.current) == ("psnr.gstd", None, 0.25)
    assert (line.dataset, line.method, line.kind) == ("Set5", "ccsr", "protocol")
    # a mean defined on one side only does not stop the metric's other quantities: its G-STD still regresses
    no_mean = _result(psnr_gstd=0.75)
    no_mean.metrics["psnr"].mean = None
    got = {x.quantity: x.status for x in compare(_frame(no_mean), base, RULES).lines}
    assert (got["psnr.mean"], got["psnr.gstd"]) == ("not comparable", "regressed")


def test_only_user_rules_that_match_nothing_are_reported():
    rules = regression.DEFAULT_TOLERANCES + [("psnr.std", Tolerance(abs=1.0)), ("psnr.mean", Tolerance(abs=0.1)),
                                             ("*.gstd", Tolerance(rel=0.2))]
    comp = compare(_frame(_result()), _frame(_result()), rules)
    assert comp.unused_rules == ["psnr.std"]  # kid.mean (a default rule) matches nothing here either: not reported


def test_main_without_baseline_is_a_usage_error(tmp_path, capsys):
    write_results(tmp_path / "r")
    with pytest.raises(SystemExit) as err:
        main([str(tmp_path / "r")])
    assert err.value.code == 2 and "--baseline" in capsys.readouterr().err
