"""The regression gate: each exit code, direction awareness, tolerances, baselines, JUnit XML."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from report_fixtures import fixed_results, write_results

from benchmark import regression
from benchmark.regression import Tolerance, main, parse_tolerance, tolerance_for

ROOT = Path(__file__).resolve().parents[1]


def _edit(dataset: str, method: str, fn) -> list[dict]:
    res = fixed_results()
    for r in res:
        if r["dataset"] == dataset and r["method"] == method:
            fn(r)
    return res


@pytest.fixture
def base(tmp_path):
    """Baseline written from the fixed results with --update-baseline."""
    write_results(tmp_path / "base_results")
    path = tmp_path / "baseline.json"
    assert main([str(tmp_path / "base_results"), "--baseline", str(path), "--update-baseline"]) == 0
    return path


def _check(tmp_path, results, base, *extra, content_hash="abc123", capsys=None) -> int:
    cur = tmp_path / "cur"
    write_results(cur, results, content_hash=content_hash)
    return main([str(cur), "--baseline", str(base), *extra])


def test_same_results_pass(tmp_path, base, capsys):
    assert _check(tmp_path, fixed_results(), base) == 0
    out = capsys.readouterr().out
    assert "PASS (exit 0)" in out and "0 regressed" in out
    # 5 results: every metric mean, every defined G-STD / std over runs, every defined L-STD.
    assert "RealSR   ccsr       fid.std_over_runs" in out


@pytest.mark.parametrize("metric, field, value, kind", [
    ("psnr", "mean", 24.0, "quality"),    # higher is better: a drop regresses
    ("lpips", "mean", 0.33, "quality"),   # lower is better: a rise regresses
    ("fid", "mean", 125.0, "quality"),    # FID is lower-is-better: 118.0 -> 125.0 regresses
    ("niqe", "mean", 5.60, "quality"),    # NIQE is lower-is-better: 5.2411 -> 5.60 regresses
    ("psnr", "gstd", 0.40, "stability"),  # G-STD up
    ("fid", "std_over_runs", 2.0, "stability"),
])
def test_regressions_exit_1(tmp_path, base, capsys, metric, field, value, kind):
    res = _edit("RealSR", "ccsr", lambda r: r["metrics"][metric].__setitem__(field, value))
    assert _check(tmp_path, res, base) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("RealSR") and f"{metric}.{field}" in x and " ccsr " in x)
    assert f"REGRESSED ({kind})" in line


@pytest.mark.parametrize("metric, value", [("fid", 100.0), ("niqe", 4.9), ("lpips", 0.20), ("psnr", 25.5)])
def test_improvements_in_either_direction_pass(tmp_path, base, capsys, metric, value):
    """A lower FID/NIQE/LPIPS or a higher PSNR is better: the gate passes it (directions as pyiqa's lower_better)."""
    res = _edit("RealSR", "ccsr", lambda r: r["metrics"][metric].__setitem__("mean", value))
    assert _check(tmp_path, res, base) == 0
    assert "REGRESSED" not in capsys.readouterr().out


def test_lstd_increase_is_a_stability_regression(tmp_path, base, capsys):
    res = _edit("DRealSR", "ccsr", lambda r: r.__setitem__("lstd", 0.0123 * 1.06))  # +6 % > 5 % default
    assert _check(tmp_path, res, base) == 1
    assert "REGRESSED (stability)" in next(x for x in capsys.readouterr().out.splitlines() if " lstd " in x)


@pytest.mark.parametrize("metric, field, value", [
    ("psnr", "mean", 25.5),    # higher is better: a rise is an improvement
    ("lpips", "mean", 0.20),   # lower is better: a drop is an improvement
    ("ssim", "gstd", 0.001),   # more stable
])
def test_improvements_pass_and_are_reported(tmp_path, base, capsys, metric, field, value):
    res = _edit("RealSR", "ccsr", lambda r: r["metrics"][metric].__setitem__(field, value))
    assert _check(tmp_path, res, base) == 0
    out = capsys.readouterr().out
    assert "1 improved" in out and "--update-baseline" in out


def test_tolerances_decide(tmp_path, base):
    # psnr 24.6451 -> 24.56: -0.085 dB is inside the default 0.5 % (0.123 dB) ...
    res = _edit("RealSR", "ccsr", lambda r: r["metrics"]["psnr"].__setitem__("mean", 24.56))
    assert _check(tmp_path, res, base) == 0
    # ... and outside an absolute 0.05 dB once the relative part is switched off.
    assert _check(tmp_path, res, base, "--tol", "psnr.mean=abs:0.05,rel:0") == 1
    # G-STD 0.2853 -> 0.30 (+5 %) passes the default 10 %, fails a 1 % rule given with a wildcard.
    res = _edit("RealSR", "ccsr", lambda r: r["metrics"]["psnr"].__setitem__("gstd", 0.30))
    assert _check(tmp_path, res, base) == 0
    assert _check(tmp_path, res, base, "--tol", "*.gstd=rel:0.01") == 1


def test_tolerance_rules():
    assert parse_tolerance("psnr.mean=abs:0.05") == ("psnr.mean", Tolerance(abs=0.05))
    assert parse_tolerance("*.gstd=rel:0.2,abs:0") == ("*.gstd", Tolerance(abs=0.0, rel=0.2))
    rules = regression.DEFAULT_TOLERANCES + [parse_tolerance("psnr.gstd=rel:0.5")]
    assert tolerance_for("psnr.gstd", rules) == Tolerance(abs=1e-4, rel=0.5)  # abs kept from the default
    assert tolerance_for("fid.mean", rules) == Tolerance(abs=0.0, rel=0.02)
    assert tolerance_for("lstd", rules).allowed(0.04) == pytest.approx(0.002)
    assert Tolerance(abs=0.01, rel=0.001).allowed(5.0) == 0.01
    for bad in ("psnr.mean", "psnr.mean=0.1", "psnr.mean=abs:-1", "psnr.mean=abs:x", "x=rel:inf"):
        with pytest.raises(ValueError, match="--tol"):
            parse_tolerance(bad)


def test_default_tolerances_are_the_documented_rules_and_the_specs():
    """``_default_tolerances()`` called afresh (DEFAULT_TOLERANCES is built once at import): the general
    rules the gate documents (benchmark/regression.py docstring, README), then each metric spec's own
    tolerances, which must reach the gate unchanged."""
    from benchmark.metrics import METRICS

    rules = regression._default_tolerances()
    documented = {"psnr.mean": (1e-6, 0.005), "niqe.mean": (1e-6, 0.005), "psnr.gstd": (1e-4, 0.10),
                  "niqe.gstd": (1e-4, 0.10), "fid.std_over_runs": (1e-4, 0.10), "lstd": (1e-4, 0.05),
                  "fid.mean": (0.0, 0.02), "kid.mean": (1e-4, 0.05), "unknown_metric.mean": (1e-6, 0.005),
                  "unknown_metric.gstd": (1e-4, 0.10), "unknown_metric.std_over_runs": (1e-4, 0.10)}
    for quantity, (abs_, rel) in documented.items():
        assert tolerance_for(quantity, rules) == Tolerance(abs=abs_, rel=rel), quantity
    for name in METRICS.names():
        spec = METRICS.get(name)
        assert tolerance_for(f"{name}.mean", rules) == Tolerance(spec.tolerance_mean.abs, spec.tolerance_mean.rel)
        for q in ("gstd", "std_over_runs"):
            assert tolerance_for(f"{name}.{q}", rules) == Tolerance(spec.tolerance_spread.abs,
                                                                    spec.tolerance_spread.rel), (name, q)


@pytest.mark.parametrize("change, reason", [
    (lambda r: r.__setitem__("seed", 100), "first seed: baseline 0, now 100"),
    (lambda r: r.__setitem__("runs", 5), "runs: baseline 10, now 5"),
    (lambda r: r.__setitem__("crop_border", 0), "crop_border: baseline 4, now 0"),
    (lambda r: r.__setitem__("num_images", 19), "number of images: baseline 20, now 19"),
    (lambda r: r["metrics"].pop("niqe"), "metric set"),
    (lambda r: r["config"].__setitem__("metrics", {**r["config"]["metrics"], "psnr": {"color_space": "yiq"}}),
     "metric options"),
])
def test_protocol_changes_exit_2(tmp_path, base, capsys, change, reason):
    assert _check(tmp_path, _edit("RealSR", "ccsr", change), base) == 2
    out = capsys.readouterr().out
    assert "NOT COMPARABLE" in out and reason in out


def test_metric_file_locations_are_not_protocol(tmp_path, base):
    res = _edit("RealSR", "ccsr", lambda r: r["config"]["metrics"]["niqe"].__setitem__("params_path", "/else/n.mat"))
    assert _check(tmp_path, res, base) == 0


def test_other_data_set_content_exit_2(tmp_path, base, capsys):
    assert _check(tmp_path, fixed_results(), base, content_hash="def456") == 2
    assert "data set content: baseline abc123, now def456" in capsys.readouterr().out


def test_missing_and_new_results_exit_2(tmp_path, base, capsys):
    res = [r for r in fixed_results() if r["method"] != "stable_sr"]
    assert _check(tmp_path, res, base) == 2
    assert "in the baseline but not in the results" in capsys.readouterr().out
    extra = fixed_results() + [{**copy.deepcopy(fixed_results()[2]), "method": "ccsr_v2"}]
    assert _check(tmp_path / "b", extra, base) == 2
    assert "not in the baseline" in capsys.readouterr().out


def test_missing_baseline_exit_2(tmp_path, capsys):
    write_results(tmp_path / "cur")
    assert main([str(tmp_path / "cur"), "--baseline", str(tmp_path / "none.json")]) == 2
    assert "--update-baseline" in capsys.readouterr().err


def test_filter_compares_a_subset(tmp_path, base):
    res = _edit("RealSR", "stable_sr", lambda r: r["metrics"]["psnr"].__setitem__("mean", 20.0))
    write_results(tmp_path / "cur", res)
    assert main([str(tmp_path / "cur"), "--baseline", str(base), "--methods", "ccsr,bsrgan"]) == 0
    assert main([str(tmp_path / "cur"), "--baseline", str(base)]) == 1


def test_results_json_and_folder_work_as_baselines(tmp_path):
    write_results(tmp_path / "a")
    one = tmp_path / "a" / "RealSR" / "ccsr" / "results.json"
    assert main([str(one), "--baseline", str(one)]) == 0
    assert main([str(tmp_path / "a"), "--baseline", str(tmp_path / "a")]) == 0
    # ... and such baselines really gate: a worse PSNR mean (24.6451 -> 24.0) regresses against both
    write_results(tmp_path / "b", _edit("RealSR", "ccsr", lambda r: r["metrics"]["psnr"].__setitem__("mean", 24.0)))
    worse = tmp_path / "b" / "RealSR" / "ccsr" / "results.json"
    assert main([str(worse), "--baseline", str(one)]) == 1
    assert main([str(tmp_path / "b"), "--baseline", str(tmp_path / "a")]) == 1


def test_update_baseline_then_pass(tmp_path, base):
    res = _edit("RealSR", "ccsr", lambda r: r.__setitem__("lstd", 0.05))
    assert _check(tmp_path, res, base) == 1
    assert main([str(tmp_path / "cur"), "--baseline", str(base), "--update-baseline"]) == 0
    entry = next(e for e in json.loads(base.read_text())["entries"] if (e["dataset"], e["method"]) == ("RealSR", "ccsr"))
    assert entry["lstd"] == 0.05
    assert main([str(tmp_path / "cur"), "--baseline", str(base)]) == 0


def test_junit_xml(tmp_path, base):
    def change(r):
        r["metrics"]["psnr"]["mean"] = 24.0  # 24.6451 -> 24.0: beyond 0.5 % (0.123 dB), a quality regression
        r["metrics"]["lpips"]["mean"] = 0.25  # 0.2870 -> 0.25, lower is better: an improvement

    res = _edit("RealSR", "ccsr", change)
    res = [r for r in res if r["method"] != "stable_sr"] + [
        {**copy.deepcopy(fixed_results()[1]), "seed": 3}]  # stable_sr with another seed: not comparable
    junit = tmp_path / "check.xml"
    assert _check(tmp_path, res, base, "--junit", str(junit)) == 2
    suite = ET.parse(junit).getroot().find("testsuite")
    failures = suite.findall("testcase/failure")
    errors = suite.findall("testcase/error")
    assert suite.get("failures") == "1" and len(failures) == 1 and failures[0].get("type") == "quality-regression"
    assert suite.get("errors") == str(len(errors)) and len(errors) == 1
    assert "first seed" in errors[0].get("message")
    case = suite.find("testcase[@name='psnr.mean'][@classname='srbench.RealSR.ccsr']")
    assert case is not None and case.find("failure") is not None
    # the JUnit counts are those of the test cases written; the message carries the numbers
    # (0.005 * 24.6451 = 0.1232 and 0.005 * 0.2870 = 0.001435 allowed) and the interval-free detail
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and suite.get("name") == "srbench.check"
    assert suite.get("tests") == str(len(suite.findall("testcase"))) and int(suite.get("tests")) > 10
    assert failures[0].get("message") == "quality regression: baseline 24.6451, current 24, allowed change 0.123"
    improved = suite.find("testcase[@name='lpips.mean'][@classname='srbench.RealSR.ccsr']/system-out")
    assert improved is not None
    assert improved.text == "improved: baseline 0.287, current 0.25, allowed change 0.00143"
    ok = suite.find("testcase[@name='ssim.mean'][@classname='srbench.RealSR.ccsr']")
    assert ok is not None and len(ok) == 0  # within tolerance: a bare passing case


def test_cli_wiring(tmp_path, base):
    write_results(tmp_path / "cur", _edit("RealSR", "ccsr", lambda r: r.__setitem__("lstd", 0.5)))
    proc = subprocess.run([sys.executable, "-m", "benchmark", "check", str(tmp_path / "cur"), "--baseline", str(base)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL: regressed (exit 1)" in proc.stdout


def test_ci_example_workflow_uses_valid_commands():
    """docs/ci-example.yml is valid YAML and its srbench commands parse with the real command lines."""
    import shlex

    import yaml

    from benchmark.config import check_group_choices
    from benchmark.report.cli import parse as parse_report

    wf = yaml.safe_load((ROOT / "docs" / "ci-example.yml").read_text())
    steps = wf["jobs"]["stability"]["steps"]
    runs = [" ".join(s["run"].split()) for s in steps if "run" in s]
    bench = next(r for r in runs if r.startswith("python run_bench.py"))
    check_group_choices(shlex.split(bench)[2:], ROOT / "conf")  # method names exist
    gate = shlex.split(next(r for r in runs if r.startswith("python -m benchmark check")))
    args = regression.parser().parse_args(gate[4:])
    assert args.junit and args.baseline and [parse_tolerance(t) for t in args.tol]
    report = shlex.split(next(r for r in runs if r.startswith("python -m benchmark report")))
    assert parse_report(report[4:])["out"] == "ci-results/report"
    # the calibration job fetches the weights first and makes missing weights fail, not skip
    cal = [" ".join(s["run"].split()) for s in wf["jobs"]["calibration"]["steps"] if "run" in s]
    fetch = next(i for i, r in enumerate(cal) if r.startswith("python -m benchmark weights metrics=paper --download"))
    tests = next(i for i, r in enumerate(cal) if r.startswith("SRBENCH_REQUIRE_WEIGHTS=1 python -m pytest"))
    assert fetch < tests


def test_a_tolerance_that_matches_nothing_is_reported(tmp_path, base, capsys):
    assert _check(tmp_path, fixed_results(), base, "--tol", "psnr.std=abs:1") == 0
    assert "--tol pattern 'psnr.std' matched no quantity" in capsys.readouterr().out


def _frame_of(metrics: dict, lstd: float | None, **facts):
    """The tidy frame of one hand-made result (dataset d, method m); ``metrics``: name -> MetricResult."""
    from benchmark.report.collect import frame, rows_of
    from benchmark.results import Result

    run = dict(method="m", dataset="d", runs=3, seed=0, crop_border=4, stochastic=True, num_images=2)
    run.update(facts)
    return frame(rows_of(Result(metrics=metrics, lstd=lstd, **run)))


def test_compare_by_hand_direction_boundary_and_intervals():
    """A change equal to the allowed one is within tolerance (|current - baseline| <= max(abs, rel*|b|)); a
    higher-is-better mean regresses downwards, a lower-is-better one upwards, a G-STD and L-STD upwards;
    with --ci a change regresses only outside the baseline's interval on the side it went."""
    from benchmark.results import MetricResult
    from benchmark.stats import Interval

    def metrics(psnr, niqe, gstd=0.25):
        return {"psnr": MetricResult(psnr, gstd, True, "FR", mean_ci=Interval(23.0, 25.0)),
                "niqe": MetricResult(niqe, 0.5, False, "NR")}

    base = _frame_of(metrics(24.5, 4.0), lstd=0.25)
    rules = [("*.mean", Tolerance(abs=0.5, rel=0.0)), ("*.gstd", Tolerance(abs=0.25, rel=0.0)),
             ("lstd", Tolerance(abs=0.0, rel=0.5))]
    status = lambda comp: {x.quantity: x.status for x in comp.lines}
    # exactly the allowed change in the bad direction (0.5 in binary, exact): within tolerance
    same = status(regression.compare(_frame_of(metrics(24.0, 4.5, gstd=0.5), lstd=0.375), base, rules))
    assert same == {"psnr.mean": "ok", "psnr.gstd": "ok", "niqe.mean": "ok", "niqe.gstd": "ok", "lstd": "ok"}
    worse = status(regression.compare(_frame_of(metrics(23.75, 4.75, gstd=0.75), lstd=0.5), base, rules))
    assert worse == {"psnr.mean": "regressed", "psnr.gstd": "regressed", "niqe.mean": "regressed",
                     "niqe.gstd": "ok", "lstd": "regressed"}
    better = status(regression.compare(_frame_of(metrics(25.25, 3.25, gstd=0.0), lstd=0.0), base, rules))
    assert better == {"psnr.mean": "improved", "psnr.gstd": "ok", "niqe.mean": "improved", "niqe.gstd": "ok",
                      "lstd": "improved"}
    assert regression.compare(_frame_of(metrics(23.75, 4.0), lstd=0.25), base, rules).exit_code == regression.EXIT_REGRESSED
    # --ci: 23.75 is inside psnr's interval [23, 25] (not counted), 22.75 below it (counted); NIQE has none
    ci = regression.compare(_frame_of(metrics(23.75, 4.0), lstd=0.25), base, rules, ci=True)
    line = {x.quantity: x for x in ci.lines}["psnr.mean"]
    assert (line.status, line.message, line.interval) == ("ok", "inside the baseline's interval", (23.0, 25.0))
    assert {x.quantity: x.message for x in ci.lines}["niqe.mean"] == "no baseline interval: tolerance only"
    assert status(regression.compare(_frame_of(metrics(22.75, 4.0), lstd=0.25), base, rules, ci=True))["psnr.mean"] == "regressed"
    up = status(regression.compare(_frame_of(metrics(26.0, 4.0), lstd=0.25), base, rules, ci=True))
    assert up["psnr.mean"] == "improved"  # above the high end 25: outside, on the side it went
    assert status(regression.compare(_frame_of(metrics(24.75 + 0.125, 4.0), lstd=0.25), base,
                                     [("*.mean", Tolerance(abs=0.25, rel=0.0))], ci=True))["psnr.mean"] == "ok"
