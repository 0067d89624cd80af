"""Issue 16 item 4, done-when: the report of two folders' runs has display names, the new plots
(per-image spread of the runs, all-runs strip, deterministic methods drawn) and a compact HTML
page, verified in headless Chromium.

Two ``dataset=folder`` data sets (4 and 2 tiny images), each run with bicubic (deterministic)
and noise_control (3 runs). Every check compares what a figure draws (read back from its
matplotlib artists) or what the page shows with values read here, independently, from the
stored scores.csv and sample PNGs, found through the results.json files (so the test holds
whatever the output folders are called).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from browser import Browser
from conftest import make_pairs, run_bench
from PIL import Image
from report_fixtures import recorded_figures, stored_results

from benchmark.report import build_report
from benchmark.report.plots import asset_name

FOLDERS = {"setA": ["a1", "a2", "a3", "a4"], "setB": ["b1", "b2"]}
NAMES = {"noise_control": "Noise ctrl", "bicubic": "Bicubic", "setA": "Folder A", "setB": "Folder B",
         "psnr": "PSNR-Y"}
KEYS_SHOWN_NOWHERE = ["noise_control", "bicubic", "setA", "setB"]
STRIP = "a2"


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    for seed, (name, ids) in enumerate(FOLDERS.items()):
        lr, hr = make_pairs(root / name, ids, seed=seed + 1)
        common = ["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"dataset.name={name}",
                  "metrics=[psnr,ssim]", "runs=3", f"output_dir={root / 'out'}", "device=cpu"]
        run_bench(common + ["method=bicubic"])
        run_bench(common + ["method=noise_control", "method.sigma=0.1"])
    with recorded_figures() as figs:
        rep = build_report(root / "out", out=root / "report", names=NAMES, all_runs=STRIP, max_images=6)
    return root, rep, figs, stored_results(root / "out")


def _scores(folders, dataset: str, method: str) -> pd.DataFrame:
    return pd.read_csv(folders[(dataset, method)] / "scores.csv", dtype={"image": str})


def _sample(folders, dataset: str, method: str, image: str, run: int) -> np.ndarray:
    """The stored SR image, at the documented layout samples/sampleNN/<id>.png."""
    path = folders[(dataset, method)] / "samples" / f"sample{run:02d}" / f"{image}.png"
    return np.asarray(Image.open(path).convert("RGB"))


def test_spread_plots_draw_every_run_and_the_deterministic_line(two):
    root, rep, figs, folders = two
    for key, ids in FOLDERS.items():
        shown = NAMES[key]
        for image in ids:
            fig = figs[f"spread_{asset_name(shown)}_{asset_name(image)}"]
            assert [a["title"] for a in fig["axes"]] == ["PSNR-Y", "SSIM"]
            for ax, metric in zip(fig["axes"], ["psnr", "ssim"]):
                sc = _scores(folders, key, "noise_control")
                runs = sc[(sc["image"] == image) & (sc["metric"] == metric)].sort_values("run")["value"].to_numpy()
                assert len(runs) == 3
                dots = ax["collections"][f"runs|Noise ctrl|{metric}"]
                assert dots[:, 1] == pytest.approx(runs, rel=1e-12)  # every run, in run order: not their mean
                assert ax["xticks"] == ["Noise ctrl"]
                det = _scores(folders, key, "bicubic")
                value = det[(det["image"] == image) & (det["metric"] == metric)]["value"].to_numpy()
                assert len(value) == 1
                assert ax["lines"][f"det|Bicubic|{metric}"] == pytest.approx([value[0]] * 2, rel=1e-12)
            assert fig["legend"] == ["Noise ctrl", "Bicubic (deterministic)"]
        # the CSV beside the figures holds the same values, run by run
        csv = pd.read_csv(root / "report" / "plots" / f"spread_{shown.replace(' ', '_')}.csv", dtype={"image": str})
        for method, display in (("noise_control", "Noise ctrl"), ("bicubic", "Bicubic")):
            sc = _scores(folders, key, method).query("image != '*'")
            got = csv[csv["method"] == display].set_index(["image", "metric", "run"])["value"].sort_index()
            want = sc.set_index(["image", "metric", "run"])["value"].sort_index()
            assert got.index.equals(want.index) and np.allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)


def test_all_runs_strip_shows_each_stored_run_beside_lr_and_hr(two):
    root, rep, figs, folders = two
    stem = f"allruns_{asset_name('Folder A')}_{asset_name(STRIP)}"
    fig = figs[stem]
    box = pd.read_csv(root / "report" / "plots" / f"{stem}.csv")
    top, left, size = (int(box[c].iloc[0]) for c in ("top", "left", "size"))
    crop = lambda a: a[top:top + size, left:left + size]  # noqa: E731
    lr = np.asarray(Image.open(root / "setA" / "LR" / f"{STRIP}.png").convert("RGB"))
    hr = np.asarray(Image.open(root / "setA" / "HR" / f"{STRIP}.png").convert("RGB"))
    lr_big = np.kron(lr, np.ones((4, 4, 1), dtype=np.uint8))  # nearest-neighbour enlargement, x4
    images = {gid: arr for ax in fig["axes"] for gid, arr in ax["images"].items()}
    assert sorted(images) == sorted(["Noise ctrl|lr", "Noise ctrl|hr", "Noise ctrl|run0", "Noise ctrl|run1",
                                     "Noise ctrl|run2", "Bicubic|lr", "Bicubic|hr", "Bicubic|run0"])
    for method, display, runs in (("noise_control", "Noise ctrl", 3), ("bicubic", "Bicubic", 1)):
        assert np.array_equal(images[f"{display}|lr"], crop(lr_big))
        assert np.array_equal(images[f"{display}|hr"], crop(hr))
        sc = _scores(folders, "setA", method)
        for r in range(runs):
            assert np.array_equal(images[f"{display}|run{r}"], crop(_sample(folders, "setA", method, STRIP, r)))
            psnr = sc[(sc["image"] == STRIP) & (sc["metric"] == "psnr") & (sc["run"] == r)]["value"].iloc[0]
            title = next(a["title"] for a in fig["axes"] if f"{display}|run{r}" in a["images"])
            assert title == f"run {r}\nPSNR-Y {psnr:.2f}"
    # the runs differ (noise_control): the strip is not one picture repeated
    assert not np.array_equal(images["Noise ctrl|run0"], images["Noise ctrl|run1"])
    assert [a["ylabel"] for a in fig["axes"] if a["ylabel"]] == ["Noise ctrl", "Bicubic"]


def test_display_names_in_every_figure(two):
    root, rep, figs, folders = two
    gstd = figs["gstd_Folder_A"]
    assert all(a["xticks"] == ["Noise ctrl"] for a in gstd["axes"])
    assert [a["title"] for a in gstd["axes"]] == ["G-STD of PSNR-Y", "G-STD of SSIM", "L-STD"]
    assert set(figs["scatter_Folder_B"]["legend"]) == {"Noise ctrl", "Bicubic (deterministic)"}
    assert set(figs["quality_stability_Folder_A"]["legend"]) == {"Noise ctrl", "Bicubic"}
    assert figs["runs_Folder_B"]["legend"] == ["Noise ctrl"]
    assert "Folder B" in figs["gstd_Folder_B"]["suptitle"]
    for stem, fig in figs.items():  # no stored key leaks into any text of any figure
        for text in fig["texts"]:
            for key in KEYS_SHOWN_NOWHERE:
                assert key not in text, (stem, text)


def test_scatter_draws_the_deterministic_method_on_the_zero_line(two):
    root, rep, figs, folders = two
    fig = figs["scatter_Folder_A"]
    ax = fig["axes"][0]  # PSNR
    det = _scores(folders, "setA", "bicubic").query("metric == 'psnr'").sort_values("image")
    pts = ax["collections"]["Bicubic|psnr"]
    assert sorted(pts[:, 0]) == pytest.approx(sorted(det["value"]), rel=1e-12) and set(pts[:, 1]) == {0.0}
    sto = _scores(folders, "setA", "noise_control").query("metric == 'psnr'")
    std = sto.groupby("image")["value"].agg(lambda v: float(np.std(v, ddof=0)))
    assert sorted(ax["collections"]["Noise ctrl|psnr"][:, 1]) == pytest.approx(sorted(std), rel=1e-9)


def test_visual_comparison_has_no_empty_cell_beside_the_lr(two):
    """Each column holds a picture (full and zoom): HR, LR (nearest), then each method's runs;
    bicubic's single run is one column, not a best column above an empty worst one."""
    root, rep, figs, folders = two
    fig = figs[f"visual_{asset_name('Folder A')}_{asset_name('a1')}"]
    assert all(a["n_images"] == 1 for a in fig["axes"])
    n = len(fig["axes"]) // 2
    titles = [a["title"] for a in fig["axes"][:n]]
    assert titles[:2] == ["HR", "LR (nearest)"]
    assert [t.split("\n")[0] for t in titles[2:]] == ["Noise ctrl", "Noise ctrl", "Bicubic"]
    assert titles[-1].startswith("Bicubic\nsingle run")


