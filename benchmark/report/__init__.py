"""``python -m benchmark report``: paper tables, plots and a static HTML report from stored results.

Everything starts from one tidy DataFrame (:func:`benchmark.report.collect.collect`) of the
results.json files below a folder; per-image figures also read scores.csv and samples/ beside
each results.json. The plain-text table printed at the end of a run is
:func:`benchmark.report.console.format_table` (re-exported here).
"""

from __future__ import annotations

import errno
import json
import os
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Any

import numpy as np
import pandas as pd

from benchmark.report import tables
from benchmark.report.console import format_table  # noqa: F401  (the runner's end-of-run table)
from benchmark.report.collect import collect, dataset_order, method_order
from benchmark.stats import StatsConfig
from benchmark.store import atomic_write_bytes, read_csv
from benchmark import datarecord
from benchmark.report.plots import scores
from benchmark.report.tables import digits, fmt, label
from benchmark.images import write_png_atomic
from benchmark.images import read_image
from benchmark.report import plots
from benchmark.report.allruns import plot_all_runs
from benchmark.errors import UserError
from benchmark.write_errors import check_writable
from benchmark.report import names as names_mod
from benchmark.report import plots as plots_mod
from benchmark.report.collect import _split
from benchmark.report import significance
from benchmark.report.html import write_html
from benchmark.report.quality_stability import plot_quality_stability
from benchmark.report import spread
from benchmark.report.runs_plot import plot_runs_needed

log = logging.getLogger("srbench")

DEFAULT_MAX_IMAGES = 6


@dataclass
class ImageView:
    """What the HTML report shows for one image (paths relative to the report folder)."""

    dataset: str
    image: str
    lr: str | None = None
    hr: str | None = None
    methods: list[dict[str, Any]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # shown in the image's section (spread, all-runs strip)
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, path): figures linked, not shown
    metrics: list[str] = field(default_factory=list)  # labels of the per-image scores' columns
    scores: list[dict[str, Any]] = field(default_factory=list)  # per method: runs and one cell per metric


@dataclass
class Report:
    """Files written by :func:`build_report` (absolute paths) and what the HTML shows."""

    out: Path
    df: pd.DataFrame
    table: tables.Table
    timing: tables.TimingTable | None
    files: list[Path] = field(default_factory=list)
    plots: dict[str, list[Path]] = field(default_factory=dict)
    images: list[ImageView] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _write(path: Path, text: str, files: list[Path]) -> None:

    atomic_write_bytes(path, text.encode())
    files.append(path)


def _dataset_samples(df: pd.DataFrame, dataset: str) -> tuple[dict[str, Any], str | None]:
    """LR/HR paths of a data set, from the plain-data record the runner wrote into the
    manifest.json beside its results (:mod:`benchmark.datarecord`).

    Nothing read from a results folder is instantiated, imported or unpickled: the stored
    config's ``_target_`` is never used. A report is still useful without LR/HR (e.g. the data
    moved to another machine, or results written before the record existed), so any failure
    becomes a note in the report instead of an error.
    """

    sub = df[df["dataset"] == dataset]
    folder = sub["path"].iloc[0]
    manifest = Path(folder) / "manifest.json"
    try:
        stored = json.loads(manifest.read_text()) if manifest.is_file() else None
        rec = stored.get(datarecord.RECORD_KEY) if isinstance(stored, dict) else None
        listed = datarecord.samples_of(rec, manifest)
        want = {h for h in sub["content_hash"].dropna()}
        have = datarecord.content_hash(listed) if want else None
    except (OSError, ValueError) as err:  # the report goes on without LR/HR
        return {}, f"LR/HR images of {dataset} are not shown: {err}"
    if want and want != {have}:
        # The files at the recorded paths changed since the runs: showing them would mislead.
        return {}, (f"LR/HR images of {dataset} are not shown: the files found now (content hash {str(have)[:12]}) "
                    f"are not the ones the runs used ({', '.join(h[:12] for h in sorted(want))})")
    return {s.id: s for s in listed}, None


def _image_ids(df: pd.DataFrame, dataset: str, methods: Sequence[str]) -> list[str]:

    ids: set[str] = set()
    for m in methods:
        folder = df[(df["dataset"] == dataset) & (df["method"] == m)]["path"]
        if folder.empty:
            continue
        lstd_csv = Path(folder.iloc[0]) / "lstd.csv"
        if lstd_csv.is_file():
            ids |= set(read_csv(lstd_csv)["image"])
        sc = scores(df, dataset, m)
        if sc is not None:
            ids |= set(sc["image"])
    return sorted(ids)


