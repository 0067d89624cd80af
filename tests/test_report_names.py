"""Display names and order in reports (issue 16 item 4): names.<key>= and a names YAML file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmark.report import build_report
from report_fixtures import write_results

ROOT = Path(__file__).resolve().parents[1]


def _header(md: str) -> list[str]:
    return [c.strip() for c in md.splitlines()[0].strip("|").split("|")]


def test_display_names_and_order_in_every_table(tmp_path):
    res = write_results(tmp_path / "results")
    names = {"stable_sr": "StableSR", "ccsr": "CCSR (ours)", "bsrgan": "BSRGAN", "RealSR": "RealSR-crop",
             "psnr": "PSNR-Y"}
    rep = build_report(res, out=tmp_path / "rep", names=names, plots=False, html=False)
    md = (rep.out / "table.md").read_text()
    assert _header(md) == ["Dataset", "Metric", "StableSR", "CCSR (ours)", "BSRGAN"]  # the names' order
    assert "| RealSR-crop | PSNR-Y ↑ |" in md and "| DRealSR | PSNR-Y ↑ |" in md
    tex = (rep.out / "table.tex").read_text()
    assert "Datasets & Metrics & StableSR & CCSR (ours) & BSRGAN \\\\" in tex
    csv = pd.read_csv(rep.out / "table.csv")
    assert list(csv.columns[3:]) == ["StableSR", "CCSR (ours)", "BSRGAN"]
    tidy = pd.read_csv(rep.out / "results.csv")
    pairs = set(zip(tidy["method_key"], tidy["method"]))
    assert {("ccsr", "CCSR (ours)"), ("bsrgan", "BSRGAN"), ("stable_sr", "StableSR")} <= pairs
    # without names the same report prints the stored keys (labels are restored after a report)
    plain = build_report(res, out=tmp_path / "rep2", plots=False, html=False)
    assert _header((plain.out / "table.md").read_text())[2:] == ["bsrgan", "ccsr", "stable_sr"]
    assert "| RealSR | PSNR ↑ |" in (plain.out / "table.md").read_text()


def test_names_file_and_cli(tmp_path):
    res = write_results(tmp_path / "results")
    f = tmp_path / "names.yaml"
    f.write_text("ccsr: CCSR-v2\nbsrgan: BSRGAN\n")
    p = subprocess.run([sys.executable, "-m", "benchmark", "report", str(res), f"out={tmp_path / 'r'}",
                        f"names={f}", "names.stable_sr=StableSR", "plots=false", "html=false"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert _header((tmp_path / "r" / "table.md").read_text())[2:] == ["CCSR-v2", "BSRGAN", "StableSR"]


def test_two_keys_with_one_display_name_are_refused(tmp_path):
    res = write_results(tmp_path / "results")
    with pytest.raises(ValueError, match="display names map two results to one name"):
        build_report(res, out=tmp_path / "rep", names={"ccsr": "X", "bsrgan": "X"}, plots=False, html=False)


def test_quality_stability_plot_draws_results_values(tmp_path):
    """One point per method at (mean, G-STD); deterministic methods on the zero line. Checked on
    the CSV written beside the figure and on the figure's own artists."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    from benchmark.report.collect import collect
    from benchmark.report.quality_stability import points

    res = write_results(tmp_path / "results")
    rep = build_report(res, out=tmp_path / "rep", html=False, runs_plot=False)
    csv = rep.out / "plots" / "quality_stability_RealSR.csv"
    assert csv.is_file() and (rep.out / "plots" / "quality_stability_RealSR.png").is_file()
    pts = pd.read_csv(csv)
    # every value against the results.json files themselves
    for path in sorted(Path(res).rglob("results.json")):
        r = json.loads(path.read_text())
        if r["dataset"] != "RealSR":
            continue
        for metric, m in r["metrics"].items():
            row = pts[(pts["metric"] == metric) & (pts["method"] == r["method"])]
            if m.get("mean") is None or metric == "fid":
                assert row.empty
                continue
            assert len(row) == 1 and row["mean"].iloc[0] == pytest.approx(m["mean"])
            assert row["gstd"].iloc[0] == pytest.approx(m["gstd"] if r["stochastic"] else 0.0)
    assert set(pts[~pts["stochastic"]]["gstd"]) == {0.0} and "bsrgan" in set(pts["method"])
    # the figure draws exactly these points
    import matplotlib.pyplot as plt

    from benchmark.report.quality_stability import plot_quality_stability

    plt.close("all")
    shown = []
    orig = plt.Figure.savefig

    def grab(fig, *a, **k):
        for ax in fig.axes:
            for coll in ax.collections:
                shown.extend(tuple(map(float, xy)) for xy in coll.get_offsets())
        return orig(fig, *a, **k)

    plt.Figure.savefig = grab
    try:
        plot_quality_stability(collect(res), "RealSR", ["bsrgan", "ccsr", "stable_sr"], tmp_path / "p")
    finally:
        plt.Figure.savefig = orig
    want = points(collect(res), "RealSR", ["bsrgan", "ccsr", "stable_sr"])
    assert sorted(set(shown)) == sorted({(a, b) for a, b in zip(want["mean"], want["gstd"])})


IDS_PANDAS_MANGLES = ["0801", "NA", "null", "nan", "None", "N/A", "001"]


def test_image_ids_pandas_would_mangle_are_read_back_as_written(tmp_path):
    """DIV2K-style ids ("0801") keep their zeros and ids that pandas reads as missing by default
    ("NA", "null", ...) stay ids in every reader of scores.csv / lstd.csv (merge and the report);
    only an empty cell is missing (no seed, undefined L-STD)."""
    from benchmark.report import plots, significance
    from benchmark.store import atomic_write_csv, read_csv

    scores = pd.DataFrame({"image": IDS_PANDAS_MANGLES, "run": 0, "seed": [None] * len(IDS_PANDAS_MANGLES),
                           "metric": "psnr", "value": [20.0 + i for i in range(len(IDS_PANDAS_MANGLES))]})
    lstd = pd.DataFrame({"image": IDS_PANDAS_MANGLES, "lstd": [None] + [0.01] * (len(IDS_PANDAS_MANGLES) - 1)})
    atomic_write_csv(tmp_path / "scores.csv", scores)
    atomic_write_csv(tmp_path / "lstd.csv", lstd)
    back = read_csv(tmp_path / "scores.csv")
    assert list(back["image"]) == IDS_PANDAS_MANGLES and back["seed"].isna().all()
    assert list(back["value"]) == [20.0 + i for i in range(len(IDS_PANDAS_MANGLES))]
    back_lstd = read_csv(tmp_path / "lstd.csv")
    assert list(back_lstd["image"]) == IDS_PANDAS_MANGLES
    assert pd.isna(back_lstd["lstd"][0]) and back_lstd["lstd"][1] == 0.01
    significance.clear_cache()
    assert list(significance._scores(str(tmp_path))["image"]) == IDS_PANDAS_MANGLES
    assert list(significance._lstd(str(tmp_path))["image"]) == IDS_PANDAS_MANGLES
    assert list(plots._scores(tmp_path)["image"]) == IDS_PANDAS_MANGLES
