"""The plain-text table printed at the end of a run (and of ``python -m benchmark merge``)."""

from __future__ import annotations

from typing import Any


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_table(results: dict[str, Any]) -> str:
    """Plain-text table: one row per metric (mean, G-STD), then L-STD and skipped metrics."""
    runs = results["runs"]
    seed = results.get("seed")
    seeds = f"seeds {seed}..{seed + runs - 1}" if seed is not None and runs > 1 else (
        f"seed {seed}" if seed is not None else "precomputed")
    head = (f"srbench: {results['method']} on {results['dataset']} "
            f"({results['num_images']} images x {runs} run(s), {seeds}, crop_border {results['crop_border']})")
    lines = [head, f"{'metric':<10} {'':>2} {'mean':>12} {'G-STD':>10}"]
    for name, m in results["metrics"].items():
        arrow = "↑" if m["higher_is_better"] else "↓"
        spread = m.get("gstd")
        extra = ""
        if m.get("kind") == "set":
            extra = f"  (std over runs {_fmt(m.get('std_over_runs'))})"
        lines.append(f"{name:<10} {arrow:>2} {_fmt(m['mean']):>12} {_fmt(spread):>10}{extra}")
    lines.append(f"{'L-STD':<10} {'↓':>2} {_fmt(results.get('lstd')):>12}")
    for name, why in (results.get("skipped") or {}).items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)