def _score_cells(values: pd.DataFrame, image: str, methods: Sequence[str]) -> tuple[list[str], list[dict]]:
    """The per-image scores of the HTML page: (metric labels, one row per method).

    A stochastic method's cell is ``mean ± std`` over its runs of this image (population std,
    ddof=0, as G-STD), with min..max in ``title``; a deterministic method's cell is its value.
    """

    v = values[values["image"] == image]
    metrics = list(dict.fromkeys(v["metric"]))
    rows = []
    for m in methods:
        mv = v[v["method"] == m]
        if mv.empty:
            continue
        cells = []
        for metric in metrics:
            a = mv[mv["metric"] == metric]["value"].to_numpy(np.float64)
            d = digits(metric)
            if a.size == 0:
                cells.append({"text": "n/a", "title": "no value"})
            elif not bool(mv["stochastic"].iloc[0]):
                cells.append({"text": fmt(float(a[0]), d), "title": "one run (deterministic)"})
            else:
                cells.append({"text": f"{fmt(float(a.mean()), d)} ± {fmt(float(a.std(ddof=0)), d)}",
                              "title": f"{a.size} runs: min {fmt(float(a.min()), d)}, max {fmt(float(a.max()), d)}"})
        runs = int(mv.groupby("metric")["run"].nunique().max())
        rows.append({"method": m, "runs": runs, "stochastic": bool(mv["stochastic"].iloc[0]), "cells": cells})
    return [label(x) for x in metrics], rows


def _save_png(arr: np.ndarray, path: Path, files: list[Path] | None = None) -> str:

    write_png_atomic(path, arr)
    if files is not None:
        files.append(path)
    return path.as_posix()


def _per_image(rep: Report, dataset: str, methods: Sequence[str], image: str, samples: dict[str, Any],
               plots_dir: Path, values: pd.DataFrame | None = None, spread: Sequence[Path] = (),
               all_runs: bool = False) -> ImageView:
    """Everything the report shows about one image: LR, HR, per method the best/worst run and its
    L-STD map (copied into ``images/``), the image's scores and spread over runs (``values``, from
    :func:`benchmark.report.spread.run_values`), its spread figure and, with ``all_runs``, the
    all-runs strip; the paper figures (visual comparison, L-STD maps) are written and linked."""

    view = ImageView(dataset, image)
    assets = rep.out / "images" / plots.asset_name(dataset) / plots.asset_name(image)  # unique per id
    rel = lambda p: Path(p).relative_to(rep.out).as_posix()
    _save = lambda arr, path: _save_png(arr, path, rep.files)  # noqa: E731
    ref: dict[str, np.ndarray] = {}
    smp = samples.get(image)
    if smp is not None:
        try:
            ref["lr"] = read_image(smp.lr_path)
            view.lr = rel(_save(ref["lr"], assets / "lr.png"))
            if smp.hr_path is not None:
                ref["hr"] = read_image(smp.hr_path)
                view.hr = rel(_save(ref["hr"], assets / "hr.png"))
        except (FileNotFoundError, ValueError) as err:  # one unreadable file never aborts the report
            rep.notes.append(f"{dataset}/{image}: LR/HR not shown: {err}")
    ranking = plots.ranking_metric(rep.df, dataset)
    maps: dict[str, np.ndarray] = {}
    panels: dict[str, dict[str, Any]] = {}
    for m in methods:
        if rep.df[(rep.df["dataset"] == dataset) & (rep.df["method"] == m)].empty:
            continue
        folder, runs, stochastic = plots.run_info(rep.df, dataset, m)
        if not plots.sample_path(folder, image, 0).is_file():
            view.methods.append({"method": m, "missing": f"no stored samples of {image} in {folder}"})
            continue
        bw = None
        sc = plots.scores(rep.df, dataset, m)
        if ranking is not None and sc is not None:
            bw = plots.best_worst(sc, image, *ranking)
        best_run, worst_run, best_v, worst_v = bw if bw is not None else (0, runs - 1, float("nan"), float("nan"))
        try:  # a missing or damaged sample costs this panel, never the whole report
            p = {"best_run": best_run, "worst_run": worst_run, "best_value": best_v, "worst_value": worst_v,
                 "best": read_image(plots.sample_path(folder, image, best_run)),
                 "worst": read_image(plots.sample_path(folder, image, worst_run))}
            lmap = plots.lstd_map(folder, image, runs) if stochastic and runs > 1 else None
        except (FileNotFoundError, ValueError) as err:
            why = f"a stored sample of {image} cannot be read ({err}); rerun the benchmark command to regenerate it"
            view.methods.append({"method": m, "missing": why})
            rep.notes.append(f"{dataset}/{m}: {why}")
            continue
        panels[m] = p
        if lmap is not None:
            maps[m] = lmap
        entry = {"method": m, "runs": runs, "metric": tables.label(ranking[0]) if ranking else None,
                 "best_run": best_run, "worst_run": worst_run, "best_value": best_v, "worst_value": worst_v,
                 "stochastic": stochastic,
                 "best": rel(_save(p["best"], assets / f"{plots.asset_name(m)}_best.png")),
                 "worst": rel(_save(p["worst"], assets / f"{plots.asset_name(m)}_worst.png"))
                 if worst_run != best_run else None}
        view.methods.append(entry)
    vmax = max((float(np.percentile(a, 99.5)) for a in maps.values()), default=0.0)
    for entry in view.methods:
        a = maps.get(entry["method"])
        if a is not None:
            png = plots.save_map_png(a, vmax, assets / f"{plots.asset_name(entry['method'])}_lstd.png")
            rep.files.append(png)
            entry["lstd_map"] = rel(png)
            entry["lstd_value"] = float(a.mean())
            entry["lstd_vmax"] = vmax
    shape = next(iter(panels.values()))["best"].shape[:2] if panels else None
    if panels and shape is not None:
        box = plots.zoom_box(list(maps.values()), shape)
        fig = plots.plot_visual(panels, dataset, image, box, ref,
                                ranking[0] if ranking else "run", plots_dir)
        rep.plots.setdefault(dataset, []).extend(fig)
        view.links += [(f"best/worst runs with zoom ({f.suffix[1:].upper()})", rel(f)) for f in fig]
    if maps:
        fig = plots.plot_lstd_maps(maps, dataset, image, plots_dir)
        rep.plots.setdefault(dataset, []).extend(fig)
        view.links += [(f"L-STD maps ({f.suffix[1:].upper()})", rel(f)) for f in fig]
    if values is not None:
        view.metrics, view.scores = _score_cells(values, image, methods)
    if spread:
        view.figures.append(rel(spread[0]))
        view.links += [(f"spread of runs ({f.suffix[1:].upper()})", rel(f)) for f in spread[1:]]
    if all_runs:

        files, why = plot_all_runs(rep.df, dataset, methods, image, ref, plots_dir)
        rep.notes += why
        rep.plots.setdefault(dataset, []).extend(files)
        if files:
            view.figures.append(rel(files[0]))
            view.links += [(f"all runs ({f.suffix[1:].upper()})", rel(f)) for f in files[1:]]
    return view


