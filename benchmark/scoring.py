"""Scoring: per-(image, run) metric values of stored samples, as one tidy DataFrame.

* :func:`plan_metrics` resolves the metric selection of a config, checks (and fetches) the files
  each metric needs, and builds every scorer once;
* :func:`score` decodes each image (HR and its N runs) once for all per-image metrics and
  computes the per-image L-STD; :func:`score_sets` computes set-level metrics (FID, KID) per run.

Failure policy (issue 12): a metric that is undefined on, or fails on, one (image, run) never
loses the rest. Known limits are checked first (the spec's ``min_size`` on the image as the
metric sees it, ``flat_undefined`` on an image with zero variance); a scorer error or a
non-finite value on a batch of runs is retried run by run; each value that cannot be had is
recorded in ``plan.excluded`` (:class:`benchmark.results.Excluded`, with the reason), scoring
goes on, and :meth:`benchmark.results.Result.from_scores` lists them per metric.
:func:`size_exclusions` gives the size-limit exclusions from the LR sizes before generation.
Means, G-STD and the results built from these scores live in :mod:`benchmark.results`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from benchmark import stability
from benchmark.data import Sample
from benchmark.progress import track
from benchmark.images import read_image, to_tensor
from benchmark.metrics import METRICS, MetricSpec, resolve
from benchmark.results import Excluded
from benchmark.store import SET_IMAGE, Store
from benchmark.weights import WeightFile, apply_weights_dir, fetch_missing

log = logging.getLogger("srbench")

SCORE_COLUMNS = ["image", "run", "seed", "metric", "value"]


# ----------------------------------------------------------------------------- error wrapping


class NamedScorer:
    """Forwards to ``scorer``; a failure of a per-image call is re-raised with the metric named.

    A metric that cannot score an input (SSIM's 11x11 window on a crop a few pixels high, a
    network given a too-small image) fails deep inside pyiqa/torch with a message such as
    "Kernel size can't be greater than actual input size"; the re-raised error says which
    metric, on which input size, after which ``crop_border``, and what to do.
    """

    def __init__(self, name: str, scorer: Any, crop_border: int) -> None:
        self._name, self._scorer, self._crop = name, scorer, crop_border

    def __call__(self, sr: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._scorer(sr, *args, **kwargs)
        except (RuntimeError, ValueError) as err:
            h, w = sr.shape[-2:]
            raise RuntimeError(
                f"metric {self._name!r} failed on an SR input of {w}x{h} pixels (after crop_border={self._crop}, "
                f"if the metric crops): {err}. If the images are this small, lower crop_border or leave the metric "
                f"out (metrics=[...])"
            ) from err

    def __getattr__(self, attr: str) -> Any:  # score_set of set metrics, and anything else
        return getattr(self._scorer, attr)


def named(name: str, scorer: Any, crop_border: int) -> Any:
    """Wrap a per-image scorer (callable); set-level scorers without ``__call__`` are returned as they are."""
    return NamedScorer(name, scorer, crop_border) if callable(scorer) else scorer


# ----------------------------------------------------------------------------- the plan


@dataclass
class MetricPlan:
    """Which metrics run, with their scorers, and which are skipped and why.

    ``active`` maps metric name -> (spec, scorer) in the order of the selection; the scorer is
    None for metrics a caller does not compute (merge recomputes only set-level metrics).
    """

    active: dict[str, tuple[MetricSpec, Any]]
    skipped: dict[str, str]
    # values scoring could not give, with reasons (filled by score / score_sets)
    excluded: list[Excluded] = field(default_factory=list)

    @property
    def specs(self) -> dict[str, MetricSpec]:
        """Metric facts (kind, direction) of the active metrics, in order."""
        return {name: spec for name, (spec, _) in self.active.items()}


def build_scorers(names: Iterable[str], options: Mapping[str, Mapping[str, Any]], device: torch.device,
                  crop_border: int, kinds: Sequence[str] = ("FR", "NR", "set")) -> dict[str, tuple[MetricSpec, Any]]:
    """(spec, scorer) per metric name; a scorer is built only for metrics of ``kinds`` (others get None)."""
    active: dict[str, tuple[MetricSpec, Any]] = {}
    for name in names:
        spec = METRICS.get(name)
        scorer = None
        if spec.kind in kinds:
            scorer = named(name, spec.factory(options.get(name, {}), device), crop_border)
        active[name] = (spec, scorer)
    return active


def metric_files(cfg: DictConfig, has_hr: bool) -> tuple[dict[str, str], dict[str, list[WeightFile]]]:
    """Which metrics are skipped (and why) and which files the others lack.

    Optional metrics (and every metric with ``strict=false``) whose files are absent are
    skipped; full-reference and set metrics are skipped on a data set without HR images. The
    returned ``missing`` ({metric: files}) must be fetched before the run starts.
    """
    selection = resolve(OmegaConf.to_container(cfg.metrics, resolve=True))
    apply_weights_dir(cfg.get("weights_dir"))
    skipped: dict[str, str] = {}
    missing: dict[str, list[WeightFile]] = {}
    for name in selection.names:
        spec = METRICS.get(name)
        if spec.kind in ("FR", "set") and not has_hr:
            skipped[name] = "the data set has no HR images (full-reference metric)"
            continue
        absent = [w for w in spec.weights(selection.options[name]) if not w.present]
        if absent:
            why = ("missing " + ", ".join(f"{w.path} (from {w.url})" for w in absent)
                   + f"; fetch with `python -m benchmark weights metrics=[{name}] --download`")
            if name in selection.optional or not cfg.strict:
                skipped[name] = why
            else:
                missing[name] = absent
    return skipped, missing


def plan_metrics(cfg: DictConfig, has_hr: bool, device: torch.device) -> MetricPlan:
    """Resolve metric names, check their files, and build each scorer once."""
    selection = resolve(OmegaConf.to_container(cfg.metrics, resolve=True))
    skipped, missing = metric_files(cfg, has_hr)
    # downloads when the network is reachable; offline it stops here, before any generation,
    # naming each missing file and the command that fetches it
    fetch_missing(missing)
    active = build_scorers([n for n in selection.names if n not in skipped], selection.options, device,
                           cfg.crop_border)
    for name, why in skipped.items():
        log.warning("metric %s skipped: %s", name, why)
    return MetricPlan(active, skipped)


# ----------------------------------------------------------------------------- scoring


def _crop_t(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border:-border, border:-border] if border > 0 else x


def tidy(rows: Iterable[tuple[str, int, Any, str, float]] | pd.DataFrame,
         *more: pd.DataFrame) -> pd.DataFrame:
    """The tidy scores frame (image, run, seed, metric, value), sorted by metric, image, run."""
    frames = [rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=SCORE_COLUMNS), *more]
    frames = [f for f in frames if len(f)] or frames[:1]
    scores = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    scores["seed"] = scores["seed"].astype("Int64")
    return scores.sort_values(["metric", "image", "run"], kind="stable").reset_index(drop=True)


# Errors that mean "this metric cannot score this input" (pyiqa raises RuntimeError, ValueError,
# torch.linalg.LinAlgError, AssertionError on shapes); out-of-memory is a fault of the machine,
# not of the input, and stops the run as before.
_METRIC_ERRORS = (RuntimeError, ValueError, ArithmeticError, AssertionError, IndexError)


#: what the allocators say when memory runs out, whatever the exception type: CUDA's caching allocator
#: ("CUDA out of memory"), a CUDA kernel launch ("CUDA error: out of memory", a RuntimeError or
#: torch.AcceleratorError), MPS ("MPS backend out of memory") and torch's CPU allocator
#: ("DefaultCPUAllocator: can't allocate memory", a plain RuntimeError)
_OOM_TEXTS = ("out of memory", "can't allocate memory")


def _is_oom(err: BaseException) -> bool:
    """True for memory exhaustion (stops the run with advice), False for an error of the metric on
    this input (recorded as an excluded value): torch.OutOfMemoryError (torch >= 2.5) or any error
    whose message says memory ran out (older torch, kernel launches, the CPU allocator)."""
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(err, oom_type):
        return True
    text = str(err).lower()
    return any(t in text for t in _OOM_TEXTS)


def _reason_of(name: str, err: BaseException) -> str:
    # NamedScorer's message adds advice for a whole run; the cause is what names the problem here
    cause = err.__cause__ if isinstance(err, RuntimeError) and err.__cause__ is not None else err
    text = " ".join(str(cause).split())
    return f"{name}: failed ({type(cause).__name__}: {text[:300]})"


def size_exclusions(samples: Sequence[Sample], plan: MetricPlan, scale: int, crop_border: int,
                    runs: int) -> list[Excluded]:
    """Values a metric's known size limit rules out, from the LR sizes, before any generation.

    Each SR image is ``scale`` x its LR image; the spec's ``min_size`` applies to it as the metric
    sees it (after the border crop for metrics that crop). One entry per (metric, image, run).
    """
    out: list[Excluded] = []
    for name, (spec, _) in plan.active.items():
        if spec.kind == "set":
            continue
        for smp in samples:
            if spec.kind == "FR" and smp.hr_path is None:
                continue
            why = _too_small(name, spec, smp.id, smp.lr_size[0] * scale, smp.lr_size[1] * scale, crop_border)
            if why:
                out += [Excluded(name, smp.id, r, why) for r in range(runs)]
    return out


def _too_small(name: str, spec: MetricSpec, image: str, h: int, w: int, crop_border: int) -> str | None:
    if spec.too_small(h, w, crop_border) is None:
        return None
    seen_h, seen_w = (h - 2 * crop_border, w - 2 * crop_border) if spec.crop else (h, w)
    after = f" after crop_border={crop_border}" if spec.crop and crop_border else ""
    why = f", {spec.min_size_why}" if spec.min_size_why else ""
    return (f"{name}: undefined below {spec.min_size}x{spec.min_size} px{why} "
            f"(image {image!r} is {seen_w}x{seen_h}{after})")


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[N] bool: the image of each run has a single value everywhere (zero variance)."""
    flat = x.reshape(x.shape[0], -1)
    return flat.amax(dim=1) == flat.amin(dim=1)


