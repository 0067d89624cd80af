"""Gather results into one tidy DataFrame: the single source of every table, plot and check.

One row per (dataset, method, quantity). A quantity is a metric of ``results.json`` or the
pseudo-metric ``lstd`` (kind ``pixel``, lower is better). Run-level facts (runs, seed,
crop_border, stochastic, timing, the data set's content hash, the metric protocol) are
repeated on each row of their (dataset, method), so a filter on rows never loses them.
``mean_low``/``mean_high`` and ``gstd_low``/``gstd_high`` are the stored confidence intervals
(benchmark/stats.py; NaN when results.json has none, e.g. ``stats.enabled=false``), computed at
confidence level ``ci_level``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.results import Result
from benchmark.stats import Interval
from benchmark.metrics import METRICS

LSTD = "lstd"  # name of the L-STD pseudo-metric in the tidy frame

COLUMNS = [
    "dataset", "method", "metric", "kind", "higher_is_better", "status", "mean", "gstd", "std_over_runs",
    "mean_low", "mean_high", "gstd_low", "gstd_high", "ci_level",
    "metric_images", "note", "runs", "seed", "crop_border", "stochastic", "num_images", "seconds_per_image_run",
    "parameters", "content_hash", "protocol", "path", "num_values", "excluded", "num_capped", "cap",
]

# Option keys that say where a file lives, not how a metric is computed: two runs that read
# the same NIQE parameters from different folders follow the same protocol.
_LOCATION_KEYS = ("optional", "_module_")
_LOCATION_SUFFIXES = ("path", "dir", "root", "cache")


def find_results(root: str | os.PathLike) -> list[Path]:
    """Every ``results.json`` below ``root`` (or ``root`` itself when it is one), sorted.

    ``samples/`` folders (thousands of PNGs) and hidden folders (Hydra's ``.hydra``) are pruned.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: give a results.json or a folder that holds results "
                                f"(<output_dir> of a run, e.g. reports)")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "samples" and not d.startswith("."))
        if "results.json" in filenames:
            found.append(Path(dirpath) / "results.json")
    return sorted(found)


def _with_defaults(name: str, opts: dict[str, Any]) -> dict[str, Any]:
    """The options as the metric applies them: its schema's defaults filled in, so a result
    written before a config file declared its defaults (``psnr: {}``) has the same protocol as
    one that names them. Options the schema refuses are kept as they are (and differ)."""

    if name not in METRICS:
        return opts
    spec = METRICS.get(name)
    try:
        full = spec.parse({k: v for k, v in opts.items() if k != "optional"}).as_dict()
    except ValueError:
        return opts
    return {**full, **{k: v for k, v in opts.items() if k == "optional"}}


def protocol_of(metric_options: dict[str, Any] | None) -> str:
    """Canonical JSON of the metric options that decide how values are computed."""
    clean: dict[str, Any] = {}
    for name, opts in sorted((metric_options or {}).items()):
        opts = _with_defaults(str(name), dict(opts or {}))
        clean[name] = {k: v for k, v in sorted(opts.items())
                       if k not in _LOCATION_KEYS and not k.endswith(_LOCATION_SUFFIXES)}
    return json.dumps(clean, sort_keys=True)


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def _ci(ci: Interval | None) -> dict[str, float]:
    """A stored interval as the frame's ``_low``/``_high`` values (NaN when there is none)."""
    if ci is None:
        return {"low": math.nan, "high": math.nan}
    return {"low": ci.low, "high": ci.high}


def rows_of(result: Result, path: str | None = None, content_hash: str | None = None) -> list[dict]:
    """Tidy rows of one result (a results.json, or a baseline entry, read by :meth:`Result.from_json`)."""
    options = result.metric_options
    protocol = result.protocol if options is None else protocol_of(options)
    run = {
        "dataset": result.dataset, "method": result.method,
        "runs": result.runs, "seed": result.seed, "crop_border": result.crop_border,
        "stochastic": result.stochastic, "num_images": result.num_images,
        "seconds_per_image_run": _num(result.timing_value("seconds_per_image_run")),
        "parameters": _num(result.timing_value("parameters")),
        "content_hash": content_hash or result.content_hash,
        "protocol": protocol, "path": path,
        # confidence level the stored intervals were computed at (None: no intervals)
        "ci_level": (result.stats or {}).get("level"),
    }
    rows = []
    for name, m in result.metrics.items():
        ok = m.mean is not None
        rows.append({**run, "metric": str(name), "kind": m.kind,
                     "higher_is_better": bool(m.higher_is_better), "status": "ok" if ok else "empty",
                     "mean": _num(m.mean), "gstd": _num(m.gstd),
                     "std_over_runs": _num(m.std_over_runs), "metric_images": m.num_images,
                     **{f"mean_{end}": v for end, v in _ci(m.mean_ci).items()},
                     **{f"gstd_{end}": v for end, v in _ci(m.gstd_ci).items()},
                     "note": None if ok else "no image had the inputs this metric needs",
                     # values averaged and left out (metric undefined on some (image, run)); values at a cap
                     "num_values": m.num_values, "excluded": m.num_excluded, "num_capped": m.num_capped,
                     "cap": m.cap})
    for name, why in result.skipped.items():
        rows.append({**run, "metric": str(name), "kind": None, "higher_is_better": None, "status": "skipped",
                     "mean": math.nan, "gstd": math.nan, "std_over_runs": math.nan, "metric_images": None,
                     "note": str(why)})
    rows.append({**run, "metric": LSTD, "kind": "pixel", "higher_is_better": False,
                 "status": "ok" if result.lstd is not None else "none", "mean": _num(result.lstd),
                 "gstd": math.nan, "std_over_runs": math.nan, "metric_images": result.num_images,
                 **{f"mean_{end}": v for end, v in _ci(result.lstd_ci).items()},
                 "note": None})
    return rows


