"""How many runs are enough? G-STD and L-STD estimated from N = 2 .. runs of the stored runs.

For each stochastic method of a data set, ``draws`` random orders of its runs are drawn
(:func:`benchmark.stats.run_subsets`; one order for all images, as a researcher who ran N
seeds would have), and G-STD of every per-image metric (from ``scores.csv``) and L-STD (from
the stored sample PNGs) are recomputed from the first N runs of each order
(:func:`benchmark.stats.gstd_by_runs`, :func:`benchmark.stats.lstd_by_runs`). The figure
``runs_<dataset>`` shows, per quantity, the median over the draws and the band between the
5th and 95th percentiles against N, with the bootstrap interval of the full-N value when
results.json stores it. A curve that is still rising at N = runs says that more runs would
change the number (the population std of few runs is biased low); a band much wider than the
difference between two methods says that N runs cannot tell them apart.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import stats
from benchmark.store import read_csv
from benchmark.report.collect import LSTD
from benchmark.images import read_image
from benchmark.report.plots import sample_path
from benchmark.report import plots  # plots.save called through the module: one place to observe every saved figure
from benchmark.report.plots import slug
from benchmark.report.tables import label

log = logging.getLogger("srbench")

DEFAULT_DRAWS = 10


def _stacks(folder: str, images: Sequence[str], runs: int) -> Iterator[np.ndarray]:

    for image in images:
        yield np.stack([read_image(sample_path(folder, image, r)) for r in range(runs)])


def curves(df: pd.DataFrame, dataset: str, method: str, draws: int = DEFAULT_DRAWS,
           seed: int = 0) -> tuple[list[int], dict[str, np.ndarray], list[str]]:
    """(N values, quantity -> array len(N) x draws, notes) for one stochastic result.

    Quantities are ``"<metric>.gstd"`` for each per-image metric in scores.csv and ``"lstd"``
    when every sample PNG is stored; what cannot be computed is named in the notes.
    """
    r = df[(df["dataset"] == dataset) & (df["method"] == method)].iloc[0]
    runs, folder = int(r["runs"]), str(r["path"])
    notes: list[str] = []
    if runs < 3:
        return [], {}, [f"{dataset}/{method}: {runs} run(s); the runs plot needs at least 3"]
    ns = list(range(2, runs + 1))
    orders = stats.run_subsets(runs, draws, seed)
    out: dict[str, np.ndarray] = {}
    sc_path = Path(folder) / "scores.csv"
    if sc_path.is_file():
        sc = read_csv(sc_path)
        sc = sc[sc["image"] != stats.SET_IMAGE]
        for metric in dict.fromkeys(sc["metric"]):
            _, values, left = stats.complete_run_matrix(sc, metric)
            if left:  # excluded values: the curve uses the images that have every run, and says so
                notes.append(f"{dataset}/{method}: G-STD of {metric} from N runs uses {values.shape[0]} image(s); "
                             f"left out (some run excluded): {', '.join(left[:5])}")
            if values.size and values.shape[1] == runs:
                out[f"{metric}.gstd"] = stats.gstd_by_runs(values, ns, orders)
    else:
        notes.append(f"{dataset}/{method}: no scores.csv in {folder}; G-STD curves left out")
    lstd_path = Path(folder) / "lstd.csv"
    images = list(read_csv(lstd_path)["image"]) if lstd_path.is_file() else []

    absent = [i for i in images for k in range(runs) if not sample_path(folder, i, k).is_file()]
    if not images or absent:
        notes.append(f"{dataset}/{method}: L-STD curve left out: "
                     + (f"no lstd.csv in {folder}" if not images else
                        f"{len(absent)} stored sample PNG(s) missing, e.g. image {absent[0]}"))
    else:
        out[LSTD] = stats.lstd_by_runs(_stacks(folder, images, runs), int(r["crop_border"]), ns, orders)
    return ns, out, notes


def plot_runs_needed(df: pd.DataFrame, dataset: str, methods: Sequence[str], out_dir: Path,
                     draws: int = DEFAULT_DRAWS, seed: int = 0) -> tuple[list[Path], list[str]]:
    """The figure ``runs_<dataset>`` (PNG and PDF) and notes; no files when no method has 3+ runs."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator


    sub = df[(df["dataset"] == dataset) & df["method"].isin(methods) & df["stochastic"]]
    per_method: dict[str, tuple[list[int], dict[str, np.ndarray]]] = {}
    notes: list[str] = []
    for m in [m for m in methods if m in set(sub["method"])]:
        ns, cur, why = curves(df, dataset, m, draws, seed)
        notes += why
        if cur:
            per_method[m] = (ns, cur)
    if not per_method:
        return [], notes
    quantities = list(dict.fromkeys(q for _, cur in per_method.values() for q in cur))
    quantities = [q for q in quantities if q != LSTD] + ([LSTD] if LSTD in quantities else [])
    fig, axes = plt.subplots(1, len(quantities), figsize=(max(3.2, 2.8 * len(quantities)), 3.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, q in zip(axes[0], quantities):
        for k, (m, (ns, cur)) in enumerate(per_method.items()):
            if q not in cur:
                continue
            c = colors[k % len(colors)]
            a = cur[q]
            ax.fill_between(ns, np.percentile(a, 5, axis=1), np.percentile(a, 95, axis=1), color=c, alpha=0.2,
                            linewidth=0)
            ax.plot(ns, np.median(a, axis=1), color=c, marker="o", markersize=3, label=m)
            row = sub[(sub["method"] == m) & (sub["metric"] == (LSTD if q == LSTD else q.split(".")[0]))]
            col = "mean" if q == LSTD else "gstd"
            if len(row) and f"{col}_low" in row and not math.isnan(float(row.iloc[0][f"{col}_low"])):
                lo, hi, v = (float(row.iloc[0][f"{col}_low"]), float(row.iloc[0][f"{col}_high"]),
                             float(row.iloc[0][col]))
                ax.errorbar([ns[-1] + 0.25], [v], yerr=[[v - lo], [hi - v]], color=c, capsize=3, fmt="none")
        ax.set_title("L-STD" if q == LSTD else f"G-STD of {label(q.split('.')[0])}", fontsize=9)
        ax.set_xlabel("runs N", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{dataset}: estimate from N of the stored runs (median, 5-95% over {draws} draws; "
                 f"bar: interval at all runs)", fontsize=9)
    fig.tight_layout()
    return plots.save(fig, out_dir, f"runs_{slug(dataset)}"), notes
