"""The typed result of one (data set, method): built once from the tidy scores, read by everyone.

:meth:`Result.from_scores` is the one function that turns tidy scores (image, run, seed, metric,
value), the per-image L-STD and the metric facts into what results.json holds:

* per-image metrics (FR, NR): ``mean`` = mean over images of the per-image mean over runs,
  ``gstd`` = G-STD (:func:`benchmark.stability.gstd`), ``num_images`` = images scored;
* set metrics (FID, KID): ``mean`` = mean over runs of the per-run value, ``gstd`` = None (the
  paper prints none), ``std_over_runs`` = population std over runs (None for one run);
* ``num_values`` = how many values were averaged ((image, run) pairs, or runs for set metrics),
  ``excluded`` = the (image, run) values that were not, each with its reason (a metric undefined
  on that input: NIQE below 96x96 px or on a flat image, or failing on it; issue 12);
* ``cap`` / ``num_capped`` for metrics that saturate (PSNR: pyiqa's eps makes identical images
  80 dB): the cap and how many values sit at it (within :data:`CAP_SLACK`);
* ``lstd`` = data-set L-STD (:func:`benchmark.stability.lstd`);
* deterministic methods: every ``gstd`` and ``lstd`` is None (DESIGN.md prints them as "-").

The runner and ``python -m benchmark merge`` both build results through it; the report, the
regression gate and the console table read :class:`Result` objects (:meth:`Result.from_json`),
never raw results.json dicts.

Schema versions: 1 (no ``schema`` key, files written before this module) and 2 (``schema: 2``;
same keys; ``num_values``, ``excluded``, ``cap`` and ``num_capped`` were added to schema 2 as
optional keys: files without them read as None; so was the top-level ``scoring_device``, the device
the per-image metrics ran on). Keys this version does not know are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd

from benchmark import stability
from benchmark.stats import Interval, StatsConfig, intervals
from benchmark.store import SET_IMAGE

SCHEMA = 2  # written into results.json as "schema"; files without the key are schema 1
SET_KIND = "set"
CAP_SLACK = 1e-3  # a value this close to a metric's cap counts as capped (PSNR: MSE below ~2e-12)

_METRIC_KEYS = ("mean", "mean_ci", "gstd", "gstd_ci", "std_over_runs", "higher_is_better", "kind", "num_images",
                "num_values", "excluded", "cap", "num_capped")
_RESULT_KEYS = ("schema", "method", "dataset", "runs", "seed", "crop_border", "stochastic", "num_images",
                "metrics", "skipped", "lstd", "lstd_ci", "stats", "timing", "config", "versions", "content_hash",
                "protocol", "scoring_device")


class MetricFacts(Protocol):
    """What :meth:`Result.from_scores` needs to know about a metric (a MetricSpec has it;
    an optional ``cap`` attribute is the value the metric saturates at)."""

    kind: str  # "FR", "NR" or "set"
    higher_is_better: bool


@dataclass(frozen=True)
class Excluded:
    """One value a metric could not give: ``image`` (SET_IMAGE for set metrics), ``run``, why.

    ``reason`` starts with the metric name, e.g. ``niqe: undefined below 96x96 px (image 'tiny'
    is 64x64)`` or ``niqe: undefined on a flat image (zero variance)``.
    """

    metric: str
    image: str
    run: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "run": self.run, "reason": self.reason}

    @classmethod
    def from_json(cls, metric: str, data: Mapping[str, Any]) -> "Excluded":
        return cls(metric, str(data["image"]), int(data["run"]), str(data["reason"]))


def _opt_float(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def result_problems(e: Any) -> list[str]:
    """What is wrong with a results.json dict or baseline entry (empty when well-formed): stored files
    are checked, never trusted, so a damaged one is named instead of failing deep inside a table."""
    if not isinstance(e, dict):
        return [f"is a JSON {type(e).__name__}, not an object"]
    bad = [f"{k!r} is {e.get(k)!r}, expected a string" for k in ("dataset", "method") if not isinstance(e.get(k), str)]
    bad += [f"{k!r} is {e[k]!r}, expected an integer" for k in ("runs", "seed", "crop_border", "num_images")
            if e.get(k) is not None and not (isinstance(e[k], int) and not isinstance(e[k], bool))]
    if "stochastic" in e and not isinstance(e["stochastic"], bool):
        bad.append(f"'stochastic' is {e['stochastic']!r}, expected true or false")
    if e.get("lstd") is not None and not _is_num(e["lstd"]):
        bad.append(f"'lstd' is {e['lstd']!r}, expected a number or null")
    if e.get("skipped") is not None and not isinstance(e["skipped"], dict):
        bad.append(f"'skipped' is {e['skipped']!r}, expected an object")
    metrics = e.get("metrics")
    if not isinstance(metrics, dict):
        return bad + [f"'metrics' is {metrics!r}, expected an object of metric name -> {{mean, gstd, higher_is_better}}"]
    for name, m in metrics.items():
        if not isinstance(m, dict):
            bad.append(f"metric {name!r} is {m!r}, expected an object")
            continue
        if not isinstance(m.get("higher_is_better"), bool):
            bad.append(f"metric {name!r} has higher_is_better {m.get('higher_is_better')!r}, expected true or false")
        bad += [f"metric {name!r} has {k} {m[k]!r}, expected a number or null"
                for k in ("mean", "gstd", "std_over_runs") if m.get(k) is not None and not _is_num(m[k])]
        bad += [f"metric {name!r} has {k} {m[k]!r}, expected null or {{low, high}} numbers"
                for k in ("mean_ci", "gstd_ci") if not _ci_ok(m.get(k))]
    if not _ci_ok(e.get("lstd_ci")):
        bad.append(f"'lstd_ci' is {e['lstd_ci']!r}, expected null or {{low, high}} numbers")
    return bad


def _ci_ok(v: Any) -> bool:
    """A stored confidence interval (benchmark/stats.py) is null or an object with numeric low and high."""
    return v is None or (isinstance(v, dict) and _is_num(v.get("low")) and _is_num(v.get("high")))


@dataclass
class MetricResult:
    """Summary of one metric over a (data set, method) result.

    ``mean``: per-image metrics: mean over images of the mean over runs; set metrics: mean over
    runs. ``gstd``: G-STD (None for set metrics, a single run, or a deterministic method).
    ``std_over_runs``: set metrics only, population std of the per-run values (None for one run).
    ``num_images``: per-image metrics only, how many images had the inputs the metric needs.
    ``mean_ci``, ``gstd_ci``: confidence intervals of mean and G-STD (benchmark/stats.py; None
    when not computed or undefined).
    ``num_values``: values averaged ((image, run) pairs; runs for set metrics); ``excluded``:
    the values left out, each ``{"image", "run", "reason"}`` (None in files written before).
    ``cap`` / ``num_capped``: the value the metric saturates at and how many values reached it.
    """

    mean: float | None
    gstd: float | None
    higher_is_better: bool
    kind: str
    std_over_runs: float | None = None
    num_images: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    mean_ci: Interval | None = None
    gstd_ci: Interval | None = None
    num_values: int | None = None
    excluded: list[dict[str, Any]] | None = None
    cap: float | None = None
    num_capped: int | None = None

    @property
    def is_set(self) -> bool:
        return self.kind == SET_KIND

    @property
    def num_excluded(self) -> int:
        return len(self.excluded or [])

    def to_json(self, intervals: bool = False) -> dict[str, Any]:
        """The metric's results.json dict; ``intervals``: write ``mean_ci``/``gstd_ci`` next to their values."""
        out: dict[str, Any] = {"mean": self.mean}
        if intervals:
            out["mean_ci"] = self.mean_ci.to_json() if self.mean_ci else None
        out["gstd"] = self.gstd
        if intervals:
            out["gstd_ci"] = self.gstd_ci.to_json() if self.gstd_ci else None
        if self.is_set or self.std_over_runs is not None:
            out["std_over_runs"] = self.std_over_runs
        out["higher_is_better"] = self.higher_is_better
        out["kind"] = self.kind
        if self.num_images is not None:
            out["num_images"] = self.num_images
        if self.num_values is not None:
            out["num_values"] = self.num_values
        if self.excluded is not None:
            out["excluded"] = list(self.excluded)
        if self.cap is not None:
            out["cap"] = self.cap
            out["num_capped"] = self.num_capped
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any], where: str = "results") -> "MetricResult":
        if not isinstance(data, Mapping) or "higher_is_better" not in data:
            raise ValueError(f"{where}: metric {name!r} has no 'higher_is_better' key: is it a results.json "
                             f"written by srbench?")
        return cls(mean=_opt_float(data.get("mean")), gstd=_opt_float(data.get("gstd")),
                   higher_is_better=bool(data["higher_is_better"]),
                   kind=str(data.get("kind", "FR")),  # files older than the kind key held FR metrics only
                   std_over_runs=_opt_float(data.get("std_over_runs")),
                   num_images=None if data.get("num_images") is None else int(data["num_images"]),
                   extra={k: v for k, v in data.items() if k not in _METRIC_KEYS},
                   mean_ci=Interval.from_json(data.get("mean_ci")), gstd_ci=Interval.from_json(data.get("gstd_ci")),
                   num_values=None if data.get("num_values") is None else int(data["num_values"]),
                   excluded=None if data.get("excluded") is None else [dict(e) for e in data["excluded"]],
                   cap=_opt_float(data.get("cap")),
                   num_capped=None if data.get("num_capped") is None else int(data["num_capped"]))


