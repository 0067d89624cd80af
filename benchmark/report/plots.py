"""Figures from the tidy frame and the per-image files beside each results.json.

* ``gstd_<dataset>``: G-STD of every per-image metric and the L-STD, bars per stochastic method;
* ``scatter_<dataset>``: per image, mean over runs against std over runs, per metric;
* ``lstd_<dataset>_<image>``: per-pixel std over the runs (mean over RGB), per stochastic method;
* ``visual_<dataset>_<image>``: the paper's visual comparison, the best- and the worst-PSNR
  run of each method side by side with a zoomed crop of the region that varies most;
* ``spread_<dataset>_<image>`` (:mod:`benchmark.report.spread`): the N runs of each method on one
  image, per metric (dots and a box; deterministic methods as a labelled line);
* ``allruns_<dataset>_<image>`` (:mod:`benchmark.report.allruns`): every run's crop beside LR and HR.

Every figure is written as PNG (for the HTML report) and PDF (for a paper).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from benchmark.images import read_image
from benchmark.report.collect import LSTD
from benchmark.report.tables import label
from benchmark.store import SET_IMAGE, Store, atomic_write_bytes, read_csv

PDF_META = {"CreationDate": None}  # reproducible PDFs: no time stamp
DPI = 120


def slug(text: str) -> str:
    """A file-name-safe version of a data set, method or image name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def asset_name(text: str) -> str:
    """A file-name-safe name that is unique per ``text``: its slug plus 8 hex digits of its SHA-256.

    Slugs alone collide (``日本`` and ``中国`` both slug to ``x``; ``a b`` and ``a_b`` to ``a_b``),
    and the HTML would then show one image's pictures for another.
    """
    return f"{slug(text)}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _atomic(path: Path, write: Any) -> Path:
    """Render with ``write(buffer)`` and store through the atomic write every srbench file uses,
    so a killed report never leaves a half-written figure under the final name."""
    buf = io.BytesIO()
    write(buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    _atomic(paths[0], lambda b: fig.savefig(b, format="png", dpi=DPI, bbox_inches="tight"))
    _atomic(paths[1], lambda b: fig.savefig(b, format="pdf", bbox_inches="tight", metadata=PDF_META))
    plt.close(fig)
    return paths


# ----------------------------------------------------------------------------- per-image data


def sample_path(folder: str | Path, image: str, run: int) -> Path:
    """Path of run ``run`` of ``image`` in a result folder (the Store layout)."""
    folder = Path(folder)
    return Store(folder.parent.parent, folder.parent.name, folder.name).sample_path(image, run)


@lru_cache(maxsize=64)
def _scores(folder: str) -> pd.DataFrame | None:
    path = Path(folder) / "scores.csv"
    if not path.is_file():
        return None
    df = read_csv(path)
    return df[df["image"] != SET_IMAGE]


def scores(df: pd.DataFrame, dataset: str, method: str) -> pd.DataFrame | None:
    """Per-image scores (image, run, seed, metric, value) of one result, None when scores.csv is absent."""
    folder = df[(df["dataset"] == dataset) & (df["method"] == method)]["path"]
    if folder.empty or folder.iloc[0] is None:
        return None
    return _scores(str(folder.iloc[0]))


def run_info(df: pd.DataFrame, dataset: str, method: str) -> tuple[str, int, bool]:
    r = df[(df["dataset"] == dataset) & (df["method"] == method)].iloc[0]
    return str(r["path"]), int(r["runs"]), bool(r["stochastic"])


def ranking_metric(df: pd.DataFrame, dataset: str) -> tuple[str, bool] | None:
    """The metric that picks the best and worst run: PSNR, else the first full-reference, else any per-image metric."""
    ok = df[(df["dataset"] == dataset) & (df["status"] == "ok") & df["kind"].isin(["FR", "NR"])]
    if ok.empty:
        return None
    names = list(dict.fromkeys(ok["metric"]))
    fr = [m for m in names if ok[ok["metric"] == m]["kind"].iloc[0] == "FR"]
    name = "psnr" if "psnr" in names else (fr or names)[0]
    return name, bool(ok[ok["metric"] == name]["higher_is_better"].iloc[0])


def best_worst(sc: pd.DataFrame, image: str, metric: str, higher_is_better: bool) -> tuple[int, int, float, float] | None:
    """(best run, worst run, best value, worst value) of one image; ties go to the lower run."""
    v = sc[(sc["image"] == image) & (sc["metric"] == metric)].sort_values("run")
    if v.empty:
        return None
    vals = v["value"].to_numpy(dtype=np.float64)
    runs = v["run"].to_numpy()
    b = int(np.argmax(vals) if higher_is_better else np.argmin(vals))
    w = int(np.argmin(vals) if higher_is_better else np.argmax(vals))
    return int(runs[b]), int(runs[w]), float(vals[b]), float(vals[w])


def lstd_map(folder: str | Path, image: str, runs: int) -> np.ndarray | None:
    """Per-pixel population std over the runs of the stored 8-bit samples in [0, 1], mean over RGB.

    The whole image is shown (no border crop), so the map lines up with the samples.
    """
    if runs < 2:
        return None
    stack = np.stack([read_image(sample_path(folder, image, r)) for r in range(runs)]).astype(np.float64) / 255.0
    return stack.std(axis=0, ddof=0).mean(axis=-1)


def zoom_box(std_maps: Sequence[np.ndarray], shape: tuple[int, int], frac: float = 0.25) -> tuple[int, int, int]:
    """(top, left, size) of the square window where the runs differ most (centre when nothing varies)."""
    h, w = shape
    size = max(8, int(round(min(h, w) * frac)))
    size = min(size, h, w)
    if not std_maps:
        return (h - size) // 2, (w - size) // 2, size
    total = np.sum(std_maps, axis=0)
    if not np.any(total > 0):
        return (h - size) // 2, (w - size) // 2, size
    ii = np.pad(total.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = ii[size:, size:] - ii[:-size, size:] - ii[size:, :-size] + ii[:-size, :-size]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(top), int(left), size


# ----------------------------------------------------------------------------- figures


def plot_gstd(df: pd.DataFrame, dataset: str, methods: Sequence[str], out_dir: Path) -> list[Path]:
    """Bars of G-STD per metric (and L-STD) for the stochastic methods of one data set; [] when none."""
    sub = df[(df["dataset"] == dataset) & df["method"].isin(methods) & df["stochastic"] & (df["status"] == "ok")]
    quantities = [(m, "gstd") for m in dict.fromkeys(sub[sub["kind"].isin(["FR", "NR"])]["metric"])]
    quantities += [(LSTD, "mean")] if (sub["metric"] == LSTD).any() else []
    stoch = [m for m in methods if m in set(sub["method"])]
    if not stoch or not quantities:
        return []
    fig, axes = plt.subplots(1, len(quantities), figsize=(max(3.0, 2.4 * len(quantities)), 3.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (metric, col) in zip(axes[0], quantities):
        vals = [sub[(sub["method"] == m) & (sub["metric"] == metric)][col] for m in stoch]
        vals = [float(v.iloc[0]) if len(v) else math.nan for v in vals]
        ax.bar(range(len(stoch)), vals, width=0.6, color=[colors[i % len(colors)] for i in range(len(stoch))])
        ax.set_xlim(-0.7, len(stoch) - 0.3)
        ax.set_xticks(range(len(stoch)), stoch, rotation=30, ha="right", fontsize=8)
        ax.set_title("L-STD" if metric == LSTD else f"G-STD of {label(metric)}", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"{dataset}: stability (lower is better)", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, f"gstd_{slug(dataset)}")


def plot_scatter(df: pd.DataFrame, dataset: str, methods: Sequence[str], out_dir: Path) -> list[Path]:
    """Per image: mean over runs (x) against population std over runs (y), one panel per metric.

    Deterministic methods are drawn too, on the zero line (one run: no spread) with square markers
    and "(deterministic)" in the legend; without a stochastic method of 2+ runs there is no figure.
    """
    per_method: dict[str, pd.DataFrame] = {}
    deterministic: set[str] = set()
    for m in methods:
        sub = df[(df["dataset"] == dataset) & (df["method"] == m)]
        if sub.empty:
            continue
        if not bool(sub["stochastic"].iloc[0]):
            deterministic.add(m)
        elif int(sub["runs"].iloc[0]) < 2:
            continue
        sc = scores(df, dataset, m)
        if sc is not None and not sc.empty:
            per_method[m] = sc.dropna(subset=["value"]).groupby(["metric", "image"])["value"].agg(
                mean="mean", std=lambda v: float(np.std(v.to_numpy(dtype=np.float64), ddof=0))).reset_index()
    if not set(per_method) - deterministic:
        return []
    metrics = list(dict.fromkeys(x for st in per_method.values() for x in st["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(3.5, 3.2 * len(metrics)), 3.2), squeeze=False)
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for ax, metric in zip(axes[0], metrics):
        for m, st in per_method.items():
            s = st[st["metric"] == metric]
            det = m in deterministic
            ax.scatter(s["mean"], s["std"], s=14, label=f"{m} (deterministic)" if det else m, alpha=0.8,
                       color=colours[m], marker="s" if det else "o", gid=f"{m}|{metric}")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))  # long tick labels must not overlap
        ax.set_xlabel(f"{label(metric)} mean over runs", fontsize=8)
        ax.set_ylabel("std over runs", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{dataset}: per-image mean and spread over runs", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, f"scatter_{slug(dataset)}")


def plot_lstd_maps(maps: dict[str, np.ndarray], dataset: str, image: str, out_dir: Path) -> list[Path]:
    """Heat maps of the per-pixel std over runs, one panel per stochastic method, one colour scale."""
    if not maps:
        return []
    vmax = max(float(np.percentile(a, 99.5)) for a in maps.values()) or 1e-6
    fig, axes = plt.subplots(1, len(maps), figsize=(3.0 * len(maps) + 0.6, 3.0), squeeze=False)
    im = None
    for ax, (m, a) in zip(axes[0], maps.items()):
        im = ax.imshow(a, cmap="inferno", vmin=0.0, vmax=vmax)
        ax.set_title(f"{m} (mean {a.mean():.4f})", fontsize=8)
        ax.axis("off")
    fig.colorbar(im, ax=axes[0].tolist(), fraction=0.046, pad=0.02)
    fig.suptitle(f"{dataset}/{image}: per-pixel std over runs", fontsize=10, y=1.04)
    return save(fig, out_dir, f"lstd_{asset_name(dataset)}_{asset_name(image)}")


def save_map_png(a: np.ndarray, vmax: float, path: Path) -> Path:
    """One heat map as a plain PNG of the image's size (for the HTML report)."""
    return _atomic(path, lambda b: plt.imsave(b, a, format="png", cmap="inferno", vmin=0.0, vmax=vmax or 1e-6))


def _crop(a: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    t, l, s = box
    return a[t:t + s, l:l + s]


def plot_visual(panels: dict[str, dict], dataset: str, image: str, box: tuple[int, int, int],
                ref: dict[str, np.ndarray], metric: str, out_dir: Path) -> list[Path]:
    """The paper's visual comparison: per method the best and worst run, each with a zoomed crop.

    ``panels[method]`` holds ``best``/``worst`` images and ``best_value``/``worst_value``/``best_run``/
    ``worst_run``; ``ref`` may hold ``hr`` and ``lr`` (LR shown enlarged with nearest neighbours).
    """
    from matplotlib.patches import Rectangle

    # One column per picture (HR, LR, then each method's best and worst run), the full picture above
    # its zoom: every column is full, so no picture sits beside an empty cell (a deterministic
    # method has one column, not a best column and an empty worst one).
    cols: list[tuple[np.ndarray, str]] = []
    if "hr" in ref:
        cols.append((ref["hr"], "HR"))
        lr = ref.get("lr")
        if lr is not None:
            f = ref["hr"].shape[0] // lr.shape[0]
            cols.append((np.repeat(np.repeat(lr, f, axis=0), f, axis=1), "LR (nearest)"))
    for m, p in panels.items():
        name = label(metric)
        single = p["worst_run"] == p["best_run"]
        value = "" if math.isnan(p["best_value"]) else f": {name} {p['best_value']:.2f}"
        cols.append((p["best"], f"{m}\n{'single run' if single else 'best run ' + str(p['best_run'])}{value}"))
        if not single:
            cols.append((p["worst"], f"{m}\nworst run {p['worst_run']}: {name} {p['worst_value']:.2f}"))
    fig, axes = plt.subplots(2, len(cols), figsize=(1.9 * len(cols), 4.2), squeeze=False)
    t, l, s = box
    for j, (img, caption) in enumerate(cols):
        ax_full, ax_zoom = axes[0][j], axes[1][j]
        ax_full.axis("off")
        ax_zoom.axis("off")
        ax_full.imshow(img)
        ax_full.add_patch(Rectangle((l - 0.5, t - 0.5), s, s, fill=False, edgecolor="yellow", linewidth=1.2))
        ax_full.set_title(caption, fontsize=7)
        ax_zoom.imshow(_crop(img, box), interpolation="nearest")
    fig.suptitle(f"{dataset}/{image}: best and worst run by {label(metric)} (zoom: where the runs differ most)",
                 fontsize=9)
    fig.tight_layout()
    return save(fig, out_dir, f"visual_{asset_name(dataset)}_{asset_name(image)}")
