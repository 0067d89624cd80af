"""Intervals end to end: results.json, merge-free round trip, report marking, runs plot, check --ci."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from types import SimpleNamespace

from benchmark import regression, stats
from benchmark.report import build_report
from benchmark.report.collect import collect
from benchmark.results import Result
from benchmark.stats import StatsConfig
from benchmark.report.plots import slug
from conftest import folder_dir, make_pairs, run_bench

FAST = StatsConfig(resamples=300, seed=0)
IDS = [f"im{i:02d}" for i in range(12)]


def write_synthetic(root: Path, method: str, values: dict[str, np.ndarray], lstd: np.ndarray | None,
                    dataset: str = "syn", cfg: StatsConfig = FAST) -> Path:
    """A result folder (scores.csv, lstd.csv, results.json with intervals) from M x N values per metric."""
    folder = root / dataset / method
    folder.mkdir(parents=True, exist_ok=True)
    m, n = next(iter(values.values())).shape
    rows = [(IDS[i], r, r, name, float(v[i, r])) for name, v in values.items() for i in range(m) for r in range(n)]
    scores = pd.DataFrame(rows, columns=["image", "run", "seed", "metric", "value"])
    lstd_df = pd.DataFrame({"image": IDS[:m], "lstd": lstd if lstd is not None else [None] * m})
    facts = {name: SimpleNamespace(kind="FR", higher_is_better=name != "lpips") for name in values}
    res = Result.from_scores(scores, lstd_df, facts, method=method, dataset=dataset, runs=n, seed=0, crop_border=4,
                             stochastic=n > 1, num_images=m, stats=cfg,
                             config={"runs": n, "seed": 0, "crop_border": 4, "metrics": {k: {} for k in values}})
    res = res.to_json()
    scores.to_csv(folder / "scores.csv", index=False)
    lstd_df.to_csv(folder / "lstd.csv", index=False)
    (folder / "results.json").write_text(json.dumps(res, indent=2))
    return folder


def test_run_writes_intervals_next_to_values_recomputable_with_scipy(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", IDS[:6])
    common = ["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "metrics=[psnr,ssim]",
              "device=cpu", "stats.resamples=300", "stats.seed=5"]
    res = run_bench(common + ["method=noise_control", "runs=3", f"output_dir={tmp_path / 'out'}"])
    folder = folder_dir(tmp_path / "out", lr, hr) / "noise_control"
    on_disk = json.loads((folder / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert list(on_disk["metrics"]["psnr"])[:4] == ["mean", "mean_ci", "gstd", "gstd_ci"]  # next to each value
    assert list(on_disk)[list(on_disk).index("lstd") + 1] == "lstd_ci"
    assert on_disk["stats"]["resamples"] == 300 and on_disk["stats"]["seed"] == 5
    # results.json round trip through the typed model keeps every interval, in place
    back = Result.from_json(on_disk)
    assert back.metrics["psnr"].mean_ci == stats.Interval.from_json(on_disk["metrics"]["psnr"]["mean_ci"])
    assert json.dumps(back.to_json()) == json.dumps(on_disk)
    # the stored interval, recomputed here with scipy directly from scores.csv
    sc = pd.read_csv(folder / "scores.csv", dtype={"image": str})
    per_image = sc[sc.metric == "psnr"].groupby("image")["value"].mean().sort_index().to_numpy()
    ref = sps.bootstrap((per_image,), np.mean, n_resamples=300, vectorized=True, method="BCa",
                        rng=np.random.default_rng([5, zlib.crc32(b"psnr.mean")])).confidence_interval
    ci = on_disk["metrics"]["psnr"]["mean_ci"]
    assert (ci["low"], ci["high"], ci["method"], ci["n"]) == (pytest.approx(ref.low, abs=1e-12),
                                                              pytest.approx(ref.high, abs=1e-12), "BCa", 6)
    stds = sc[sc.metric == "ssim"].groupby("image")["value"].agg(lambda v: np.std(v, ddof=0)).sort_index().to_numpy()
    ref = sps.bootstrap((stds,), np.mean, n_resamples=300, vectorized=True, method="BCa",
                        rng=np.random.default_rng([5, zlib.crc32(b"ssim.gstd")])).confidence_interval
    assert on_disk["metrics"]["ssim"]["gstd_ci"]["low"] == pytest.approx(ref.low, abs=1e-12)
    lstd = pd.read_csv(folder / "lstd.csv")["lstd"]
    assert on_disk["lstd_ci"]["low"] < lstd.mean() < on_disk["lstd_ci"]["high"]
    # the tidy frame every table and check reads carries them
    df = collect(tmp_path / "out")
    row = df[(df.metric == "psnr")].iloc[0]
    assert (row.mean_low, row.mean_high) == (ci["low"], ci["high"])
    assert df[df.metric == "lstd"].iloc[0].mean_low == on_disk["lstd_ci"]["low"]
    # stats.enabled=false: no intervals at all
    off = run_bench(common + ["method=bicubic", "stats.enabled=false", f"output_dir={tmp_path / 'off'}"])
    assert "stats" not in off and "lstd_ci" not in off and "mean_ci" not in off["metrics"]["psnr"]
    # a deterministic method has a mean interval (over images) but no G-STD / L-STD interval
    det = run_bench(common + ["method=bicubic", f"output_dir={tmp_path / 'det'}"])
    assert det["metrics"]["psnr"]["mean_ci"]["n"] == 6 and det["metrics"]["psnr"]["gstd_ci"] is None
    assert det["lstd_ci"] is None


@pytest.fixture
def three(tmp_path):
    """A and B tied (A slightly ahead as printed), C far ahead in PSNR; LPIPS separates C from A."""
    rng = np.random.default_rng(0)
    base = rng.normal(27, 2, size=(12, 1))
    lp = rng.uniform(0.2, 0.4, size=(12, 1))
    mk = lambda shift, sd, lshift: {"psnr": base + shift + rng.normal(0, sd, (12, 5)),
                                    "lpips": lp + lshift + rng.normal(0, 0.002, (12, 5))}
    root = tmp_path / "res"
    write_synthetic(root, "A", mk(0.05, 0.5, 0.0), rng.uniform(0.02, 0.03, 12))
    write_synthetic(root, "B", mk(0.0, 0.5, 0.1), rng.uniform(0.02, 0.03, 12))
    write_synthetic(root, "C", mk(3.0, 0.5, 0.05), rng.uniform(0.04, 0.05, 12))
    return root


def test_report_marks_only_separated_bests_and_shows_intervals(three, tmp_path):
    rep = build_report(three, out=tmp_path / "rep", stats=FAST, html=True, runs_plot=False)
    t = rep.table
    psnr = t.groups[0].rows[0]
    assert psnr.metric == "psnr" and [c.mean.rank for c in psnr.cells] == [2, None, 1]  # C beats A: separated
    assert psnr.verdicts["mean"].status == "separated"
    # G-STD of PSNR: all three have the same run noise, so best and second are not separated
    g = psnr.verdicts["gstd"]
    assert g.status == "tied" and any(c.gstd.tie for c in psnr.cells)
    assert all(c.gstd.rank is None for c in psnr.cells)
    md = (tmp_path / "rep" / "table.md").read_text()
    tex = (tmp_path / "rep" / "table.tex").read_text()
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "†" in md and "not separated at 95%" in md and "Brackets: 95% confidence intervals" in md
    assert r"$^\dagger$" in tex and r"\footnotesize" in tex and r"{\scriptsize[" in tex
    assert "&dagger;" in html and 'class="ci"' in html
    # every printed number of the table has its interval
    for g_ in t.groups:
        for row in g_.rows:
            for c in row.cells:
                for p in (c.mean, c.gstd):
                    if p is not None and p.text not in ("-", "n/a"):
                        assert p.ci is not None and float(p.ci[0]) <= float(p.text) <= float(p.ci[1])


def test_report_ties_when_best_and_second_overlap(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(27, 2, size=(12, 1))
    root = tmp_path / "res"
    write_synthetic(root, "A", {"psnr": base + 0.03 + rng.normal(0, 0.5, (12, 4))}, None)
    write_synthetic(root, "B", {"psnr": base + rng.normal(0, 0.5, (12, 4))}, None)
    rep = build_report(root, out=tmp_path / "rep", stats=FAST, plots=False, html=False)
    cells = rep.table.groups[0].rows[0].cells
    assert cells[0].mean.text != cells[1].mean.text  # different as printed ...
    assert [c.mean.tie for c in cells] == [True, True] and [c.mean.rank for c in cells] == [None, None]  # ... but tied
    plain = build_report(root, out=tmp_path / "plain", stats=StatsConfig(enabled=False), plots=False, html=False)
    cells = plain.table.groups[0].rows[0].cells
    assert sorted(c.mean.rank for c in cells) == [1, 2] and not any(c.mean.tie or c.mean.ci for c in cells)
    md = (tmp_path / "plain" / "table.md").read_text()
    assert "†" not in md and "[" not in md.split("\n\n")[0]


def test_report_cli_stats_keys(three, tmp_path, capsys):
    from benchmark.report.cli import parse, report_main

    assert parse([str(three), "stats.enabled=false"])["stats"] == StatsConfig(enabled=False)
    assert parse([str(three), "stats.level=0.9", "stats.resamples=500"])["stats"] == StatsConfig(level=0.9,
                                                                                                 resamples=500)
    with pytest.raises(ValueError, match="stats.resamples=abc"):
        parse([str(three), "stats.resamples=abc"])
    assert report_main([str(three), f"out={tmp_path / 'o'}", "stats.enabled=false", "plots=false"]) == 0
    assert "†" not in capsys.readouterr().out


def test_untested_rows_keep_plain_marking_and_say_why(tmp_path):
    from report_fixtures import write_results

    rep = build_report(write_results(tmp_path / "r"), out=tmp_path / "rep", stats=FAST, plots=False, html=False)
    assert any("not tested for significance" in n and "scores.csv" in n for n in rep.notes)


def test_runs_plot_at_all_runs_equals_the_stored_values(tmp_path):
    from benchmark.report import runs_plot

    lr, hr = make_pairs(tmp_path / "d", IDS[:3])
    run_bench(["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "metrics=[psnr]", "device=cpu",
               "method=noise_control", "runs=4", "stats.resamples=200", f"output_dir={tmp_path / 'out'}"])
    df = collect(tmp_path / "out")
    ns, cur, notes = runs_plot.curves(df, folder_dir(tmp_path, lr, hr).name, "noise_control", draws=3)
    assert ns == [2, 3, 4] and not notes
    res = json.loads((folder_dir(tmp_path / "out", lr, hr) / "noise_control" / "results.json").read_text())
    assert np.allclose(cur["psnr.gstd"][-1], res["metrics"]["psnr"]["gstd"], atol=1e-12)
    assert np.allclose(cur["lstd"][-1], res["lstd"], atol=1e-9)
    rep = build_report(tmp_path / "out", out=tmp_path / "rep", stats=FAST, html=True)
    name = slug(folder_dir(tmp_path, lr, hr).name)  # the data set's name, derived from its folders
    assert (tmp_path / "rep" / "plots" / f"runs_{name}.png").is_file()
    assert f"plots/runs_{name}.png" in (tmp_path / "rep" / "index.html").read_text()


def test_check_ci_fails_only_outside_the_baseline_interval(three, tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    assert regression.main([str(three), "--baseline", str(baseline), "--update-baseline"]) == 0
    entry = json.loads(baseline.read_text())["entries"][0]
    ci = entry["metrics"]["psnr"]["mean_ci"]
    assert set(ci) == {"low", "high"} and entry["lstd_ci"] is not None  # the baseline keeps the intervals

    def current(psnr_mean: float) -> Path:
        cur = tmp_path / f"cur{psnr_mean}"
        for folder in sorted(three.glob("*/*")):
            res = json.loads((folder / "results.json").read_text())
            if res["method"] == "A":
                res["metrics"]["psnr"]["mean"] = psnr_mean
            (cur / folder.parent.name / folder.name).mkdir(parents=True, exist_ok=True)
            (cur / folder.parent.name / folder.name / "results.json").write_text(json.dumps(res))
        return cur

    mean = entry["metrics"]["psnr"]["mean"]
    inside = (mean + ci["low"]) / 2  # worse than the 0.5 % tolerance allows? only if the interval is that wide
    assert mean - inside > 0.005 * mean
    assert regression.main([str(current(inside)), "--baseline", str(baseline), "--methods", "A"]) == 1
    capsys.readouterr()
    assert regression.main([str(current(inside)), "--baseline", str(baseline), "--methods", "A", "--ci"]) == 0
    out = capsys.readouterr().out
    assert "baseline CI" in out and f"[{ci['low']:.6g}, {ci['high']:.6g}]" in out
    assert "inside the baseline's interval" in out
    below = ci["low"] - 0.01
    assert regression.main([str(current(below)), "--baseline", str(baseline), "--methods", "A", "--ci"]) == 1
    assert "REGRESSED (quality)" in capsys.readouterr().out
    above = ci["high"] + 0.01  # an improvement beyond the interval: passes, listed as improved
    assert regression.main([str(current(above)), "--baseline", str(baseline), "--methods", "A", "--ci"]) == 0
    assert "improved" in capsys.readouterr().out


def test_malformed_stored_interval_is_named():
    res = {"method": "m", "dataset": "d", "runs": 2, "stochastic": True,
           "metrics": {"psnr": {"mean": 1.0, "gstd": 0.1, "higher_is_better": True, "mean_ci": {"low": "x"}}},
           "lstd": 0.1, "lstd_ci": [0, 1]}
    with pytest.raises(ValueError, match=r"metric 'psnr' has mean_ci \{'low': 'x'\}.*'lstd_ci' is \[0, 1\]"):
        Result.from_json(res, "results.json")


def test_console_table_shows_intervals(three):
    from benchmark.report.console import format_table

    res = Result.from_json(json.loads((three / "syn" / "A" / "results.json").read_text()))
    text = format_table(res)
    ci = res.metrics["psnr"].mean_ci
    assert "95% CI" in text.splitlines()[1]
    assert f"[{ci.low:.4f}, {ci.high:.4f}]" in text and f"[{res.lstd_ci.low:.4f}, {res.lstd_ci.high:.4f}]" in text
    res.stats, res.lstd_ci = None, None
    for m in res.metrics.values():
        m.mean_ci = m.gstd_ci = None
    assert "CI" not in format_table(res) and "[" not in format_table(res)  # stats.enabled=false: as before


def test_latex_with_intervals_and_daggers_parses_and_compiles(three, tmp_path):
    import shutil
    import subprocess

    from test_report import _latex_rows

    build_report(three, out=tmp_path / "rep", stats=FAST, plots=False, html=False)
    tex = (tmp_path / "rep" / "table.tex").read_text()
    rows, macros = _latex_rows(tex)
    assert rows == [5] * 4  # header + PSNR, LPIPS, L-STD; 2 label columns + 3 methods: brackets add no cell
    assert macros <= {"\\", "toprule", "midrule", "bottomrule", "textcolor", "uparrow", "downarrow", "_", ",",
                      "scriptsize"}
    if shutil.which("pdflatex") is None:
        return  # the strict parse above still ran
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{xcolor}\n"
                   "\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n"
                   "\\input{rep/table.tex}\n\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_bracket_note_names_the_stored_level_and_the_test_its_own(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "res"
    stored = StatsConfig(resamples=300, level=0.9)
    write_synthetic(root, "A", {"psnr": 27 + rng.normal(0, 1, (12, 3))}, None, cfg=stored)
    write_synthetic(root, "B", {"psnr": 30 + rng.normal(0, 1, (12, 3))}, None, cfg=stored)
    rep = build_report(root, out=tmp_path / "rep", stats=StatsConfig(resamples=300, level=0.99), plots=False,
                       html=False)
    assert "Brackets: 90% confidence intervals" in rep.table.stats_note
    assert "beats the second at 99%" in rep.table.stats_note
