"""Quality against stability: for each per-image metric of a data set, one point per method at
(mean, G-STD). Deterministic methods sit on the zero line (they have no spread over runs; their
G-STD prints as "-" in tables, here it is drawn as 0 and marked with a different symbol).

The data each panel draws is written beside the figure as ``quality_stability_<dataset>.csv``
(dataset, metric, method, mean, gstd, stochastic), so what the plot shows can be checked
against results.json without reading pixels.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmark.report.collect import LSTD
from benchmark.report import plots  # plots.save called through the module: one place to observe every saved figure
from benchmark.report.plots import slug
from benchmark.report.tables import label
from benchmark.store import atomic_write_csv


def points(df: pd.DataFrame, dataset: str, methods: Sequence[str]) -> pd.DataFrame:
    """One row per (metric, method) with a mean: G-STD of deterministic methods is 0 (drawn on
    the zero line); stochastic methods without a G-STD (one run, set metrics) are left out."""
    rows = []
    sub = df[(df["dataset"] == dataset) & (df["metric"] != LSTD) & (df["kind"] != "set")]
    for metric in dict.fromkeys(sub["metric"]):
        for m in methods:
            r = sub[(sub["metric"] == metric) & (sub["method"] == m)]
            if r.empty or pd.isna(r["mean"].iloc[0]):
                continue
            stochastic = bool(r["stochastic"].iloc[0])
            g = r["gstd"].iloc[0]
            if stochastic and (g is None or pd.isna(g)):
                continue
            rows.append({"dataset": dataset, "metric": metric, "method": m, "mean": float(r["mean"].iloc[0]),
                         "gstd": float(g) if stochastic else 0.0, "stochastic": stochastic})
    return pd.DataFrame(rows, columns=["dataset", "metric", "method", "mean", "gstd", "stochastic"])


def plot_quality_stability(df: pd.DataFrame, dataset: str, methods: Sequence[str], out_dir: Path) -> list[Path]:
    """``quality_stability_<dataset>.png/.pdf`` (one panel per metric) and its ``.csv``."""
    import matplotlib.pyplot as plt


    pts = points(df, dataset, methods)
    if pts.empty or not pts["stochastic"].any():
        return []  # without a stochastic method there is no stability to compare (all points at 0)
    metrics = list(dict.fromkeys(pts["metric"]))
    cols = min(4, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.0 * rows), squeeze=False)
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for ax, metric in zip(axes.flat, metrics):
        p = pts[pts["metric"] == metric]
        for r in p.itertuples():
            ax.scatter([r.mean], [r.gstd], s=36, color=colours[r.method], marker="o" if r.stochastic else "s",
                       label=r.method, zorder=3)
        ax.axhline(0.0, color="0.6", lw=0.8, zorder=1)  # where deterministic methods sit
        ax.set_xlabel(f"{label(metric)} mean", fontsize=8)
        ax.set_ylabel("G-STD (0: deterministic)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels_ = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels_, fontsize=7, loc="upper right")
    fig.suptitle(f"{dataset}: quality (mean) against stability (G-STD), one point per method", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    stem = f"quality_stability_{slug(dataset)}"
    files = plots.save(fig, out_dir, stem)
    csv = out_dir / f"{stem}.csv"

    atomic_write_csv(csv, pts)
    return files + [csv]
