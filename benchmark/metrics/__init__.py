"""Metric registry: metric facts are data (kind, direction, crop policy, backend, files).

A metric is a :class:`MetricSpec` whose ``factory`` builds a scorer once per process:

* ``FR`` scorers: ``scorer(sr[N,3,H,W], hr[1,3,H,W]) -> Tensor[N]``
* ``NR`` scorers: ``scorer(sr[N,3,H,W]) -> Tensor[N]``
* ``set`` scorers: ``scorer.score_set(sr_paths, hr_paths) -> float`` for one run

Inputs are float32 RGB in [0, 1] decoded from 8-bit files. The runner applies the border crop
for specs with ``crop=True``, so no scorer crops on its own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch

from benchmark.config import conf_dir, group_names
from benchmark.registry import Registry
from benchmark.weights import WeightFile

MetricKind = Literal["FR", "NR", "set"]


@dataclass(frozen=True)
class MetricSpec:
    """Everything the harness needs to know about one metric."""

    name: str
    kind: MetricKind
    higher_is_better: bool
    crop: bool
    backend: str
    factory: Callable[[dict[str, Any], torch.device], Any]
    weights: Callable[[dict[str, Any]], list[WeightFile]] = field(default=lambda options: [])
    description: str = ""


METRICS: Registry[MetricSpec] = Registry("metric")
MODULE_KEY = "_module_"  # option of a metric YAML: the module that registers it (not passed to the factory)


def register(spec: MetricSpec) -> MetricSpec:
    METRICS.add(spec.name, spec)
    return spec




@dataclass(frozen=True)
class MetricSelection:
    """Resolved metric list: names in order, which of them are optional, per-metric options."""

    names: tuple[str, ...]
    optional: frozenset[str]
    options: dict[str, dict[str, Any]]


def preset_names() -> list[str]:
    """Files of ``conf/metrics/``: presets (several metrics) and one file per metric."""
    return group_names("metrics")


def _load_group_file(name: str) -> dict[str, Any]:
    from omegaconf import OmegaConf

    path = conf_dir() / "metrics" / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown metrics preset or metric {name!r}; available in {path.parent}: "
                         f"{', '.join(preset_names())}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}


def resolve(metrics: Any) -> MetricSelection:
    """Turn ``cfg.metrics`` into a :class:`MetricSelection`.

    Hydra composes ``cfg.metrics`` as a mapping ``{metric name: options}`` from conf/metrics/
    (``metrics=fast`` loads a preset, ``metrics=[psnr,ssim]`` merges one file per name). From
    Python a preset name or a list of names is accepted too. The option ``optional: true``
    marks a metric that is skipped, and reported, when its files are missing; ``_module_: pkg.mod``
    names the module that registers a metric srbench does not ship (imported on first use), so a
    new metric is that module and its YAML file.
    """
    if isinstance(metrics, str):
        metrics = _load_group_file(metrics)
    elif isinstance(metrics, (list, tuple)):
        merged: dict[str, Any] = {}
        for n in metrics:
            merged.update(_load_group_file(str(n)))
        metrics = merged
    metrics = dict(metrics or {})
    if not metrics:
        raise ValueError("metrics is empty: choose a preset (metrics=fast) or a list (metrics=[psnr,ssim])")
    names, optional, options = [], set(), {}
    for name, opts in metrics.items():
        opts = dict(opts or {})
        module = opts.pop(MODULE_KEY, None)
        if module and name not in METRICS:  # a metric defined outside srbench: its YAML names its module
            importlib.import_module(str(module))
        METRICS.get(name)  # raises with the available names
        if opts.pop("optional", False):
            optional.add(name)
        names.append(name)
        options[name] = opts
    return MetricSelection(tuple(names), frozenset(optional), options)


# Register the built-in metrics.
from benchmark.metrics import pyiqa_metrics  # noqa: E402,F401
from benchmark.metrics import deep, fid  # noqa: E402,F401