def _check_images(chosen: list[str] | None, ids_of: Mapping[str, list[str]], key: str) -> None:
    """Raise UserError naming every id of ``key=`` that is in none of the data sets, with the valid ids.

    Checked before anything is written, so a typo never yields a report that silently lacks an image.
    """

    if not chosen:
        return
    known = {i for ids in ids_of.values() for i in ids}
    unknown = [i for i in chosen if i not in known]
    if not unknown:
        return
    listing = "; ".join(f"{ds}: {', '.join(ids[:20])}{f' ... ({len(ids)} in all)' if len(ids) > 20 else ''}"
                        for ds, ids in ids_of.items())
    raise UserError(f"{key}={','.join(chosen)}: no image {', '.join(map(repr, unknown))} in the chosen results "
                    f"(valid ids, from scores.csv/lstd.csv of each data set: {listing or 'none'}); "
                    f"fix the id or leave {key}= out")


def _check_out(out: Path) -> None:
    """Create the report folder, or raise ValueError pointing to ``out=`` when it cannot be written
    (a results folder on a read-only share is still reportable, into another folder)."""

    try:
        check_writable(out)
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, f"{out} is not writable")
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise ValueError(f"cannot write the report into {out} ({reason}): write it elsewhere with "
                         f"out=<dir>, e.g. `python -m benchmark report <results> out=/tmp/report`") from err


def build_report(root: str | Path, datasets: str | Sequence[str] | None = None,
                 methods: str | Sequence[str] | None = None, out: str | Path | None = None,
                 images: str | Sequence[str] | None = None, max_images: int = DEFAULT_MAX_IMAGES,
                 plots: bool = True, html: bool = True, stats: StatsConfig | None = None,
                 runs_plot: bool = True, names: Mapping[str, str] | None = None,
                 all_runs: str | Sequence[str] | None = None) -> Report:
    """Write table.tex/.md/.csv, results.csv (the tidy frame), timing tables, plots and index.html.

    ``out`` defaults to ``<root>/report``. ``images`` picks the images of the per-image
    figures and of the HTML gallery (default: the first ``max_images`` ids of each data set).
    ``stats``: intervals and best-vs-second tests (default :class:`StatsConfig()`; ``enabled=False``
    gives the paper's plain marking). ``runs_plot``: the "how many runs are enough" figure.
    ``names``: display names of methods, data sets and metrics ({key: display}); their order
    orders methods and data sets unless ``methods``/``datasets`` are given (benchmark.report.names).
    ``all_runs``: image ids whose all-runs strip is drawn (every run's crop beside LR and HR,
    :mod:`benchmark.report.allruns`); they join the per-image views.

    Raises :class:`benchmark.errors.UserError` (before anything is written) when an id of
    ``images`` or ``all_runs`` is in none of the data sets, naming it and the valid ids.
    """

    with names_mod.metric_labels(names or {}):
        return _build_report(root, datasets, methods, out, images, max_images, plots, html, stats, runs_plot,
                             dict(names or {}), all_runs)


