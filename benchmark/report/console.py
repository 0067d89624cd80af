"""The plain-text table printed at the end of a run (and of ``python -m benchmark merge``)."""

from __future__ import annotations

from benchmark.results import Result


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_table(result: Result) -> str:
    """Plain-text table: one row per metric (mean, G-STD), then L-STD and skipped metrics."""
    runs, seed = result.runs, result.seed
    seeds = f"seeds {seed}..{seed + runs - 1}" if seed is not None and runs > 1 else (
        f"seed {seed}" if seed is not None else "precomputed")
    head = (f"srbench: {result.method} on {result.dataset} "
            f"({result.num_images} images x {runs} run(s), {seeds}, crop_border {result.crop_border})")
    lines = [head, f"{'metric':<10} {'':>2} {'mean':>12} {'G-STD':>10}"]
    for name, m in result.metrics.items():
        arrow = "↑" if m.higher_is_better else "↓"
        extra = f"  (std over runs {_fmt(m.std_over_runs)})" if m.is_set else ""
        lines.append(f"{name:<10} {arrow:>2} {_fmt(m.mean):>12} {_fmt(m.gstd):>10}{extra}")
    lines.append(f"{'L-STD':<10} {'↓':>2} {_fmt(result.lstd):>12}")
    for name, why in result.skipped.items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)
