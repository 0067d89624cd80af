"""Typed metric options: one dataclass per metric, validated before any work.

Every option of every metric is a field of that metric's options dataclass, declared with
:func:`option` (default, allowed values or minimum, one-line doc). :func:`parse_options`
turns the raw mapping of ``cfg.metrics.<name>`` into an instance, and refuses

* an unknown option (``metrics.ssim.no_such_option=1``),
* a value of the wrong type (``metrics.ssim.downsample=maybe``),
* a value outside its allowed set or range (``metrics.psnr.color_space=ycrcb``,
  ``metrics.fid.inception_batch_size=-1``),
* an old name of a renamed option (``metrics.fid.batch_size``, see
  :data:`benchmark.config.RENAMED_METRIC_OPTIONS`), saying the new name,

with a :class:`ValueError` naming the metric, the option, the value and the allowed values.
The same dataclasses are the defaults of ``conf/metrics/<name>.yaml`` (tests/test_metric_options.py
checks that every file declares exactly these options with these defaults), so every option is
settable as ``metrics.<name>.<option>=...`` without Hydra's ``+``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from benchmark.config import renamed_metric_option

# pyiqa's colour spaces for the Y channel (``pyiqa.utils.color_util.to_y_channel``): any other
# name silently falls through to the first RGB channel (R), so the name is checked here.
PYIQA_COLOR_SPACES = ("yiq", "ycbcr", "lhm")
BACKENDS = ("fast", "pyiqa")

# Selection-level keys accepted in every metric's mapping; not options of how a value is computed.
SELECTION_KEYS = ("optional",)


def option(default: Any, doc: str, *, choices: Sequence[Any] | None = None,
           minimum: float | None = None) -> Any:
    """A field of an options dataclass: ``default``, ``doc``, and ``choices`` or ``minimum``."""
    return field(default=default, metadata={"doc": doc, "choices": tuple(choices) if choices else None,
                                            "minimum": minimum})


@dataclass(frozen=True)
class MetricOptions:
    """Base of every metric's options (a metric without options uses it as it is)."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class OptionInfo:
    """What the options schema says about one option (for docs, ``list`` and the tests)."""

    name: str
    type: Any
    default: Any
    doc: str
    choices: tuple[Any, ...] | None
    minimum: float | None

    def allowed(self) -> str:
        """The allowed values in words, for error messages."""
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        base = _type_words(self.type)
        return base + (f" >= {self.minimum:g}" if self.minimum is not None else "")


def _type_words(tp: Any) -> str:
    args = typing.get_args(tp)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return (_type_words(inner[0]) if inner else "") + " or null"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def schema(cls: type[MetricOptions]) -> list[OptionInfo]:
    """The options of ``cls`` in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        md = f.metadata or {}
        out.append(OptionInfo(f.name, hints[f.name], f.default, md.get("doc", ""), md.get("choices"),
                              md.get("minimum")))
    return out


def _coerce(info: OptionInfo, value: Any) -> tuple[bool, Any]:
    """(ok, value converted to the option's type). Strings of a str option may come from
    YAML or the command line as numbers (``metrics.lpips.version=0.1``): they are turned back
    into text; nothing else is converted."""
    tp = info.type
    args = typing.get_args(tp)
    if type(None) in args:
        if value is None:
            return True, None
        tp = next(a for a in args if a is not type(None))
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        if isinstance(value, str):
            return True, value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, str(value)
        return False, value
    return True, value


def parse_options(metric: str, cls: type[MetricOptions], raw: Mapping[str, Any] | MetricOptions | None
                  ) -> MetricOptions:
    """Validate ``raw`` (``cfg.metrics.<metric>`` without the selection keys) into ``cls``.

    An instance of ``cls`` passes through unchanged. Raises ValueError listing every problem:
    unknown options (with the known ones), wrong types and values outside the allowed set.
    """
    if isinstance(raw, cls):
        return raw
    if isinstance(raw, MetricOptions):
        raise ValueError(f"metric {metric}: options of type {type(raw).__name__}, expected {cls.__name__}")
    raw = dict(raw or {})
    for key in SELECTION_KEYS:
        raw.pop(key, None)
    infos = {i.name: i for i in schema(cls)}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        info = infos.get(str(key))
        if info is None:
            renamed = renamed_metric_option(metric, key, repr(value), infos)
            if renamed:
                problems.append(renamed)
                continue
            known = ", ".join(infos) if infos else "none"
            problems.append(f"metrics.{metric}.{key}={value!r}: unknown option of metric {metric}; "
                            f"its options: {known}")
            continue
        ok, conv = _coerce(info, value)
        if ok and info.choices is not None and conv is not None:
            ok = conv in info.choices
        if ok and info.minimum is not None and conv is not None and conv < info.minimum:
            ok = False
        if not ok:
            problems.append(f"metrics.{metric}.{key}={value!r}: invalid value for option {key!r} of metric "
                            f"{metric}; allowed: {info.allowed()}")
            continue
        values[info.name] = conv
    if problems:
        raise ValueError("invalid metric options:\n  - " + "\n  - ".join(problems))
    return cls(**values)
