"""Is the best of a table row really better than the second? (issue 18)

The paper marks the best value of each row red and the second blue. Here the best is tested
against the second on the per-image data stored beside each results.json (``scores.csv``,
``lstd.csv``) with :mod:`benchmark.stats`:

* metric means, G-STDs and L-STD: paired bootstrap over the images (the two methods ran on
  the same images), :func:`benchmark.stats.compare_paired`;
* set metrics (FID): the per-run values of the two methods, unpaired
  (:func:`benchmark.stats.compare_independent`).

A row is *separated* when every best value beats every second-best value at the level asked
for; *tied* when one of them does not; *untested* when the per-image data is missing (a
baseline entry, a moved folder, different images): then the paper's plain marking stays and
the reason is kept for a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from benchmark import stats
from benchmark.report.collect import LSTD
from benchmark.store import read_csv

SEPARATED, TIED, UNTESTED = "separated", "tied", "untested"


@dataclass
class Verdict:
    """The outcome of best-vs-second for one part (mean or G-STD) of one table row."""

    status: str  # separated | tied | untested
    comparisons: list[tuple[str, str, stats.Comparison]] = field(default_factory=list)  # (better, other, result)
    why: str = ""


@lru_cache(maxsize=64)
def _scores(folder: str) -> pd.DataFrame | None:
    path = Path(folder) / "scores.csv"
    if not path.is_file():
        return None
    return read_csv(path)


@lru_cache(maxsize=64)
def _lstd(folder: str) -> pd.DataFrame | None:
    path = Path(folder) / "lstd.csv"
    if not path.is_file():
        return None
    return read_csv(path)


def clear_cache() -> None:
    """Forget the per-folder files read so far (a report run after the files changed)."""
    _scores.cache_clear()
    _lstd.cache_clear()


def observations(folder: str | None, metric: str, kind: str | None, part: str) -> pd.Series | np.ndarray | None:
    """What a comparison resamples for one method: per-image Series (paired) or per-run array (set metric).

    ``part`` is ``"mean"`` or ``"gstd"``; the L-STD row is ``metric == "lstd"``, part ``"mean"``.
    None when the files are not there.
    """
    if folder is None or (isinstance(folder, float) and np.isnan(folder)):
        return None
    if metric == LSTD:
        df = _lstd(str(folder))
        if df is None:
            return None
        s = stats.per_image_lstd(df)
        return s if len(s) else None
    sc = _scores(str(folder))
    if sc is None:
        return None
    if kind == "set":
        return stats.run_values(sc, metric)
    s = stats.per_image_means(sc, metric) if part == "mean" else stats.per_image_stds(sc, metric)
    return s if len(s) else None


def best_vs_second(df: pd.DataFrame, dataset: str, metric: str, part: str, best: Sequence[str],
                   second: Sequence[str], higher_is_better: bool, cfg: stats.StatsConfig) -> Verdict:
    """Test every method of ``best`` against every method of ``second`` (one row part of one data set)."""
    if not best or not second:
        return Verdict(UNTESTED, why="fewer than two distinct values")
    sub = df[(df["dataset"] == dataset) & (df["metric"] == metric)]
    info = {r.method: (r.path, r.kind) for r in sub.itertuples()}
    verdict = Verdict(SEPARATED)
    for b in best:
        for s in second:
            ob = observations(info.get(b, (None, None))[0], metric, info.get(b, (None, None))[1], part)
            os_ = observations(info.get(s, (None, None))[0], metric, info.get(s, (None, None))[1], part)
            if ob is None or os_ is None:
                missing = b if ob is None else s
                return Verdict(UNTESTED, why=f"no per-image scores of {missing} on {dataset} (scores.csv/lstd.csv)")
            key = f"{dataset}.{metric}.{part}"
            try:
                if isinstance(ob, pd.Series) and isinstance(os_, pd.Series):
                    c = stats.compare_paired(ob, os_, higher_is_better, cfg, key)
                else:
                    c = stats.compare_independent(np.asarray(ob), np.asarray(os_), higher_is_better, cfg, key)
            except ValueError as err:
                return Verdict(UNTESTED, why=str(err))
            if c.interval is None:
                return Verdict(UNTESTED, why=f"{b} vs {s}: {c.how}")
            verdict.comparisons.append((b, s, c))
            if not c.separated:
                verdict.status = TIED
    return verdict
