"""The static HTML report: one index.html with relative links to files beside it (no server)."""

from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, select_autoescape

from benchmark.report import tables
from benchmark.store import atomic_write_bytes

if TYPE_CHECKING:
    from benchmark.report import Report

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _css(part: tables.Part | None) -> str:
    return {1: "best", 2: "second"}.get((part.rank or 0) if part else 0, "")


def _cell(v: object) -> object:
    """Run facts as printed: integers without ``.0`` (pandas stores columns with a None as float), None as ``-``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def render(rep: Report) -> str:
    """index.html of a report as text."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["css"] = _css
    rel = lambda p: Path(p).relative_to(rep.out).as_posix()
    plots = {ds: [rel(p) for p in paths if p.suffix == ".png" and p.name.startswith(("gstd_", "scatter_", "runs_", "quality_stability_"))]
             for ds, paths in rep.plots.items()}
    pdfs = [rel(p) for paths in rep.plots.values() for p in paths if p.suffix == ".pdf"]
    downloads = [rel(p) for p in rep.files if p.suffix in (".tex", ".md", ".csv") and p.parent == rep.out]
    data_files = [rel(p) for paths in rep.plots.values() for p in paths if p.suffix == ".csv"]
    runs = rep.df.drop_duplicates(["dataset", "method"])[["dataset", "method", "runs", "seed", "crop_border",
                                                          "stochastic", "num_images", "path"]]
    records = [{k: _cell(v) for k, v in r.items()} for r in runs.to_dict("records")]
    # folders below their common parent, which is named once in the header (keeps the table narrow)
    paths = [str(r["path"]) for r in records if r["path"] not in (None, "-")]
    runs_root = os.path.commonpath(paths) if len(paths) > 1 else None
    if runs_root:
        for r in records:
            if r["path"] not in (None, "-"):
                r["path"] = os.path.relpath(str(r["path"]), runs_root)
    return env.get_template("report.html.j2").render(
        table=rep.table, timing=rep.timing, plots=plots, pdfs=pdfs, downloads=downloads, data_files=data_files, images=rep.images,
        notes=rep.notes, runs=records, runs_root=runs_root,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def write_html(rep: Report) -> Path:

    path = rep.out / "index.html"
    atomic_write_bytes(path, render(rep).encode())
    return path