def frame(rows: Iterable[dict]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=COLUMNS)
    for col in ("mean", "gstd", "std_over_runs", "mean_low", "mean_high", "gstd_low", "gstd_high",
                "seconds_per_image_run", "parameters"):
        df[col] = df[col].astype("float64")
    return df


def _split(names: str | Sequence[str] | None) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        names = [n for n in (s.strip() for s in names.strip("[]").split(",")) if n]
    return list(names) or None


def _read(path: Path) -> tuple[Result, str | None]:
    """A results.json and the data set content hash of the manifest.json beside it (None if absent)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}; rerun the benchmark that wrote it") from None
    res = Result.from_json(data, str(path))
    chash = None
    manifest = Path(path).with_name("manifest.json")
    if manifest.is_file():
        try:
            chash = json.loads(manifest.read_text()).get("generation", {}).get("dataset", {}).get("content_hash")
        except (OSError, json.JSONDecodeError, AttributeError):
            chash = None
    return res, chash


def load(paths: Sequence[Path], datasets: str | Sequence[str] | None = None,
         methods: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Tidy frame of the given results.json files, optionally restricted to some data sets/methods.

    The order of ``datasets``/``methods`` given here is the order of rows/columns in the tables
    (kept in ``df.attrs``). An unknown name lists the names that were found.
    """
    want_d, want_m = _split(datasets), _split(methods)
    read = [(Path(p), *_read(Path(p))) for p in paths]
    for kind, key, want in (("data set", "dataset", want_d), ("method", "method", want_m)):
        have = sorted({str(getattr(r, key)) for _, r, _ in read})
        unknown = [w for w in (want or []) if w not in have]
        if unknown:
            raise ValueError(f"no results for {kind} {', '.join(map(repr, unknown))}; found: {', '.join(have)}")
    rows: list[dict] = []
    seen: dict[tuple[str, str], Path] = {}
    for p, res, chash in read:
        key = (res.dataset, res.method)
        if (want_d and key[0] not in want_d) or (want_m and key[1] not in want_m):
            continue
        if key in seen:
            raise ValueError(f"results for dataset {key[0]!r} and method {key[1]!r} appear twice: {seen[key]} and "
                             f"{p}; point at a narrower folder or choose with --datasets ... --methods ...")
        seen[key] = p
        rows += rows_of(res, str(p.parent), chash)
    df = frame(rows)
    df.attrs["dataset_order"] = want_d
    df.attrs["method_order"] = want_m
    return df


def collect(root: str | os.PathLike, datasets: str | Sequence[str] | None = None,
            methods: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Tidy frame of every results.json below ``root`` (see :func:`load` for the filters)."""
    paths = find_results(root)
    if not paths:
        raise FileNotFoundError(f"no results.json below {root}: run the benchmark first "
                                f"(python run_bench.py output_dir={root})")
    return load(paths, datasets, methods)


def dataset_order(df: pd.DataFrame) -> list[str]:
    """Data sets in the order asked for (--datasets), else sorted."""
    have = set(df["dataset"])
    return [d for d in (df.attrs.get("dataset_order") or sorted(have)) if d in have]


def method_order(df: pd.DataFrame) -> list[str]:
    """Methods in the order asked for (methods=...), else deterministic references first, then by name."""
    have = set(df["method"])
    if df.attrs.get("method_order"):
        return [m for m in df.attrs["method_order"] if m in have]
    stoch = df.groupby("method")["stochastic"].first()
    return sorted(stoch.index, key=lambda m: (bool(stoch[m]), m))
