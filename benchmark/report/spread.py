"""The spread of the N runs on one image: per metric, every run's value as a dot over a box
(median, quartiles, whiskers at 1.5 IQR) for each stochastic method, and each deterministic
method's single value as a dashed horizontal line labelled "<method> (deterministic)".

``spread_<dataset>_<image>.png/.pdf`` holds one panel per per-image metric (FR and NR; set
metrics such as FID have no per-image value). The values drawn for all shown images of a data
set are written beside the figures as ``spread_<dataset>.csv`` (dataset, image, metric, method,
run, seed, value, stochastic), one row per dot or line, read from each result's scores.csv; so
what the plots show can be checked against scores.csv without reading pixels. Values a metric
could not give (excluded, see results.json) are not in scores.csv and are not drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.report.collect import LSTD
from benchmark.report.tables import paper_order
from benchmark.report.plots import scores
from benchmark.report.tables import label
from benchmark.report import plots  # plots.save called through the module: one place to observe every saved figure
from benchmark.report.plots import asset_name, slug
from benchmark.store import atomic_write_csv

COLUMNS = ["dataset", "image", "metric", "method", "run", "seed", "value", "stochastic"]


def metrics_of(df: pd.DataFrame, dataset: str) -> list[str]:
    """Per-image metrics of a data set with at least one value, in the table's row order."""

    ok = df[(df["dataset"] == dataset) & (df["status"] == "ok") & df["kind"].isin(["FR", "NR"])
            & (df["metric"] != LSTD)]
    names = list(dict.fromkeys(ok["metric"]))
    known = [m for m in paper_order() if m in names]
    return known + [m for m in names if m not in known]


def run_values(df: pd.DataFrame, dataset: str, methods: Sequence[str], images: Sequence[str]) -> pd.DataFrame:
    """One row per (image, metric, method, run) of the given images, from each result's scores.csv.

    Deterministic methods give their one run (run 0). Methods without scores.csv give no rows.
    """

    metrics = metrics_of(df, dataset)
    parts = []
    for m in methods:
        sub = df[(df["dataset"] == dataset) & (df["method"] == m)]
        if sub.empty:
            continue
        sc = scores(df, dataset, m)
        if sc is None or sc.empty:
            continue
        sc = sc[sc["image"].isin(list(images)) & sc["metric"].isin(metrics)].dropna(subset=["value"])
        if sc.empty:
            continue
        stochastic = bool(sub["stochastic"].iloc[0])
        part = sc.assign(dataset=dataset, method=m, stochastic=stochastic)
        parts.append(part[COLUMNS])
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    rank = {"image": list(images), "metric": metrics, "method": list(methods)}
    keys = {c: out[c].map({k: i for i, k in enumerate(rank[c])}) for c in rank}
    return (out.assign(**{f"_{c}": k for c, k in keys.items()})
            .sort_values(["_image", "_metric", "_method", "run"]).drop(columns=[f"_{c}" for c in rank])
            .reset_index(drop=True))


def draw(values: pd.DataFrame, dataset: str, image: str, methods: Sequence[str]):
    """The figure of one image (not saved): one panel per metric; x: the stochastic methods.

    Artists carry ``gid`` ``"runs|<method>|<metric>"`` (the dots) and ``"det|<method>|<metric>"``
    (a deterministic method's line), so tests can read back exactly what is drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    v = values[values["image"] == image]
    metrics = list(dict.fromkeys(v["metric"]))
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    sto = [m for m in methods if m in set(v[v["stochastic"]]["method"])]
    cols = min(4, len(metrics))  # more metrics wrap onto further rows, so the figure stays readable when scaled
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(1.9, 0.5 * len(sto) + 1.1) * cols, 1.9 * rows),
                             squeeze=False)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles: dict[str, object] = {}
    for ax, metric in zip(axes.flat, metrics):
        p = v[v["metric"] == metric]
        per = [p[(p["method"] == m)].sort_values("run")["value"].to_numpy(np.float64) for m in sto]
        keep = [(i, m, a) for i, (m, a) in enumerate(zip(sto, per)) if a.size]
        if keep:
            ax.boxplot([a for _, _, a in keep], positions=[i for i, _, _ in keep], widths=0.5, showfliers=False,
                       medianprops={"color": "0.2"}, boxprops={"color": "0.45"}, whiskerprops={"color": "0.45"},
                       capprops={"color": "0.45"})
        for i, m, a in keep:
            # runs spread evenly across the box (run order left to right) instead of random jitter
            xs = i + (np.linspace(-0.17, 0.17, a.size) if a.size > 1 else np.zeros(1))
            handles[m] = ax.scatter(xs, a, s=14, color=colours[m], zorder=3, gid=f"runs|{m}|{metric}",
                                    label=m, edgecolors="none")
        for m in methods:
            if m in sto:
                continue
            d = p[p["method"] == m].sort_values("run")["value"].to_numpy(np.float64)
            if d.size:
                handles[f"{m} (deterministic)"] = ax.axhline(d[0], color=colours[m], ls="--", lw=1.2, zorder=2,
                                                             gid=f"det|{m}|{metric}", label=f"{m} (deterministic)")
        ax.set_xticks(range(len(sto)), sto, rotation=20, ha="right", fontsize=7)
        ax.set_xlim(-0.6, max(len(sto), 1) - 0.4)
        ax.set_title(label(metric), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 0.95),
               frameon=False)
    fig.suptitle(f"{dataset}/{image}: value of each run", fontsize=7)
    fig.tight_layout()
    return fig


def plot_spread(df: pd.DataFrame, dataset: str, methods: Sequence[str], images: Sequence[str],
                out_dir: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Per image its ``spread_`` figure (PNG, PDF); and the data set's ``spread_<dataset>.csv``.

    Returns ({image: [png, pdf]}, [csv]); nothing when no stochastic method has values (a spread
    of deterministic methods alone says nothing).
    """

    values = run_values(df, dataset, methods, images)
    if values.empty or not values["stochastic"].any():
        return {}, []
    figures: dict[str, list[Path]] = {}
    for image in images:
        if not (values["image"] == image).any() or not values[values["image"] == image]["stochastic"].any():
            continue
        fig = draw(values, dataset, image, methods)
        figures[image] = plots.save(fig, out_dir, f"spread_{asset_name(dataset)}_{asset_name(image)}")
    csv = out_dir / f"spread_{slug(dataset)}.csv"
    atomic_write_csv(csv, values)
    return figures, [csv]
