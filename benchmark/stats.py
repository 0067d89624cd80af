"""Confidence intervals and paired comparisons from the tidy scores (issue 18).

Pure functions over the tidy scores frame (``image, run, seed, metric, value``; set-level
metrics such as FID have ``image == "*"``) and the per-image L-STD frame (``image, lstd``).

**Intervals.** Every reported number gets a two-sided confidence interval at ``level``
(default 95 %) from :func:`scipy.stats.bootstrap` with ``n_resamples`` resamples (default
2,000) and a recorded seed. The observations resampled are:

======================  =====================================================  ==================
quantity                 observations (one per ...)                              resampled over
======================  =====================================================  ==================
metric mean              per-image mean over the N runs of the image             images
G-STD of a metric        per-image population std (ddof=0) over the N runs      images
L-STD                    per-image L-STD                                         images
FID (set metric) mean    FID of each run (over all images)                        runs
======================  =====================================================  ==================

The statistic is the mean of the observations, so its point estimate is exactly the number
in the table. The image is the sampling unit: an image's N runs stay together when the
images are resampled, so the interval covers both sources of variation (which images were
drawn, and which seeds; the seed noise is inside each per-image value). Resampling the runs
a second time inside each drawn image would count the run-to-run variance twice (Davison &
Hinkley 1997, *Bootstrap Methods and their Application*, section 3.8, "strategy 2") and give
intervals that are too wide; ``tests/test_stats.py`` checks the coverage.

The G-STD interval is an interval for the G-STD *at this N* (the expected mean of per-image
population stds over N runs on images like these); the population std over few runs is
biased low, which :func:`gstd_by_runs` makes visible.

The set-metric (FID) interval resamples runs: FID is one number per run over all images,
so it reflects seed variation only (recomputing FID on resampled images would need the
per-image Inception features).

**Method.** BCa (bias-corrected and accelerated; Efron 1987) where it is defined, the
percentile interval of the same bootstrap distribution otherwise (BCa is undefined when the
jackknife values are all equal or every bootstrap value lies on one side of the estimate;
scipy then returns NaN). Each interval records the method used (``"BCa"``,
``"percentile"``), or ``"exact"`` when every observation is the same (no variation: the
interval is the point), and the number of observations ``n``. Fewer than 2 observations give
no interval (None).

**Seeds.** Each quantity draws from ``numpy.random.default_rng([seed, crc32(key)])``, where
``key`` names the quantity (``"psnr.mean"``, ``"lstd"``), so an interval does not depend on
which other metrics ran or in which order, and a merged sharded run equals an unsharded one.

**Paired comparisons.** Two methods on the same images: per-image differences of the same
observations, bootstrapped over images (:func:`compare_paired`); the better method is
*separated* from the other when the interval of the difference excludes 0. FID rows compare
the runs of the two methods (:func:`compare_independent`; unpaired: run r of two methods has
nothing in common but its seed).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as _st

from benchmark.stability import crop

SET_IMAGE = "*"  # image column of set-level metric rows in scores.csv (benchmark.runner.SET_IMAGE)
DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
METHOD_DOC = ("bootstrap over images (scipy.stats.bootstrap; BCa where defined, else percentile): means of per-image "
              "means over runs, of per-image population stds (G-STD) and of per-image L-STD; set metrics (FID) "
              "over runs")


@dataclass(frozen=True)
class StatsConfig:
    """The ``stats.*`` config keys (see :class:`benchmark.config.StatsSchema`)."""

    enabled: bool = True
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    level: float = DEFAULT_LEVEL

    def __post_init__(self) -> None:
        if not (isinstance(self.resamples, int) and self.resamples >= 100):
            raise ValueError(f"stats.resamples={self.resamples}: expected an integer >= 100 (default "
                             f"{DEFAULT_RESAMPLES}; fewer resamples make the interval ends noisy)")
        if not (0.5 <= float(self.level) < 1.0):
            raise ValueError(f"stats.level={self.level}: expected a confidence level in [0.5, 1), e.g. 0.95")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"stats.seed={self.seed}: expected an integer >= 0")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> "StatsConfig":
        """From a config node or dict with any subset of the keys (missing keys: defaults)."""
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - {"enabled", "resamples", "seed", "level"})
        if unknown:
            raise ValueError(f"unknown stats key(s) {', '.join(unknown)}; allowed: enabled, resamples, seed, level")
        kw: dict[str, Any] = {}
        if "enabled" in cfg:
            kw["enabled"] = bool(cfg["enabled"])
        if "resamples" in cfg:
            kw["resamples"] = int(cfg["resamples"])
        if "seed" in cfg:
            kw["seed"] = int(cfg["seed"])
        if "level" in cfg:
            kw["level"] = float(cfg["level"])
        return cls(**kw)

    def record(self) -> dict[str, Any]:
        """What results.json stores under ``"stats"``: enough to recompute every interval."""
        return {"resamples": self.resamples, "seed": self.seed, "level": self.level, "method": METHOD_DOC}


@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[low, high]`` of one reported number.

    ``method`` is ``"BCa"``, ``"percentile"`` or ``"exact"`` (no variation: low == high ==
    the value); ``n`` is the number of observations that were resampled (images, or runs for
    set metrics). A regression baseline keeps only the ends (``method`` "", ``n`` None).
    """

    low: float
    high: float
    method: str = ""
    n: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.method:
            out["method"] = self.method
        if self.n is not None:
            out["n"] = self.n
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> "Interval | None":
        """From a results.json ``*_ci`` value (None stays None); ValueError names a malformed one."""
        if d is None:
            return None
        try:
            return cls(float(d["low"]), float(d["high"]), str(d.get("method", "")),
                       None if d.get("n") is None else int(d["n"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"malformed confidence interval {d!r}: expected {{'low': x, 'high': y, ...}}") from None

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def rng_for(seed: int, key: str) -> np.random.Generator:
    """The generator of one quantity: independent of the other quantities and of their order."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode())])


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _diff_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _run_bootstrap(data: tuple[np.ndarray, ...], statistic: Any, estimate: float, cfg: StatsConfig,
                   key: str, n: int) -> Interval:
    """scipy.stats.bootstrap with BCa, falling back to the percentile interval of the same resamples."""
    with warnings.catch_warnings():
        # BCa's NaN for degenerate bootstrap distributions arrives with a warning; we fall back below
        warnings.simplefilter("ignore", category=_st.DegenerateDataWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        res = _st.bootstrap(data, statistic, n_resamples=cfg.resamples, vectorized=True, method="BCa",
                            confidence_level=cfg.level, rng=rng_for(cfg.seed, key))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        method = "BCa"
        if not (math.isfinite(lo) and math.isfinite(hi)):
            # n_resamples=0 with bootstrap_result reuses the distribution already drawn
            res = _st.bootstrap(data, statistic, n_resamples=0, vectorized=True, method="percentile",
                                confidence_level=cfg.level, bootstrap_result=res, rng=rng_for(cfg.seed, key))
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
            method = "percentile"
    # The point estimate must lie inside (it can fall a rounding error outside for BCa on tiny spreads).
    return Interval(min(lo, estimate), max(hi, estimate), method, n)


def mean_interval(values: Sequence[float] | np.ndarray, cfg: StatsConfig, key: str) -> Interval | None:
    """Interval of the mean of ``values`` (one observation each), bootstrap over the observations.

    None for fewer than 2 observations; ``"exact"`` when all are equal. NaN observations are
    an error (the caller decides what an observation is and must not drop any silently).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if np.isnan(x).any():
        raise ValueError(f"{key}: {int(np.isnan(x).sum())} of {x.size} observations are NaN; "
                         f"an interval needs every value (rescore the failed images)")
    if x.size < 2:
        return None
    est = float(x.mean())
    if np.all(x == x[0]):
        return Interval(est, est, "exact", int(x.size))
    return _run_bootstrap((x,), _mean, est, cfg, key, int(x.size))


# ----------------------------------------------------------------------------- observations


def run_matrix(scores: pd.DataFrame, metric: str) -> tuple[list[str], np.ndarray]:
    """Per-image values of one metric as (image ids sorted, array M x N of runs 0..N-1).

    Raises ValueError naming the images when they do not all have the same runs (for the runs
    plot, which needs every run of an image; see :func:`complete_run_matrix`).
    """
    df = scores[(scores["metric"] == metric) & (scores["image"] != SET_IMAGE)]
    if df.empty:
        return [], np.zeros((0, 0))
    dup = df.duplicated(["image", "run"])
    if dup.any():
        first = df[dup].iloc[0]
        raise ValueError(f"metric {metric}: image {first['image']!r} run {first['run']} appears more than once "
                         f"in the scores; rescore into a fresh output folder")
    wide = df.pivot(index="image", columns="run", values="value")
    wide = wide.sort_index().sort_index(axis=1)
    if wide.isna().to_numpy().any():
        bad = [str(i) for i in wide.index[wide.isna().any(axis=1)]]
        raise ValueError(f"metric {metric}: image(s) {', '.join(bad[:10])} lack a value for some run "
                         f"(runs {list(wide.columns)}); every image needs every run for G-STD and its interval")
    return [str(i) for i in wide.index], wide.to_numpy(dtype=np.float64)


def _values(scores: pd.DataFrame, metric: str, set_level: bool = False) -> pd.DataFrame:
    """Rows of one metric that hold a value (excluded values, NaN/inf, never enter a statistic)."""
    df = scores[(scores["metric"] == metric) & ((scores["image"] == SET_IMAGE) == set_level)]
    return df[np.isfinite(df["value"].to_numpy(dtype=np.float64))]


def per_image_means(scores: pd.DataFrame, metric: str) -> pd.Series:
    """Mean over runs of each image (index: image id, sorted): the observations of a metric mean.

    As :meth:`benchmark.results.Result.from_scores` reports it: an image with some runs excluded
    is the mean of its other runs, so the mean of these observations is the reported mean.
    """
    df = _values(scores, metric)
    return df.groupby("image")["value"].mean().sort_index().astype(np.float64)


def per_image_stds(scores: pd.DataFrame, metric: str) -> pd.Series:
    """Population std (ddof=0) over runs of each image with at least 2 runs: the observations of a G-STD.

    As :func:`benchmark.stability.gstd` counts them (an image left with one run has no spread).
    """
    g = _values(scores, metric).groupby("image")["value"]
    sizes = g.size()
    if sizes.empty:
        return pd.Series([], dtype=np.float64)
    # np.std per image, bit for bit what stability.gstd averages (pandas' own std rounds differently,
    # and BCa's bias correction counts resamples below the estimate, so the last bit can matter)
    stds = g.apply(lambda v: float(np.std(v.to_numpy(dtype=np.float64), ddof=0)))
    return stds[sizes >= 2].sort_index().astype(np.float64)


def run_values(scores: pd.DataFrame, metric: str) -> np.ndarray:
    """A set metric's value of each run (sorted by run): the observations of its mean over runs."""
    return _values(scores, metric, set_level=True).sort_values("run")["value"].to_numpy(dtype=np.float64)


def complete_run_matrix(scores: pd.DataFrame, metric: str) -> tuple[list[str], np.ndarray, list[str]]:
    """:func:`run_matrix` of the images that have a finite value for every run, and the images left out."""
    df = scores[(scores["metric"] == metric) & (scores["image"] != SET_IMAGE)]
    if df.empty:
        return [], np.zeros((0, 0)), []
    runs = sorted(set(df["run"]))
    ok = df[np.isfinite(df["value"].to_numpy(dtype=np.float64))]
    full = ok.groupby("image")["run"].nunique()
    keep = set(full[full == len(runs)].index)
    left = sorted(str(i) for i in set(df["image"]) - keep)
    ids, m = run_matrix(ok[ok["image"].isin(keep)], metric)
    return ids, m, left


def per_image_lstd(lstd_df: pd.DataFrame) -> pd.Series:
    """Per-image L-STD (index: image id, sorted); empty when undefined (one run)."""
    s = lstd_df.set_index(lstd_df["image"].astype(str))["lstd"]
    s = pd.to_numeric(s, errors="coerce")
    if s.isna().any():
        return pd.Series([], dtype=np.float64)
    return s.sort_index().astype(np.float64)


# ----------------------------------------------------------------------------- intervals of a result


def intervals(scores: pd.DataFrame, lstd_df: pd.DataFrame | None, kinds: Mapping[str, str],
              stochastic: bool, cfg: StatsConfig) -> dict[str, Any]:
    """Every interval of one (data set, method) result, in the shape results.json stores.

    ``kinds`` maps each metric to its kind (``"FR"``, ``"NR"``, ``"set"``). Returns
    ``{"metrics": {name: {"mean_ci": ..., "gstd_ci": ..., "std_over_runs"?}}, "lstd_ci": ...}``
    with each interval a dict of :meth:`Interval.to_json` or None (undefined: one run, one
    image, a deterministic method's G-STD and L-STD).
    """
    out: dict[str, Any] = {"metrics": {}, "lstd_ci": None}
    for name, kind in kinds.items():
        entry: dict[str, Any] = {"mean_ci": None, "gstd_ci": None}
        if kind == "set":
            ci = mean_interval(run_values(scores, name), cfg, f"{name}.mean")
            entry["mean_ci"] = ci.to_json() if ci else None
        else:
            ci = mean_interval(per_image_means(scores, name).to_numpy(), cfg, f"{name}.mean")
            entry["mean_ci"] = ci.to_json() if ci else None
            if stochastic:
                ci = mean_interval(per_image_stds(scores, name).to_numpy(), cfg, f"{name}.gstd")
                entry["gstd_ci"] = ci.to_json() if ci else None
        out["metrics"][name] = entry
    if stochastic and lstd_df is not None and len(lstd_df):
        per = per_image_lstd(lstd_df)
        ci = mean_interval(per.to_numpy(), cfg, "lstd") if len(per) else None
        out["lstd_ci"] = ci.to_json() if ci else None
    return out


# ----------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b`` for one quantity: difference ``a - b`` of the reported values and its interval.

    ``separated`` is True when the interval of the difference excludes 0 *in favour of a*
    (a is better in the quantity's direction), i.e. a beats b at the chosen level.
    """

    difference: float
    interval: Interval | None
    separated: bool
    how: str  # "paired over N images" / "runs (unpaired)" / why it could not be tested


def _verdict(diff: float, ci: Interval | None, higher_is_better: bool) -> bool:
    if ci is None:
        return False
    return ci.low > 0 if higher_is_better else ci.high < 0


def compare_paired(a: pd.Series, b: pd.Series, higher_is_better: bool, cfg: StatsConfig, key: str) -> Comparison:
    """Paired bootstrap over images: does ``a`` beat ``b``? ``a``/``b`` are per-image observations.

    The two methods must cover the same images (ValueError names the difference otherwise).
    The statistic is the mean of per-image differences, which equals the difference of the
    two reported values; identical inputs are never separated (the interval is exactly 0).
    """
    a, b = a.sort_index(), b.sort_index()
    if list(a.index) != list(b.index):
        only_a = sorted(set(a.index) - set(b.index))
        only_b = sorted(set(b.index) - set(a.index))
        raise ValueError(f"{key}: a paired comparison needs the same images; only in the first: "
                         f"{', '.join(map(str, only_a[:5])) or '-'}; only in the second: "
                         f"{', '.join(map(str, only_b[:5])) or '-'} (were both run on the same data set?)")
    d = a.to_numpy(dtype=np.float64) - b.to_numpy(dtype=np.float64)
    diff = float(d.mean()) if d.size else math.nan
    ci = mean_interval(d, cfg, key)
    return Comparison(diff, ci, _verdict(diff, ci, higher_is_better), f"paired bootstrap over {d.size} images")


def compare_independent(a: np.ndarray, b: np.ndarray, higher_is_better: bool, cfg: StatsConfig,
                        key: str) -> Comparison:
    """Unpaired bootstrap of ``mean(a) - mean(b)`` (e.g. FID of each run of two methods).

    A side with a single value (a deterministic method) is taken as exact; with a single
    value on both sides nothing can be tested (``separated`` False, ``interval`` None).
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        return Comparison(math.nan, None, False, "no values on one side")
    diff = float(a.mean() - b.mean())
    if a.size < 2 and b.size < 2:
        return Comparison(diff, None, False, "one run on each side: no spread to test against")
    if a.size < 2 or b.size < 2:
        ci = mean_interval(a - b.mean() if b.size < 2 else a.mean() - b, cfg, key)
    elif np.all(a == a[0]) and np.all(b == b[0]):
        ci = Interval(diff, diff, "exact", int(a.size + b.size))
    else:
        ci = _run_bootstrap((a, b), _diff_means, diff, cfg, key, int(a.size + b.size))
    return Comparison(diff, ci, _verdict(diff, ci, higher_is_better), f"unpaired bootstrap over runs ({a.size}, {b.size})")


# ----------------------------------------------------------------------------- how many runs are enough


def run_subsets(runs: int, draws: int, seed: int) -> np.ndarray:
    """``draws`` random orders of the runs (array draws x runs); N runs of order k are its first N.

    Nested subsets (the first N of one order) are what a researcher who ran N seeds would have
    seen; one order for all images, as every image of a run uses the same seeds.
    """
    rng = np.random.default_rng([int(seed), zlib.crc32(b"runs")])
    return np.stack([rng.permutation(runs) for _ in range(draws)]) if runs else np.zeros((draws, 0), int)


def gstd_by_runs(values: np.ndarray, ns: Sequence[int], orders: np.ndarray) -> np.ndarray:
    """G-STD estimated from N of the stored runs: array len(ns) x draws.

    ``values`` is the M x R matrix of :func:`run_matrix`; entry [i, k] is the mean over images
    of the population std over the first ``ns[i]`` runs of order ``orders[k]``.
    """
    out = np.empty((len(ns), len(orders)))
    for k, order in enumerate(orders):
        for i, n in enumerate(ns):
            out[i, k] = values[:, order[:n]].std(axis=1, ddof=0).mean()
    return out


def lstd_by_runs(stacks: Iterable[np.ndarray], crop_border: int, ns: Sequence[int], orders: np.ndarray) -> np.ndarray:
    """L-STD estimated from N of the stored runs: array len(ns) x draws.

    ``stacks`` yields, per image, its R runs as uint8 R x H x W x 3 (the stored PNGs); each is
    scaled to [0, 1] and border-cropped as :func:`benchmark.stability.lstd_image` does, and the
    per-pixel population std over the first N runs of each order is averaged over pixels and
    channels, then over images. Running sums give every N of one order in one pass.
    """
    total = np.zeros((len(ns), len(orders)))
    count = 0
    idx = np.asarray(ns) - 1
    for stack in stacks:
        x = crop(np.asarray(stack, dtype=np.float64) / 255.0, crop_border)
        flat = x.reshape(x.shape[0], -1)
        for k, order in enumerate(orders):
            xs = flat[order]
            s1 = np.cumsum(xs, axis=0)[idx]
            s2 = np.cumsum(xs * xs, axis=0)[idx]
            n = (idx + 1)[:, None].astype(np.float64)
            var = np.maximum(s2 / n - (s1 / n) ** 2, 0.0)  # clip -1e-17 rounding below 0
            total[:, k] += np.sqrt(var).mean(axis=1)
        count += 1
    if count == 0:
        raise ValueError("lstd_by_runs: no images")
    return total / count