@dataclass
class Result:
    """One (data set, method) result: what results.json holds, typed.

    ``runs``: runs per image; ``seed``: first seed (run r used ``seed + r``; None for
    precomputed outputs); ``lstd``: data-set L-STD in [0, 1] pixel units (None when undefined);
    ``skipped``: metric -> why it was not computed; ``timing``: seconds and counts of generation
    and scoring (free-form); ``config``: the resolved Hydra config; ``content_hash`` and
    ``protocol``: only in regression baseline entries, which carry no config. ``lstd_ci``: the
    L-STD's confidence interval; ``stats``: how the intervals were computed
    (:meth:`benchmark.stats.StatsConfig.record`; None when they were not). ``scoring_device``: the
    device the per-image metrics ran on (``"cpu"``, ``"cuda:0"``; None in files written before it was
    recorded, and in baseline entries).
    """

    method: str
    dataset: str
    runs: int | None
    seed: int | None
    crop_border: int | None
    stochastic: bool
    num_images: int | None
    metrics: dict[str, MetricResult]
    skipped: dict[str, str] = field(default_factory=dict)
    lstd: float | None = None
    timing: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    versions: dict[str, Any] | None = None
    content_hash: str | None = None
    protocol: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA
    lstd_ci: Interval | None = None
    stats: dict[str, Any] | None = None
    scoring_device: str | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_scores(cls, scores: pd.DataFrame, lstd_per_image: pd.DataFrame | Sequence[float | None],
                    metrics: Mapping[str, MetricFacts], *, method: str, dataset: str, runs: int,
                    seed: int | None, crop_border: int, stochastic: bool, num_images: int,
                    skipped: Mapping[str, str] | None = None, timing: dict[str, Any] | None = None,
                    config: dict[str, Any] | None = None, versions: dict[str, Any] | None = None,
                    set_image: str = SET_IMAGE, stats: StatsConfig | None = None,
                    excluded: Sequence[Excluded] = (), scoring_device: str | None = None) -> "Result":
        """Build the result from the tidy scores (see the module docstring for each number).

        ``scores``: columns image, run, seed, metric, value; set-metric rows have image
        ``set_image``. ``lstd_per_image``: a frame with an ``lstd`` column or the values
        (None where a single run leaves it undefined). ``metrics``: name -> facts, in the order
        results.json lists them. A deterministic method (``stochastic=False``) gets no G-STD and
        no L-STD. ``stats`` (enabled): a confidence interval for every number
        (:func:`benchmark.stats.intervals`: bootstrap over images, recorded seed).
        ``excluded``: the values scoring could not give (:class:`Excluded`); they are
        listed per metric, and the means use the values that exist (an image with some runs
        excluded is the mean of its other runs; an image with all runs excluded is left out).
        """
        # a value scoring could not give never enters a mean (NaN rows would be skipped silently)
        scores = scores[np.isfinite(scores["value"].to_numpy(dtype=np.float64))]
        per_image = scores[scores["image"] != set_image]
        g = stability.gstd(per_image)
        out: dict[str, MetricResult] = {}
        for name, spec in metrics.items():
            df = scores[scores["metric"] == name]
            ex = sorted((e for e in excluded if e.metric == name), key=lambda e: (e.image, e.run))
            if spec.kind == SET_KIND:
                v = df["value"].to_numpy(dtype=np.float64)
                out[name] = MetricResult(float(v.mean()) if len(v) else None, None, spec.higher_is_better, spec.kind,
                                         std_over_runs=float(v.std(ddof=0)) if len(v) > 1 else None)
            elif len(df):
                img_means = df.groupby("image")["value"].mean()
                out[name] = MetricResult(float(img_means.mean()), g.get(name), spec.higher_is_better, spec.kind,
                                         num_images=int(len(img_means)))
            else:
                out[name] = MetricResult(None, None, spec.higher_is_better, spec.kind, num_images=0)
            m = out[name]
            m.num_values, m.excluded = int(len(df)), [e.to_json() for e in ex]
            cap = getattr(spec, "cap", None)
            if cap is not None:
                m.cap = float(cap)
                m.num_capped = int((df["value"].to_numpy(dtype=np.float64) >= cap - CAP_SLACK).sum())
        values = list(lstd_per_image["lstd"]) if isinstance(lstd_per_image, pd.DataFrame) else list(lstd_per_image)
        lstd = stability.lstd(values)
        if not stochastic:  # deterministic: run once, nothing to spread (DESIGN.md prints "-")
            lstd = None
            for m in out.values():
                m.gstd = None
        lstd_ci, record = None, None
        if stats is not None and stats.enabled:
            lstd_frame = (lstd_per_image if isinstance(lstd_per_image, pd.DataFrame) else
                          pd.DataFrame({"image": [str(i) for i in range(len(values))], "lstd": values}))
            kinds = {n: spec.kind for n, spec in metrics.items() if out[n].mean is not None}
            ci = intervals(scores, lstd_frame, kinds, bool(stochastic), stats)
            for n, got in ci["metrics"].items():
                out[n].mean_ci = Interval.from_json(got["mean_ci"])
                out[n].gstd_ci = Interval.from_json(got["gstd_ci"])
            lstd_ci = Interval.from_json(ci["lstd_ci"]) if lstd is not None else None
            record = stats.record()
        return cls(method=method, dataset=dataset, runs=runs, seed=seed, crop_border=crop_border,
                   stochastic=bool(stochastic), num_images=num_images, metrics=out, skipped=dict(skipped or {}),
                   lstd=lstd, timing=timing, config=config, versions=versions, lstd_ci=lstd_ci, stats=record,
                   scoring_device=scoring_device)

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """The results.json dict (``schema`` first; baseline-only keys only when set).

        Intervals (``*_ci`` next to each value, then ``stats``) are written when they were
        computed (``stats`` set) or any is known (a baseline entry keeps the ends it read).
        """
        ci = self.has_intervals
        out: dict[str, Any] = {
            "schema": self.schema, "method": self.method, "dataset": self.dataset, "runs": self.runs,
            "seed": self.seed, "crop_border": self.crop_border, "stochastic": self.stochastic,
            "num_images": self.num_images, "metrics": {n: m.to_json(ci) for n, m in self.metrics.items()},
            "skipped": dict(self.skipped), "lstd": self.lstd,
        }
        if ci:
            out["lstd_ci"] = self.lstd_ci.to_json() if self.lstd_ci else None
        if self.stats is not None:
            out["stats"] = self.stats
        for key in ("scoring_device", "timing", "config", "versions", "content_hash", "protocol"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str | None = None) -> "Result":
        """Read a results.json dict (schema 1 or 2) or a regression-baseline entry.

        Raises ValueError naming ``where`` when a required key (method, dataset, metrics) is
        missing or the schema is newer than this srbench reads.
        """
        where = where or "results"
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} does not hold a JSON object: is it a results.json written by srbench?")
        for key in ("method", "dataset", "metrics"):
            if key not in data:
                raise ValueError(f"{where} has no {key!r} key: is it a results.json written by srbench?")
        problems = result_problems(data)
        if problems:  # stored files are checked, never trusted: name what is wrong instead of a deep TypeError
            raise ValueError(f"{where} is malformed: " + "; ".join(problems[:10])
                             + ": is it a results.json written by srbench? Rerun the command that wrote it")
        schema = int(data.get("schema", 1))
        if schema > SCHEMA:
            raise ValueError(f"{where} has results schema {schema}, this srbench reads up to {SCHEMA}: "
                             f"upgrade srbench (pip install -U) to read it")
        runs = data.get("runs")
        return cls(
            method=str(data["method"]), dataset=str(data["dataset"]), runs=runs, seed=data.get("seed"),
            crop_border=data.get("crop_border"),
            # files older than the stochastic key: a method run more than once was stochastic
            stochastic=bool(data.get("stochastic", (runs or 1) > 1)),
            num_images=data.get("num_images"),
            metrics={str(n): MetricResult.from_json(str(n), m, where) for n, m in data["metrics"].items()},
            skipped={str(k): str(v) for k, v in (data.get("skipped") or {}).items()},
            lstd=_opt_float(data.get("lstd")), timing=data.get("timing"), config=data.get("config"),
            versions=data.get("versions"), content_hash=data.get("content_hash"), protocol=data.get("protocol"),
            extra={k: v for k, v in data.items() if k not in _RESULT_KEYS}, schema=SCHEMA,
            lstd_ci=Interval.from_json(data.get("lstd_ci")), stats=data.get("stats"),
            scoring_device=None if data.get("scoring_device") is None else str(data["scoring_device"]))

    # ------------------------------------------------------------------ reading

    @property
    def has_intervals(self) -> bool:
        """Whether confidence intervals were computed (or, for a baseline entry, any was kept)."""
        return self.stats is not None or self.lstd_ci is not None or any(
            m.mean_ci is not None or m.gstd_ci is not None for m in self.metrics.values())

    @property
    def metric_options(self) -> dict[str, Any] | None:
        """The metric options of the run's config (None for baseline entries, which carry ``protocol``)."""
        return None if self.config is None else self.config.get("metrics")

    def timing_value(self, key: str) -> Any:
        """One timing figure (None when absent), e.g. ``seconds_per_image_run``, ``parameters``."""
        return (self.timing or {}).get(key)