def score_image(name: str, spec: MetricSpec, scorer: Any, image: str, x: torch.Tensor, y: torch.Tensor | None,
                runs: Sequence[int], excluded: list[Excluded], crop_border: int = 0) -> dict[int, float]:
    """Values of one metric on the runs ``runs`` of one image: {run: value} for those it could give.

    ``x`` [N,3,H,W] in [0, 1] as the metric sees it (border-cropped by ``crop_border`` for
    metrics that crop), ``y`` [1,3,H,W] the HR for FR metrics. The others are appended to
    ``excluded`` with their reason: below the spec's minimum size, flat where the metric is
    undefined on flat images, a scorer error (the batch is retried run by run to find which),
    or a non-finite value.
    """
    h, w = x.shape[-2:]
    if spec.crop:  # x is already cropped; the reason names the size before and after the crop
        h, w = h + 2 * crop_border, w + 2 * crop_border
    reason = _too_small(name, spec, image, h, w, crop_border)
    if reason:
        excluded += [Excluded(name, image, r, reason) for r in runs]
        return {}
    keep = list(range(len(runs)))
    if spec.flat_undefined:
        flat = _flat(x).tolist()
        for i in [i for i in keep if flat[i]]:
            excluded.append(Excluded(name, image, runs[i], f"{name}: undefined on a flat image (zero variance)"))
        keep = [i for i in keep if not flat[i]]

    def call(idx: list[int]) -> list[float]:
        xs = x[idx]
        with torch.inference_mode():
            vals = scorer(xs, y) if spec.kind == "FR" else scorer(xs)
        vals = [float(v) for v in vals]
        if len(vals) != len(idx):
            raise RuntimeError(f"metric {name} returned {len(vals)} values for {len(idx)} runs of {image!r}")
        return vals

    out: dict[int, float] = {}
    if not keep:
        return out
    try:
        vals = call(keep)
        pairs = list(zip(keep, vals))
    except _METRIC_ERRORS as err:
        if _is_oom(err):
            raise
        pairs = []
        for i in keep:  # find which runs fail; the others keep their values
            try:
                pairs.append((i, call([i])[0]))
            except _METRIC_ERRORS as one:
                if _is_oom(one):
                    raise
                excluded.append(Excluded(name, image, runs[i], _reason_of(name, one)))
    for i, v in pairs:
        if math.isfinite(v):
            out[runs[i]] = v
        else:
            excluded.append(Excluded(name, image, runs[i], f"{name}: undefined (the metric returned {v})"))
    return out


