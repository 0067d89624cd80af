"""The report on a real (tiny) run: files, per-image figures, and the HTML page in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import Browser
from conftest import make_pairs, run_bench
from PIL import Image

from benchmark.report import build_report, plots
from benchmark.report.collect import collect

IMAGES = ["img_a", "img_b", "img_c"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """bicubic (deterministic) and noise_control (3 runs) on three 16x16 -> 64x64 pairs, then the report."""
    root = tmp_path_factory.mktemp("html")
    lr, hr = make_pairs(root / "data", IMAGES)
    common = ["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "dataset.name=tiny",
              "metrics=[psnr,ssim]", "runs=3", f"output_dir={root / 'out'}", "device=cpu"]
    run_bench(common + ["method=bicubic"])
    run_bench(common + ["method=noise_control", "method.sigma=0.1"])
    rep = build_report(root / "out", max_images=2)
    return root, rep


def test_report_files(bench):
    root, rep = bench
    out = root / "out" / "report"
    assert rep.out == out
    for name in ("table.tex", "table.md", "table.csv", "results.csv", "timing.tex", "timing.md", "index.html"):
        assert (out / name).is_file(), name
    names = sorted(p.name for p in (out / "plots").iterdir())
    # per-image figures are named by plots.asset_name (slug + hash: unique per id, issue 13)
    want = sorted([f"{kind}_tiny.{ext}" for kind in ("gstd", "scatter", "runs", "quality_stability")
                   for ext in ("png", "pdf")]
                  + [f"{k}_{plots.asset_name('tiny')}_{plots.asset_name(i)}.{ext}"
                     for k in ("lstd", "visual", "spread") for i in IMAGES[:2] for ext in ("png", "pdf")]
                  # the values the quality/stability and the per-image spread plots draw (issue 16)
                  + ["quality_stability_tiny.csv", "spread_tiny.csv"])
    assert names == want
    res = json.loads((root / "out" / "tiny" / "bicubic" / "results.json").read_text())
    ci = res["metrics"]["psnr"]["mean_ci"]  # best, with its interval (benchmark/stats.py)
    assert (f"| **{res['metrics']['psnr']['mean']:.2f}** [{ci['low']:.2f}, {ci['high']:.2f}] |"
            in (out / "table.md").read_text())
    assert "max_images" in " ".join(rep.notes)  # 2 of 3 images shown, and the report says so


def test_lstd_map_matches_the_runner(bench):
    """The heat map, border-cropped and averaged, is the per-image L-STD the runner stored."""
    root, _ = bench
    folder = root / "out" / "tiny" / "noise_control"
    stored = pd.read_csv(folder / "lstd.csv").set_index("image")["lstd"]
    for image in IMAGES:
        a = plots.lstd_map(folder, image, 3)
        assert a.shape == (64, 64)
        assert a[4:-4, 4:-4].mean() == pytest.approx(stored[image], rel=1e-12)


def test_best_and_worst_run_follow_the_scores(bench):
    root, rep = bench
    sc = pd.read_csv(root / "out" / "tiny" / "noise_control" / "scores.csv")
    for image in IMAGES[:2]:
        psnr = sc[(sc["image"] == image) & (sc["metric"] == "psnr")].set_index("run")["value"]
        view = next(v for v in rep.images if v.image == image)
        entry = next(e for e in view.methods if e["method"] == "noise_control")
        assert (entry["best_run"], entry["worst_run"]) == (psnr.idxmax(), psnr.idxmin())
        # The copied best run is the stored sample of that run, pixel for pixel.
        a = np.asarray(Image.open(rep.out / entry["best"]))
        b = np.asarray(Image.open(root / "out" / "tiny" / "noise_control" / "samples" /
                                  f"sample{entry['best_run']:02d}" / f"{image}.png"))
        assert np.array_equal(a, b)
    ssim = pd.DataFrame({"image": "x", "run": [0, 1, 2], "metric": "lpips", "value": [0.3, 0.1, 0.2]})
    assert plots.best_worst(ssim, "x", "lpips", higher_is_better=False) == (1, 0, 0.1, 0.3)


def test_zoom_box_finds_the_varying_region():
    m = np.zeros((40, 60))
    m[20:30, 35:45] = 1.0
    assert plots.zoom_box([m], (40, 60), frac=0.25) == (20, 35, 10)
    assert plots.zoom_box([], (40, 60), frac=0.25) == (15, 25, 10)  # nothing varies: centre


class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])
        elif tag == "table":
            self.tables += 1


PROBE = """(() => ({
  images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight})),
  tables: Array.from(document.querySelectorAll('table')).map(t => ({id: t.id, rows: t.rows.length,
      height: t.getBoundingClientRect().height, text: t.innerText})),
}))()"""


def test_html_in_headless_chromium(bench, chromium, tmp_path):
    root, rep = bench
    page = rep.out / "index.html"
    html = page.read_text()
    assert "file://" not in html and 'src="/' not in html  # relative links only: opens from the file system
    parsed = _Imgs()
    parsed.feed(html)
    # 4 stability plots (G-STD bars, scatter, quality vs stability, runs needed) + per image (2 shown): LR, HR,
    # bicubic run, noise_control best/worst/L-STD map, the spread of its runs (issue 16: each image once; the
    # visual comparison and L-STD map figures are linked, not shown again). Tables: Table 1, timing, runs, and
    # the per-image scores of each image.
    assert len(parsed.srcs) == 4 + 2 * 7 and parsed.tables == 3 + 2
    assert parsed.srcs[:4] == ["plots/gstd_tiny.png", "plots/scatter_tiny.png", "plots/quality_stability_tiny.png",
                               "plots/runs_tiny.png"]

    with Browser(chromium) as b:
        b.open(page.as_uri())
        state = b.evaluate(PROBE)
        shot = b.screenshot(tmp_path / "report.png")
        # Negative control: the same check sees an image that is gone (a copy, so no cache is involved).
        broken = tmp_path / "broken"
        shutil.copytree(rep.out, broken)
        victim = parsed.srcs[-3]
        (broken / victim).unlink()
        b.open((broken / "index.html").as_uri())
        broken_state = b.evaluate(PROBE)
    if os.environ.get("SRBENCH_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["SRBENCH_SCREENSHOT_DIR"]) / "report.png")

    assert [i["src"] for i in state["images"]] == parsed.srcs
    bad = [i["src"] for i in state["images"] if i["w"] == 0]
    assert not bad, f"images that did not load: {bad}"
    sizes = {i["src"]: (i["w"], i["h"]) for i in state["images"]}
    from benchmark.report.plots import asset_name

    folder = f"images/{asset_name('tiny')}/{asset_name('img_a')}"
    assert sizes[f"{folder}/hr.png"] == (64, 64) and sizes[f"{folder}/lr.png"] == (16, 16)
    assert [i["src"] for i in broken_state["images"] if i["w"] == 0] == [victim]

    tabs = {t["id"]: t for t in state["tables"] if t["id"]}  # the per-image score tables have no id
    assert set(tabs) == {"table1-data", "timing-data", "runs-data"} and len(state["tables"]) == 3 + 2
    assert all(t["height"] > 20 for t in tabs.values())
    t1 = tabs["table1-data"]
    assert t1["rows"] == 1 + 3  # header, PSNR, SSIM, L-STD
    psnr = collect(root / "out").query("method == 'bicubic' and metric == 'psnr'")["mean"].iloc[0]
    assert f"{psnr:.2f}" in t1["text"] and "L-STD" in t1["text"]
    with Image.open(shot) as im:
        assert im.width >= 1000 and im.height > 1000
        arr = np.asarray(im.convert("RGB"))
        assert arr.std() > 10  # not a blank page


def test_runs_are_not_called_best_or_worst_without_a_metric_to_rank_them(tmp_path):
    """LR-only folder and only full-reference metrics: no value ranks the runs, so the page names
    run 0 and run N-1 plainly instead of calling them best and worst (fresh-user trial)."""
    lr, _ = make_pairs(tmp_path / "d", ["a"], lr_size=(8, 8))
    out = tmp_path / "out"
    run_bench(["dataset=folder", f"dataset.lr_dir={lr}", "dataset.name=lronly", "runs=3", "metrics=[psnr]",
               "crop_border=0", "device=cpu", f"output_dir={out}"])
    rep = build_report(out, out=tmp_path / "report")
    page = (rep.out / "index.html").read_text()
    assert "best: run" not in page and "worst: run" not in page
    assert "<figcaption>run 0</figcaption>" in page and "<figcaption>run 2</figcaption>" in page