def _build_report(root, datasets, methods, out, images, max_images, plots, html, stats, runs_plot,
                  names: dict[str, str], all_runs=None) -> Report:

    root = Path(root)

    df = collect(root, datasets, methods)
    if names:
        if not df.attrs.get("method_order"):
            df.attrs["method_order"] = names_mod.ordered(method_order(df), names)
        if not df.attrs.get("dataset_order"):
            df.attrs["dataset_order"] = names_mod.ordered(dataset_order(df), names)
        df = names_mod.apply(df, names)
    ds_order, m_order = dataset_order(df), method_order(df)
    methods_of = {ds: [m for m in m_order if not df[(df["dataset"] == ds) & (df["method"] == m)].empty]
                  for ds in ds_order}
    chosen = _split(images)
    strips = _split(all_runs) or []
    # image ids (from scores.csv/lstd.csv) only when something per image is asked for
    ids_of = {ds: _image_ids(df, ds, methods_of[ds]) for ds in ds_order} if plots or chosen or strips else {}
    _check_images(chosen, ids_of, "images")
    _check_images(strips, ids_of, "all_runs")
    out = Path(out) if out is not None else (root if root.is_dir() else root.parent) / "report"
    _check_out(out)
    stats = StatsConfig() if stats is None else stats

    significance.clear_cache()  # files may have changed since an earlier report in this process
    table = tables.build(df, ds_order, m_order, stats)
    timing = tables.build_timing(df, ds_order, m_order)
    rep = Report(out, df, table, timing)
    rep.notes += [f"best/second not tested for significance: {u}" for u in table.untested]
    _write(out / "table.tex", tables.to_latex(table), rep.files)
    _write(out / "table.md", tables.to_markdown(table), rep.files)
    _write(out / "table.csv", tables.to_csv(table), rep.files)
    tidy = df.drop(columns=["protocol"]).to_csv(index=False, lineterminator="\n")
    _write(out / "results.csv", tidy, rep.files)
    if timing is not None:
        _write(out / "timing.tex", tables.timing_latex(timing), rep.files)
        _write(out / "timing.md", tables.timing_markdown(timing), rep.files)
    if plots:
        plots_dir = out / "plots"
        for ds in ds_order:
            ms = methods_of[ds]
            rep.plots.setdefault(ds, [])
            rep.plots[ds] += plots_mod.plot_gstd(df, ds, ms, plots_dir)
            rep.plots[ds] += plots_mod.plot_scatter(df, ds, ms, plots_dir)

            rep.plots[ds] += plot_quality_stability(df, ds, ms, plots_dir)  # mean vs G-STD, one point per method
            if runs_plot:

                files, why = plot_runs_needed(df, ds, ms, plots_dir, seed=stats.seed)
                rep.plots[ds] += files
                rep.notes += why
            ids = ids_of[ds]
            if chosen is not None:
                pick = [i for i in chosen if i in ids]  # every chosen id is in some data set (checked above)
            else:
                pick = ids[:max_images]
                if len(ids) > len(pick):
                    rep.notes.append(f"{ds}: per-image views show {len(pick)} of {len(ids)} images; "
                                     f"choose with images=a,b or max_images=N")
            pick += [i for i in strips if i in ids and i not in pick]  # all_runs= images get their view too
            if not pick:
                continue
            samples, why = _dataset_samples(df, ds)
            if why:
                rep.notes.append(why)

            values = spread.run_values(df, ds, ms, pick)
            spread_figs, spread_csv = spread.plot_spread(df, ds, ms, pick, plots_dir)
            rep.plots[ds] += [f for image in pick for f in spread_figs.get(image, [])] + spread_csv
            for image in pick:
                rep.images.append(_per_image(rep, ds, ms, image, samples, plots_dir, values,
                                             spread_figs.get(image, ()), image in strips))
    for paths in rep.plots.values():
        rep.files += paths
    if html:

        rep.files.append(write_html(rep))
    _readable(out)
    return rep


def _readable(out: Path) -> None:
    """Atomic writes create files readable by the owner only; a report is meant to be shared or served."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    for path in out.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~mask)