def score_sets(samples: Sequence[Sample], store: Store, runs: int, seeds: Sequence[int | None],
               plan: MetricPlan) -> pd.DataFrame:
    """Set-level metrics (FID, KID): one value per run over the images with an HR partner.

    A run whose value cannot be had (error or non-finite) is recorded in ``plan.excluded``.
    """
    rows: list[tuple[str, int, Any, str, float]] = []
    with_hr = [s for s in samples if s.hr_path is not None]
    for name, (spec, scorer) in plan.active.items():
        if spec.kind != "set":
            continue
        for r in track(range(runs), runs, f"score {name}", "run"):
            try:
                value = float(scorer.score_set([store.sample_path(s.id, r) for s in with_hr],
                                               [s.hr_path for s in with_hr]))
            except _METRIC_ERRORS as err:
                if _is_oom(err):
                    raise
                plan.excluded.append(Excluded(name, SET_IMAGE, r, _reason_of(name, err)))
                continue
            if not math.isfinite(value):
                plan.excluded.append(Excluded(name, SET_IMAGE, r, f"{name}: undefined (the metric returned {value})"))
                continue
            rows.append((SET_IMAGE, r, seeds[r], name, value))
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


SCORE_CHUNK = 16  # runs of one image decoded and scored together (memory per image: O(chunk), not O(runs))


