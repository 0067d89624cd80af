"""Metric registry: metric facts are data (kind, direction, crop policy, backend, files,
display, gate tolerances, minimum size, typed options), declared once per metric.

A metric is a :class:`MetricSpec` whose ``factory`` builds a scorer once per process:

* ``FR`` scorers: ``scorer(sr[N,3,H,W], hr[1,3,H,W]) -> Tensor[N]``
* ``NR`` scorers: ``scorer(sr[N,3,H,W]) -> Tensor[N]``
* ``set`` scorers: ``scorer.score_set(sr_paths, hr_paths) -> float`` for one run

Inputs are float32 RGB in [0, 1] decoded from 8-bit files. The runner applies the border crop
for specs with ``crop=True``, so no scorer crops on its own. ``factory`` and ``weights``
accept the metric's typed options (:mod:`benchmark.metrics.options`) or a raw mapping, which
is validated first; every option the schema accepts is applied by the factory.

Tables (label, decimals), the regression gate (tolerances), the weights doctor (files) and the
runner (kind, crop, minimum size) read these facts from the spec; nothing lists them again.
Direction and kind equal pyiqa's ``lower_better`` and ``metric_mode`` for every metric that
pyiqa defines (tests/test_metric_options.py); FID and KID, which pyiqa files as ``NR``
because they take no paired reference, are ``set`` here: one value per run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

import torch

from benchmark import searchpath
from benchmark.metrics.options import MetricOptions, parse_options
from benchmark.registry import Registry
from benchmark.weights import WeightFile

MetricKind = Literal["FR", "NR", "set"]


@dataclass(frozen=True)
class GateTolerance:
    """Default allowed change of a quantity in the regression gate: ``max(abs, rel * |baseline|)``."""

    abs: float
    rel: float


@dataclass(frozen=True)
class MetricSpec:
    """Everything the harness needs to know about one metric.

    ``label``, ``decimals``: how tables print it; ``tolerance_mean`` / ``tolerance_spread``: the
    regression gate's default tolerance of its mean and of its G-STD (std over runs for set
    metrics); ``pyiqa_name``: pyiqa's name of the same metric, whose ``lower_better`` and
    ``metric_mode`` must agree; ``min_size``: smallest side, in pixels, of the input the metric sees (after the border
    crop when ``crop``); images below it are excluded for this metric before generation, with
    ``min_size_why`` in the reason. ``flat_undefined``: the metric is undefined on an image
    with zero variance (NIQE's feature covariance is singular); such images are excluded.
    """

    name: str
    kind: MetricKind
    higher_is_better: bool
    crop: bool
    backend: str
    factory: Callable[[Any, torch.device], Any]
    weights: Callable[[Any], list[WeightFile]] = field(default=lambda options: [])
    description: str = ""
    options: type[MetricOptions] = MetricOptions
    label: str = ""
    decimals: int = 4
    tolerance_mean: GateTolerance = GateTolerance(abs=1e-6, rel=0.005)
    tolerance_spread: GateTolerance = GateTolerance(abs=1e-4, rel=0.10)
    min_size: int = 1
    min_size_why: str = ""
    flat_undefined: bool = False
    pyiqa_name: str | None = None
    table_row: int = 100  # row of the paper's Table 1 (PSNR 1, SSIM 2, ...); others follow
    cap: float | None = None  # value the metric saturates at (PSNR: 80 dB, pyiqa's eps); results count hits

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name.upper())
        raw_factory, raw_weights = self.factory, self.weights
        # every entry point validates and types the options first, so no factory sees a raw dict
        object.__setattr__(self, "factory", lambda options, device: raw_factory(self.parse(options), device))
        object.__setattr__(self, "weights", lambda options: raw_weights(self.parse(options)))

    def parse(self, raw: Mapping[str, Any] | MetricOptions | None) -> MetricOptions:
        """Typed options from ``cfg.metrics.<name>``; ValueError names option, value and allowed values."""
        return parse_options(self.name, self.options, raw)

    def too_small(self, sr_height: int, sr_width: int, crop_border: int) -> str | None:
        """Why an SR image of this size cannot be scored (None when it can), as the metric sees it."""
        h, w = sr_height, sr_width
        if self.crop:
            h, w = h - 2 * crop_border, w - 2 * crop_border
        if min(h, w) >= self.min_size:
            return None
        after = f" after crop_border={crop_border}" if self.crop and crop_border else ""
        why = f" ({self.min_size_why})" if self.min_size_why else ""
        return f"undefined below {self.min_size}x{self.min_size} px{why}; the image is {w}x{h}{after}"


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
    options: dict[str, MetricOptions]


def preset_names() -> list[str]:
    """Configs of the group ``metrics`` (``conf/metrics/``): presets (several metrics) and one file per metric."""
    return searchpath.group_names("metrics")


def _load_group_file(name: str) -> dict[str, Any]:
    """A config of the group ``metrics`` as Hydra composes it: its defaults list (other configs of the
    group, e.g. a preset listing one file per metric) first, then its own keys (``_self_`` last)."""
    from omegaconf import OmegaConf

    node = searchpath.merged("metrics", name)
    if node is None:
        raise ValueError(f"unknown metrics preset or metric {name!r}; available in conf/metrics/ "
                         f"({searchpath.primary()}): {', '.join(preset_names())}")
    return OmegaConf.to_container(OmegaConf.create(node), resolve=True) or {}


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
    names, optional, options, problems = [], set(), {}, []
    for name, opts in metrics.items():
        opts = dict(opts or {})
        module = opts.pop(MODULE_KEY, None)
        if module and name not in METRICS:  # a metric defined outside srbench: its YAML names its module
            importlib.import_module(str(module))
        spec = METRICS.get(name)  # raises with the available names
        flag = opts.pop("optional", False)
        if not isinstance(flag, bool):
            problems.append(f"metrics.{name}.optional={flag!r}: invalid value; allowed: true or false")
        elif flag:
            optional.add(name)
        try:
            options[name] = spec.parse(opts)  # every metric's options checked before any work
        except ValueError as err:
            problems += str(err).split("\n  - ")[1:]
        names.append(name)
    if problems:
        raise ValueError("invalid metric options:\n  - " + "\n  - ".join(problems))
    return MetricSelection(tuple(names), frozenset(optional), options)


def option_problems(metrics: Any) -> list[str]:
    """Every problem of ``cfg.metrics`` (unknown metric, unknown option, wrong type or value), one
    line each, as :func:`resolve` finds them; empty when there is none."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(metrics, DictConfig):
        metrics = OmegaConf.to_container(metrics, resolve=True)
    try:
        resolve(metrics)
    except ValueError as err:
        lines = str(err).split("\n  - ")
        return lines[1:] if len(lines) > 1 else lines
    return []


# Register the built-in metrics.
from benchmark.metrics import pyiqa_metrics  # noqa: E402,F401
from benchmark.metrics import deep, fid  # noqa: E402,F401