def test_unknown_all_runs_id_is_a_user_error(two):
    from benchmark.errors import UserError

    root, _, _, _ = two
    with pytest.raises(UserError, match=r"all_runs=zz: no image 'zz'.*Folder A: a1, a2, a3, a4; Folder B: b1, b2"):
        build_report(root / "out", out=root / "never", names=NAMES, all_runs="zz")
    assert not (root / "never").exists()


PROBE = """(() => {
  const cells = Array.from(document.querySelectorAll('td, th'));
  const sections = Array.from(document.querySelectorAll('section.image'));
  const body = document.body.cloneNode(true);
  body.querySelectorAll('#runs-data').forEach(t => t.remove());
  return {
    height: document.documentElement.scrollHeight,
    width: document.documentElement.scrollWidth,
    images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), w: i.naturalWidth,
        section: i.closest('section.image') ? i.closest('section.image').id : null})),
    empty: cells.filter(c => c.innerText.trim() === '' && !c.querySelector('img')).map(c => c.outerHTML),
    sections: sections.map(s => ({id: s.id, heading: s.querySelector('h3').innerText,
        tiles: Array.from(s.querySelectorAll('figure.tile')).map(f => [!!f.querySelector('img'),
                                                                      f.innerText.trim()])})),
    text: body.innerText,
    headers: Array.from(document.querySelectorAll('#table1-data th')).map(t => t.innerText),
  };
})()"""


