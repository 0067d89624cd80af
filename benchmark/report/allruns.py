"""All N runs of one image side by side: ``report all_runs=<id>[,<id>...]``.

One row per method: the LR (enlarged with nearest neighbours), the HR, then the SR of run 0,
1, ..., N-1, each cropped to the same square window (where the runs of the stochastic methods
differ most, :func:`benchmark.report.plots.zoom_box`; the whole image when it is small). Each
run's title gives its run number and its value of the ranking metric (PSNR when computed) from
scores.csv. The figure ``allruns_<dataset>_<image>.png/.pdf`` comes with
``allruns_<dataset>_<image>.csv`` (method, run, seed, metric, value, top, left, size): what each
panel shows, checkable without reading pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from benchmark.images import read_image
from benchmark.report import plots
from benchmark.report.tables import label
from benchmark.store import atomic_write_csv
from benchmark.report.plots import asset_name

FULL_BELOW = 160  # images at most this many pixels on the short side are shown whole
CROP = 128  # else a crop of this size (or a quarter of the short side, if larger)


def crop_size(shape: tuple[int, int]) -> int:
    """Side of the square crop shown for an SR image of ``shape`` (h, w)."""
    short = min(shape)
    return short if short <= FULL_BELOW else max(CROP, short // 4)


def _nearest(lr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    f = max(1, shape[0] // lr.shape[0])
    return np.repeat(np.repeat(lr, f, axis=0), f, axis=1)


def plot_all_runs(df: pd.DataFrame, dataset: str, methods: Sequence[str], image: str,
                  ref: dict[str, np.ndarray], out_dir: Path) -> tuple[list[Path], list[str]]:
    """Write ``allruns_<dataset>_<image>`` (PNG, PDF, CSV); returns (files, notes).

    ``ref`` may hold ``lr`` and ``hr`` (8-bit RGB arrays); a method whose stored samples of the
    image cannot all be read is left out with a note naming the file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    notes: list[str] = []
    ranking = plots.ranking_metric(df, dataset)
    rows: list[tuple[str, list[tuple[int, Any, np.ndarray]]]] = []  # method, [(run, seed, image)]
    for m in methods:
        if df[(df["dataset"] == dataset) & (df["method"] == m)].empty:
            continue
        folder, runs, _ = plots.run_info(df, dataset, m)
        seed0 = df[(df["dataset"] == dataset) & (df["method"] == m)]["seed"].iloc[0]
        try:
            imgs = [(r, None if pd.isna(seed0) else int(seed0) + r, read_image(plots.sample_path(folder, image, r)))
                    for r in range(runs)]
        except (FileNotFoundError, ValueError) as err:
            notes.append(f"{dataset}/{m}: all-runs strip of {image} left out: {err}")
            continue
        rows.append((m, imgs))
    if not rows:
        return [], notes
    shape = rows[0][1][0][2].shape[:2]
    maps = [np.stack([a for _, _, a in imgs]).astype(np.float64).std(axis=0).mean(axis=-1)
            for _, imgs in rows if len(imgs) > 1]
    size = crop_size(shape)
    top, left, size = plots.zoom_box(maps, shape, frac=size / min(shape))
    crop = lambda a: a[top:top + size, left:left + size]  # noqa: E731
    refs = []
    if "lr" in ref:
        refs.append(("lr", "LR (nearest)", crop(_nearest(ref["lr"], shape))))
    if "hr" in ref:
        refs.append(("hr", "HR", crop(ref["hr"])))
    sc_rows = []
    ncols = len(refs) + max(len(imgs) for _, imgs in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.35 * ncols + 0.3, 1.55 * len(rows)), squeeze=False)
    for i, (m, imgs) in enumerate(rows):
        sc = plots.scores(df, dataset, m)
        vals: dict[int, float] = {}
        if ranking is not None and sc is not None:
            v = sc[(sc["image"] == image) & (sc["metric"] == ranking[0])]
            vals = dict(zip(v["run"].astype(int), v["value"].astype(float)))
        panels = [(kind, title, a) for kind, title, a in refs]
        for r, seed, a in imgs:
            value = vals.get(r, math.nan)
            text = f"run {r}" + ("" if math.isnan(value) else f"\n{label(ranking[0])} {value:.2f}")
            panels.append((f"run{r}", text, crop(a)))
            sc_rows.append({"method": m, "run": r, "seed": seed, "metric": ranking[0] if ranking else None,
                            "value": value, "top": top, "left": left, "size": size})
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(panels):
                ax.axis("off")  # a method with fewer runs: blank space at the end of its row
                continue
            kind, title, a = panels[j]
            ax.imshow(a, interpolation="nearest", gid=f"{m}|{kind}")
            ax.set_title(title, fontsize=6)
            if j == 0:
                ax.set_ylabel(m, fontsize=7)
    fig.suptitle(f"{dataset}/{image}: every run (crop {size}x{size} at y={top}, x={left})", fontsize=8)
    fig.tight_layout()

    stem = f"allruns_{asset_name(dataset)}_{asset_name(image)}"
    files = plots.save(fig, out_dir, stem)
    csv = out_dir / f"{stem}.csv"
    atomic_write_csv(csv, pd.DataFrame(sc_rows, columns=["method", "run", "seed", "metric", "value", "top", "left",
                                                         "size"]))
    return files + [csv], notes