class ImageScoring:
    """Scores of one image, fed ``chunk`` runs at a time in ascending run order; L-STD streams.

    The one implementation of per-image scoring: :func:`score` feeds it runs decoded from the
    store, the pipelined run (:class:`benchmark.pipeline.StreamScorer`) feeds it the uint8 arrays
    the sink holds in memory; given the same arrays and the same chunks both give the same bits.
    ``add(part, arrays)``: runs ``part`` (ascending, continuing the previous chunk) and their
    uint8 H x W x 3 arrays; per-image metrics are computed on ``device`` (the device the scorers
    were built on), values the metrics cannot give go to ``excluded``. ``finish()`` returns the
    image's L-STD (None for a single run).
    """

    def __init__(self, smp: Sample, seeds: Sequence[int | None], per_image: Mapping[str, tuple[MetricSpec, Any]],
                 crop_border: int, device: torch.device, excluded: list[Excluded]) -> None:
        self.smp, self.seeds, self.per_image = smp, seeds, per_image
        self.crop_border, self.device, self.excluded = crop_border, device, excluded
        self.hr = to_tensor(read_image(smp.hr_path)).unsqueeze(0) if smp.hr_path is not None else None
        self.rows: list[tuple[str, int, Any, str, float]] = []
        self.moments = stability.RunningMoments()

    def add(self, part: Sequence[int], arrays: Sequence[np.ndarray]) -> None:
        """Score runs ``part`` of this image from their 8-bit arrays (one chunk)."""
        part = list(part)
        # C order, as read_image returns them: numpy's reductions (L-STD's mean over runs) sum in memory
        # order, so an array in another layout (to_uint8's permuted view) would change the last bits
        arrays = [np.ascontiguousarray(a) for a in arrays]
        sr = torch.stack([to_tensor(a) for a in arrays])
        for name, (spec, scorer) in self.per_image.items():
            if spec.kind == "FR" and self.hr is None:
                continue
            x = (_crop_t(sr, self.crop_border) if spec.crop else sr).to(self.device)
            y = None
            if spec.kind == "FR":
                y = (_crop_t(self.hr, self.crop_border) if spec.crop else self.hr).to(self.device)
            vals = score_image(name, spec, scorer, self.smp.id, x, y, part, self.excluded, self.crop_border)
            self.rows += [(self.smp.id, r, self.seeds[r], name, v) for r, v in sorted(vals.items())]
        self.moments.update(stability.crop(np.stack(arrays).astype(np.float64) / 255.0, self.crop_border))

    def finish(self) -> float | None:
        """The image's L-STD from the runs added (None for a single run)."""
        return stability.lstd_streamed(self.moments, self.crop_border)


def per_image_metrics(plan: MetricPlan) -> dict[str, tuple[MetricSpec, Any]]:
    """The plan's per-image (FR and NR) metrics, in order."""
    return {n: v for n, v in plan.active.items() if v[0].kind != "set"}


def chunks(runs: int, chunk: int = SCORE_CHUNK) -> list[list[int]]:
    """The runs of one image in the chunks they are scored in: [0..chunk-1], [chunk..2*chunk-1], ..."""
    return [list(range(start, min(start + chunk, runs))) for start in range(0, runs, chunk)]


def score_stored(smp: Sample, store: Store, runs: int, seeds: Sequence[int | None], plan: MetricPlan,
                 crop_border: int, device: torch.device, excluded: list[Excluded],
                 chunk: int = SCORE_CHUNK) -> tuple[list[tuple[str, int, Any, str, float]], float | None]:
    """Rows and L-STD of one image from its stored samples, ``chunk`` runs decoded at a time."""
    # Runs are decoded and scored ``chunk`` at a time and L-STD is accumulated with running
    # moments, so memory does not grow with the number of runs (runs=100000 once held every
    # run of an image at once and was killed).
    image = ImageScoring(smp, seeds, per_image_metrics(plan), crop_border, device, excluded)
    for part in chunks(runs, chunk):
        image.add(part, [read_image(store.sample_path(smp.id, r)) for r in part])
    return image.rows, image.finish()


def score(samples: Sequence[Sample], store: Store, runs: int, seeds: Sequence[int | None],
          plan: MetricPlan, crop_border: int, device: torch.device,
          chunk: int = SCORE_CHUNK) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every stored sample; each sample is decoded once for all metrics, ``chunk`` runs of an
    image at a time, and L-STD streams over the runs (:class:`benchmark.stability.RunningMoments`).

    Returns the tidy scores (image, run, seed, metric, value) and per-image L-STD.
    """
    rows: list[tuple[str, int, Any, str, float]] = []
    lstd_rows: list[tuple[str, float | None]] = []
    for smp in track(samples, len(samples), "score", "img"):
        got, lstd = score_stored(smp, store, runs, seeds, plan, crop_border, device, plan.excluded, chunk)
        rows += got
        lstd_rows.append((smp.id, lstd))
    scores = tidy(rows, score_sets(samples, store, runs, seeds, plan))
    lstd_df = pd.DataFrame(lstd_rows, columns=["image", "lstd"])
    return scores, lstd_df