def test_compact_html_page_in_chromium(two, chromium, tmp_path):
    root, rep, figs, folders = two
    page = rep.out / "index.html"
    with Browser(chromium, window=(1280, 1000)) as b:
        b.open(page.as_uri())
        state = b.evaluate(PROBE)
        shot = b.screenshot(tmp_path / "page.png")
    # under ~3 screens at 1280x1000 for 6 images (and one all-runs strip), nothing wider than the window
    assert state["height"] < 3000, state["height"]
    assert state["width"] <= 1280
    with Image.open(shot) as im:
        assert im.height == state["height"] and np.asarray(im.convert("RGB")).std() > 10
    # every referenced image exists and loaded
    assert state["images"]
    for img in state["images"]:
        assert (rep.out / img["src"]).is_file(), img["src"]
        assert img["w"] > 0, img["src"]
    assert not state["empty"], state["empty"][:3]
    # each image once, with everything about it in its own section
    ids = [s["id"] for s in state["sections"]]
    want = [f"img-{NAMES[k]}-{i}" for k, v in FOLDERS.items() for i in v]
    assert sorted(ids) == sorted(want) and len(set(ids)) == len(ids) == 6
    for s in state["sections"]:
        ds, image = s["id"][4:].rsplit("-", 1)
        folder = f"images/{asset_name(ds)}/{asset_name(image)}/"
        mine = [i for i in state["images"] if i["src"].startswith(folder) or asset_name(image) in i["src"]]
        assert mine and all(i["section"] == s["id"] for i in mine)  # shown in its section and nowhere else
        srcs = [i["src"] for i in mine]
        assert f"{folder}lr.png" in srcs and f"{folder}hr.png" in srcs
        assert any("/spread_" in x for x in srcs)  # its spread of runs
        assert len([x for x in srcs if x.endswith("_best.png")]) == 2  # one SR per method
        assert all(has_img and caption for has_img, caption in s["tiles"])  # no tile without a picture
        assert s["tiles"][0][1] == "LR (nearest)" and s["tiles"][1][1] == "HR"
        assert any("/allruns_" in x for x in srcs) == (image == STRIP)
    # its scores and spread: the per-image cells are mean ± population std over the stored runs
    sc = _scores(folders, "setA", "noise_control").query("image == 'a3' and metric == 'psnr'")["value"]
    assert f"{sc.mean():.2f} ± {np.std(sc.to_numpy(), ddof=0):.2f}" in state["text"]
    # display names, never the stored keys (except in the folder column of the runs table)
    assert state["headers"][:4] == ["Dataset", "Metric", "Noise ctrl", "Bicubic"]
    for shown in ("Folder A / a1", "Folder B / b2", "PSNR-Y", "Noise ctrl", "Bicubic"):
        assert shown in state["text"]
    for key in KEYS_SHOWN_NOWHERE:
        assert key not in state["text"], key
