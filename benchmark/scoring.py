"""Scoring: per-(image, run) metric values of stored samples, as one tidy DataFrame.

* :func:`plan_metrics` resolves the metric selection of a config, checks (and fetches) the files
  each metric needs, and builds every scorer once;
* :func:`score` decodes each image (HR and its N runs) once for all per-image metrics and
  computes the per-image L-STD; :func:`score_sets` computes set-level metrics (FID, KID) per run.

Scorer errors are re-raised naming the metric, the input size and the crop border
(:class:`NamedScorer`). Means, G-STD and the results built from these scores live in
:mod:`benchmark.results`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from benchmark import stability
from benchmark.data import Sample
from benchmark.images import read_image, to_tensor
from benchmark.metrics import METRICS, MetricSpec, resolve
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
            scorer = named(name, spec.factory(dict(options.get(name, {})), device), crop_border)
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


def score_sets(samples: Sequence[Sample], store: Store, runs: int, seeds: Sequence[int | None],
               plan: MetricPlan) -> pd.DataFrame:
    """Set-level metrics (FID, KID): one value per run over the images with an HR partner."""
    rows: list[tuple[str, int, Any, str, float]] = []
    with_hr = [s for s in samples if s.hr_path is not None]
    for name, (spec, scorer) in plan.active.items():
        if spec.kind != "set":
            continue
        for r in tqdm(range(runs), desc=f"score {name}", unit="run", dynamic_ncols=True):
            value = scorer.score_set([store.sample_path(s.id, r) for s in with_hr], [s.hr_path for s in with_hr])
            rows.append((SET_IMAGE, r, seeds[r], name, float(value)))
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


SCORE_CHUNK = 16  # runs of one image decoded and scored together (memory per image: O(chunk), not O(runs))


def score(samples: Sequence[Sample], store: Store, runs: int, seeds: Sequence[int | None],
          plan: MetricPlan, crop_border: int, device: torch.device,
          chunk: int = SCORE_CHUNK) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every stored sample; each sample is decoded once for all metrics, ``chunk`` runs of an
    image at a time, and L-STD streams over the runs (:class:`benchmark.stability.RunningMoments`).

    Returns the tidy scores (image, run, seed, metric, value) and per-image L-STD.
    """
    rows: list[tuple[str, int, Any, str, float]] = []
    lstd_rows: list[tuple[str, float | None]] = []
    per_image = {n: v for n, v in plan.active.items() if v[0].kind != "set"}
    for smp in tqdm(samples, desc="score", unit="img", dynamic_ncols=True):
        hr = to_tensor(read_image(smp.hr_path)).unsqueeze(0) if smp.hr_path is not None else None
        # Runs are decoded and scored ``chunk`` at a time and L-STD is accumulated with running
        # moments, so memory does not grow with the number of runs (runs=100000 once held every
        # run of an image at once and was killed).
        moments = stability.RunningMoments()
        for start in range(0, runs, chunk):
            part = range(start, min(start + chunk, runs))
            arrays = [read_image(store.sample_path(smp.id, r)) for r in part]
            sr = torch.stack([to_tensor(a) for a in arrays])
            for name, (spec, scorer) in per_image.items():
                if spec.kind == "FR" and hr is None:
                    continue
                x = _crop_t(sr, crop_border) if spec.crop else sr
                with torch.inference_mode():
                    if spec.kind == "FR":
                        y = _crop_t(hr, crop_border) if spec.crop else hr
                        vals = scorer(x.to(device), y.to(device))
                    else:
                        vals = scorer(x.to(device))
                vals = [float(v) for v in vals]
                if len(vals) != len(part):
                    raise RuntimeError(f"metric {name} returned {len(vals)} values for {len(part)} runs of {smp.id!r}")
                rows += [(smp.id, r, seeds[r], name, v) for r, v in zip(part, vals)]
            moments.update(stability.crop(np.stack(arrays).astype(np.float64) / 255.0, crop_border))
            del arrays, sr
        lstd_rows.append((smp.id, stability.lstd_streamed(moments, crop_border)))
    scores = tidy(rows, score_sets(samples, store, runs, seeds, plan))
    lstd_df = pd.DataFrame(lstd_rows, columns=["image", "lstd"])
    return scores, lstd_df
