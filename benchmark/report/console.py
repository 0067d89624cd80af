"""The plain-text table printed at the end of a run (and of ``python -m benchmark merge``)."""

from __future__ import annotations

from benchmark.results import Result
from benchmark.stats import Interval


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


MAX_EXCLUDED_LINES = 20  # the rest are in results.json


def _flags(m, num_images: int | None = None, runs: int | None = None) -> str:
    """Notes of one metric row: fewer images (some lack what the metric needs, e.g. an HR), averaged
    over fewer values, values at the metric's cap."""
    notes = []
    if not m.is_set and m.num_images is not None and m.num_values is not None and num_images and runs:
        lacking = num_images - (m.num_values + m.num_excluded) // runs  # images with neither a value nor an exclusion
        if lacking > 0:
            notes.append(f"[over {num_images - lacking} of {num_images} images: {lacking} without the inputs it "
                         f"needs (an HR for a full-reference metric)]")
    if m.num_excluded:
        total = (m.num_values or 0) + m.num_excluded
        notes.append(f"[averaged over {m.num_values} of {total} values: {m.num_excluded} excluded]")
    if m.num_capped:
        notes.append(f"[{m.num_capped} value(s) at the cap {m.cap:g}: identical images]")
    return ("  " + " ".join(notes)) if notes else ""


def _ci(ci: Interval | None, digits: int = 4) -> str:
    return "" if ci is None else f"[{ci.low:.{digits}f}, {ci.high:.{digits}f}]"


def format_table(result: Result) -> str:
    """Plain-text table: one row per metric (mean, G-STD), then L-STD, skipped metrics and the
    excluded values (metric undefined or failing on an (image, run), with the reason).

    With confidence intervals (benchmark/stats.py) each value is followed by its interval.
    """
    runs, seed = result.runs, result.seed
    seeds = f"seeds {seed}..{seed + runs - 1}" if seed is not None and runs > 1 else (
        f"seed {seed}" if seed is not None else "precomputed")
    head = (f"srbench: {result.method} on {result.dataset} "
            f"({result.num_images} images x {runs} run(s), {seeds}, crop_border {result.crop_border})")
    ci = result.has_intervals
    level = f"{float((result.stats or {}).get('level', 0.95)) * 100:g}% CI"
    lines = [head, f"{'metric':<10} {'':>2} {'mean':>12} {level:<22} {'G-STD':>10} {level}" if ci else
             f"{'metric':<10} {'':>2} {'mean':>12} {'G-STD':>10}"]
    for name, m in result.metrics.items():
        arrow = "↑" if m.higher_is_better else "↓"
        extra = f"  (std over runs {_fmt(m.std_over_runs)})" if m.is_set else ""
        if ci:
            row = f"{name:<10} {arrow:>2} {_fmt(m.mean):>12} {_ci(m.mean_ci):<22} {_fmt(m.gstd):>10} {_ci(m.gstd_ci)}"
            lines.append(row.rstrip() + extra + _flags(m, result.num_images, runs))
        else:
            lines.append(f"{name:<10} {arrow:>2} {_fmt(m.mean):>12} {_fmt(m.gstd):>10}{extra}"
                         f"{_flags(m, result.num_images, runs)}")
    lines.append(f"{'L-STD':<10} {'↓':>2} {_fmt(result.lstd):>12} {_ci(result.lstd_ci)}".rstrip() if ci else
                 f"{'L-STD':<10} {'↓':>2} {_fmt(result.lstd):>12}")
    for name, why in result.skipped.items():
        lines.append(f"skipped {name}: {why}")
    excluded = [(name, e) for name, m in result.metrics.items() for e in (m.excluded or [])]
    for name, e in excluded[:MAX_EXCLUDED_LINES]:
        where = f"run {e['run']}" if e["image"] == "*" else f"image {e['image']!r} run {e['run']}"
        lines.append(f"excluded {where}: {e['reason']}")
    if len(excluded) > MAX_EXCLUDED_LINES:
        lines.append(f"... and {len(excluded) - MAX_EXCLUDED_LINES} more excluded value(s) in results.json")
    return "\n".join(lines)
