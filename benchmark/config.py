"""Typed schema of the top-level config and the checks Hydra's types cannot express.

The schema is registered in Hydra's ConfigStore as ``bench_schema`` and listed first in
``conf/bench.yaml``'s defaults, so a wrong type (``runs=abc``) or an unknown key
(``rnus=3``) fails during composition, naming the key, before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig, OmegaConf

from benchmark.data import folder_name
from benchmark.errors import UserError

if TYPE_CHECKING:  # torch is imported where a device is made: typos in a command line fail fast
    import torch


@dataclass
class ShardSchema:
    """Which slice of the images this process runs: image j goes to shard ``j % count``."""

    index: int = 0
    count: int = 1


@dataclass
class StatsSchema:
    """Confidence intervals of every reported number (benchmark/stats.py, issue 18)."""

    enabled: bool = True  # false: no intervals in results.json, plain best/second marking in reports
    resamples: int = 2000  # bootstrap resamples per interval
    seed: int = 0  # seed of the bootstrap (recorded in results.json)
    level: float = 0.95  # confidence level of the intervals and of the best-vs-second tests


@dataclass
class BenchSchema:
    runs: int = 10
    seed: int = 0
    crop_border: int = 4
    # metric name -> its options, composed from conf/metrics/ (a preset, or one file per name)
    metrics: Dict[str, Any] = MISSING
    device: str = "auto"
    batch_size: int = 10
    output_dir: str = "reports"
    strict: bool = True
    overwrite: bool = False
    method: Any = MISSING
    dataset: Any = MISSING
    # image sharding: shard.index=i shard.count=k runs every k-th image; merge with `python -m benchmark merge`
    shard: ShardSchema = field(default_factory=ShardSchema)
    # run a deterministic method twice per image and fail if the outputs differ (issue 7)
    check_determinism: bool = False
    # folder used as TORCH_HOME for metric/backbone weights (<dir>/hub/pyiqa, .../checkpoints, .../clip); null: $TORCH_HOME
    # and the cache of method files (<dir>/methods/; null: $SRBENCH_CACHE or ~/.cache/srbench, see benchmark/sources.py)
    weights_dir: Optional[str] = None
    # largest image (width x height, pixels) any decoder opens, checked from the header; null: PIL's 89478485
    max_pixels: Optional[int] = None
    # true: INFO lines of third-party libraries (pyiqa's "Network [...] is created") are shown
    verbose: bool = False
    # true: generation, PNG writing (background thread) and scoring (from memory, scorer thread) overlap;
    # false: generate everything, then score the stored PNGs. Both give the same scores (benchmark/pipeline.py)
    pipeline: bool = True
    # bootstrap confidence intervals and significance of best-vs-second (benchmark/stats.py)
    stats: StatsSchema = field(default_factory=StatsSchema)


ConfigStore.instance().store(name="bench_schema", node=BenchSchema)

# ${srbench_weights:<path>}: where `python -m benchmark weights --download` puts a method's files; the
# presets' path keys (method.model_path, method.sd_path ...) default to it
from benchmark.sources import register_resolver  # noqa: E402

register_resolver()


def folder_name_resolver(*, _parent_: Any) -> str:
    """OmegaConf resolver ``${srbench_folder_name:}`` (conf/dataset/folder.yaml's ``name``): the data set
    name :func:`benchmark.data.folder_name` derives from the node's ``lr_dir`` and ``hr_dir``, so
    ``hydra.run.dir``, the results folder and the reports all use it. ``folder`` while ``lr_dir`` is
    unset (the preflight names that key)."""
    if OmegaConf.is_missing(_parent_, "lr_dir") or _parent_.get("lr_dir") in (None, ""):
        return "folder"
    hr = None if OmegaConf.is_missing(_parent_, "hr_dir") else _parent_.get("hr_dir")
    return folder_name(str(_parent_.lr_dir), str(hr) if hr not in (None, "") else None)


def _register_folder_name() -> None:
    if not OmegaConf.has_resolver("srbench_folder_name"):
        OmegaConf.register_new_resolver("srbench_folder_name", folder_name_resolver, use_cache=False)


_register_folder_name()

# bench.yaml and the config groups, read through Hydra's search path
from benchmark import searchpath  # noqa: E402
from benchmark.searchpath import close_names, did_you_mean, group_names  # noqa: E402,F401

MAX_SEED = 2**63 - 1  # largest seed of a run: signed 64-bit, as scores.csv stores it
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
_PATH_CHARS = re.compile(r"[/\\\x00]")  # a name with these would write outside output_dir/<dataset>/<method>


def validate(cfg: DictConfig) -> None:
    """Range checks on the top-level keys; each error names the key and the allowed values.

    Raises UserError listing every problem. The metrics' typed options are checked above this
    module, by :func:`benchmark.preflight.validate` (config does not import the metrics).
    """
    found = problems(cfg)
    if found:
        raise UserError("invalid configuration:\n  - " + "\n  - ".join(found))


def problems(cfg: DictConfig) -> list[str]:
    """Every problem of the top-level keys (:func:`validate`), one line each; empty when none."""
    problems = []
    if cfg.runs < 1:
        problems.append(f"runs={cfg.runs}: runs must be an integer >= 1 (the paper uses 10)")
    if cfg.seed < 0:
        problems.append(f"seed={cfg.seed}: seed must be an integer >= 0")
    elif cfg.runs >= 1 and cfg.seed + cfg.runs - 1 > MAX_SEED:
        # torch.Generator takes seeds up to 2**64-1, but scores.csv, results.json and pandas
        # store seeds as signed 64-bit integers: the last run's seed must fit there
        problems.append(f"seed={cfg.seed} runs={cfg.runs}: the last run's seed seed + runs - 1 = "
                        f"{cfg.seed + cfg.runs - 1} exceeds {MAX_SEED} (2**63 - 1, the largest seed srbench "
                        f"stores); use seed <= {MAX_SEED - cfg.runs + 1}")
    if cfg.crop_border < 0:
        problems.append(f"crop_border={cfg.crop_border}: crop_border must be an integer >= 0 (default 4)")
    if cfg.batch_size < 1:
        problems.append(f"batch_size={cfg.batch_size}: batch_size must be an integer >= 1 "
                        f"(how many runs of one image go through the method in one call)")
    if not _DEVICE.match(str(cfg.device)):
        problems.append(f"device={cfg.device}: device must be one of auto, cpu, cuda, cuda:N, mps")
    if not str(cfg.output_dir):
        problems.append("output_dir is empty: give a folder, e.g. output_dir=reports")
    if not cfg.metrics:
        problems.append("metrics is empty: choose a preset (metrics=fast) or a list of names (metrics=[psnr,ssim])")
    for key in ("dataset", "method"):  # each is one folder of output_dir/<dataset>/<method>
        name = OmegaConf.select(cfg, f"{key}.name", default=None, throw_on_missing=False)
        if isinstance(name, str) and (_PATH_CHARS.search(name) or name.strip() in (".", "..")):
            problems.append(f"{key}.name={name}: a {key} name is one folder inside output_dir "
                            f"(output_dir/<dataset>/<method>): no '/' or '\\', not '.' or '..'; "
                            f"choose a plain name, e.g. {key}.name=my_{key}")
    shard = cfg.get("shard")
    if shard is not None and not (shard.count >= 1 and 0 <= shard.index < shard.count):
        problems.append(f"shard.index={shard.index} shard.count={shard.count}: need shard.count >= 1 and "
                        f"0 <= shard.index < shard.count (shards are numbered 0 .. count-1)")
    st = cfg.get("stats")
    if st is not None:
        if st.resamples < 100:
            problems.append(f"stats.resamples={st.resamples}: need an integer >= 100 bootstrap resamples "
                            f"(default 2000)")
        if not 0.5 <= st.level < 1:
            problems.append(f"stats.level={st.level}: need a confidence level in [0.5, 1), e.g. 0.95")
        if st.seed < 0:
            problems.append(f"stats.seed={st.seed}: stats.seed must be an integer >= 0")
    return problems


def resolve_device(name: str) -> "torch.device":
    """``auto`` -> cuda when available, else cpu; an explicit CUDA device must exist."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name} but CUDA is not available on this machine: use device=cpu or device=auto")
    return dev


def build(node: DictConfig) -> Any:
    """``hydra.utils.instantiate``, but a user error raised by the constructor (ValueError,
    FileNotFoundError, ...) reaches the user as itself, with its message naming the file and the
    fix, instead of wrapped in Hydra's InstantiationException.

    Values of the wrong type for the constructor's annotated parameters (``method.sigma=abc``)
    are refused first, naming the key, the expected type and the value (:func:`value_problems`).
    """
    problems = value_problems(node)
    if problems:
        raise UserError("; ".join(problems) if len(problems) == 1 else
                        f"{len(problems)} value(s) of the wrong type:\n  - " + "\n  - ".join(problems))
    try:
        return instantiate(node)
    except InstantiationException as err:
        if isinstance(err.__cause__, (ValueError, OSError)):
            raise err.__cause__ from None
        raise


GROUPS = {"method": "method", "dataset": "dataset", "metrics": "metric or metrics preset"}


def _suggest(key: str, names: list[str]) -> str:
    """Did-you-mean for a key: the single closest declared key (keys are short; one guess reads best)."""
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_group_choices(argv: list[str], conf: str | os.PathLike | None = None) -> None:
    """Fail early, listing what exists, when a command line names an unknown config choice.

    Hydra lists the options of a group for ``method=nope`` but not for a list such as
    ``metrics=[psnr,nope]`` or a sweep ``-m method=a,nope``; this check covers every form.
    ``conf``: the primary search-path entry (a folder or ``pkg://`` URI; None: srbench's, see
    :func:`benchmark.searchpath.primary`).
    """
    for arg in argv:
        m = re.match(r"^(method|dataset|metrics)=(.*)$", arg)
        if not m:
            continue
        group, value = m.groups()
        names = [v.strip().strip("'\"") for v in re.split(r",", value.strip().strip("[]")) if v.strip()]
        available = group_names(group, conf)
        unknown = [n for n in names if n not in available]
        if unknown:
            hints = [f"{n!r}: did you mean {' or '.join(map(repr, close))}?" for n in unknown
                     if (close := close_names(n, available))]
            raise UserError(f"unknown {GROUPS[group]} {', '.join(map(repr, unknown))} in {arg!r}"
                            + (f" ({'; '.join(hints)})" if hints else "")
                            + f"; available in conf/{group}/: {', '.join(available)}")


def check_override_keys(argv: list[str]) -> None:
    """Fail early, listing the allowed keys, when a command line sets an unknown top-level key.

    Hydra rejects ``rnus=3`` too, but only says the key is not in ``BenchSchema``.
    """
    allowed = sorted(f.name for f in dataclasses.fields(BenchSchema))
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        top = re.split(r"[./@]", arg.split("=", 1)[0].lstrip("+~"), maxsplit=1)[0]
        if top == "hydra" or top in allowed:
            continue
        close = difflib.get_close_matches(top, allowed, n=1)
        raise UserError(f"unknown key {top!r} in {arg!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                         + f"; allowed top-level keys: {', '.join(allowed)}; options of a method or data set "
                           f"are set as method.<key>=... or dataset.<key>=...")


# ----------------------------------------------------------------------------- nested keys

_NESTED = re.compile(r"^(?P<plus>\+{0,2}|~)(?P<group>method|dataset|metrics)\.(?P<rest>[^=]+)=")


def _default_choices(conf: str | os.PathLike | None) -> dict[str, str]:
    """The group choices of ``bench.yaml``'s defaults list (``method: noise_control`` ...)."""
    from hydra.core.default_element import GroupDefault

    found = searchpath.repository(conf).load_config("bench")
    return {str(d.group): str(d.value) for d in (found.defaults_list if found else [])
            if isinstance(d, GroupDefault) and isinstance(d.value, str)}


def _choices(argv: list[str], conf: str | os.PathLike | None, group: str) -> list[str]:
    """The config files of ``group`` a command line selects (several in a sweep)."""
    chosen = [_default_choices(conf).get(group, "")]
    for arg in argv:
        m = re.match(rf"^{group}=(.*)$", arg)
        if m:
            chosen = [v.strip().strip("'\"") for v in m.group(1).strip().strip("[]").split(",") if v.strip()]
    return [c for c in chosen if c]


def _accepted_params(target: str | None) -> tuple[set[str], bool] | None:
    """Constructor parameters of ``target`` and whether it takes ``**kwargs``; None if unknown."""
    import inspect

    if not target:
        return None
    try:
        from hydra.utils import get_class

        sig = inspect.signature(get_class(target).__init__)
    except Exception:  # noqa: BLE001  (a target that cannot be imported here is checked when the run builds it)
        return None
    params = {p.name for p in sig.parameters.values() if p.name != "self"
              and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return params, any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def _group_node(conf: str | os.PathLike | None, group: str, choice: str) -> dict | None:
    """The keys of config ``<group>/<choice>`` merged with its defaults list, as Hydra composes them."""
    return searchpath.merged(group, choice, conf)


# Metric options that were renamed: old name -> new name. An old name is refused (never mapped
# silently) with an error giving the new one, wherever it comes from: the command line
# (check_nested_keys) or a mapping given to benchmark.metrics.options.parse_options.
RENAMED_METRIC_OPTIONS: dict[str, str] = {
    # issue 11: the top-level batch_size is runs per method call, this one images per Inception pass
    "batch_size": "inception_batch_size",
}


def renamed_metric_option(metric: str, key: str, value: Any, options: Any) -> str | None:
    """The error for an old option name of ``metric`` whose new name is among ``options``; else None."""
    new = RENAMED_METRIC_OPTIONS.get(str(key))
    if new is None or new not in options:
        return None
    return (f"metrics.{metric}.{key}={value}: option {key!r} of metric {metric} was renamed to {new!r}; "
            f"use metrics.{metric}.{new}={value}")


def _chosen_metrics(argv: list[str], conf: str | os.PathLike | None) -> list[str]:
    """The metric names the command line selects (any of a sweep's), in order; [] when a choice is
    unknown (check_group_choices names it)."""
    chosen: list[str] = []
    for choice in _choices(argv, conf, "metrics"):
        node = searchpath.merged("metrics", choice, conf)
        if node is None:
            return []
        chosen += [k for k in node if k not in chosen]
    return chosen


def check_nested_keys(argv: list[str], conf: str | os.PathLike | None = None) -> None:
    """Fail early on ``method.<key>=`` / ``dataset.<key>=`` / ``metrics.<name>.<key>=`` typos.

    Hydra rejects ``method.sigm=0.1`` with a raw "not in struct" error whose hint
    (``+method.sigm=0.1``) then fails inside the constructor with a TypeError. Here the key is
    compared with the keys the chosen config file declares (and, for ``+key``, with the
    parameters its ``_target_`` accepts), and the error suggests the closest declared key.
    """
    targets = {a.split("=", 1)[0].lstrip("+"): a.split("=", 1)[1] for a in argv
               if re.match(r"^\+{0,2}(method|dataset)\._target_=", a)}
    chosen_metrics: list[str] | None = None  # read once, at the first metrics.<name>.<key>= override
    for arg in argv:
        m = _NESTED.match(arg)
        if not m or m.group("plus") == "~":
            continue
        group, rest, plus = m.group("group"), m.group("rest"), m.group("plus")
        if group == "metrics":
            parts = rest.split(".")
            if len(parts) < 2 or plus:
                continue  # metrics.<name>=... or +metrics...: options are checked by the metric's schema
            name, key = parts[0], parts[1]
            if chosen_metrics is None:
                chosen_metrics = _chosen_metrics(argv, conf)
            if chosen_metrics and name not in chosen_metrics:
                raise UserError(f"{arg}: metric {name!r} is not among the chosen metrics "
                                f"({', '.join(chosen_metrics)}), so it has no options to set; choose it too, e.g. "
                                f"metrics=[{','.join(chosen_metrics + [name])}] {arg}")
            found = searchpath.load("metrics", name, conf)
            if found is None:
                continue
            declared = sorted((found[0].get(name) or {}).keys())
            if key in declared:
                continue
            renamed = renamed_metric_option(name, key, arg.split("=", 1)[1], declared)
            if renamed:
                raise UserError(renamed)
            raise UserError(f"metric {name!r} declares no option {key!r} in {arg!r}{_suggest(key, declared)}; "
                            f"its options: {', '.join(declared) or 'none'} (conf/metrics/{name}.yaml)")
        key = rest.split(".")[0]
        if key == "_target_":
            continue
        for choice in _choices(argv, conf, group):
            node = _group_node(conf, group, choice)
            if node is None:
                continue  # unknown choice: check_group_choices names it
            declared = sorted(k for k in node if k not in ("defaults", "_target_"))
            if key in declared:
                continue
            accepted = _accepted_params(targets.get(f"{group}._target_", node.get("_target_")))
            if plus and (accepted is None or key in accepted[0] or accepted[1]):
                continue  # the constructor takes it (or cannot be inspected here)
            options = sorted(set(declared) | (accepted[0] if accepted else set()))
            if not plus and accepted and key in accepted[0]:
                raise UserError(f"{group} {choice!r} accepts {key!r} but conf/{group}/{choice}.yaml does not declare "
                                f"it: set it with +{arg}")
            raise UserError(f"{group} {choice!r} has no option {key!r} (in {arg!r}){_suggest(key, options)}; "
                            f"its options: {', '.join(options)} (conf/{group}/{choice}.yaml)")


# ----------------------------------------------------------------------------- value types


def _describe(tp: Any) -> str | None:
    """``an integer``, ``a number (float)`` ... for a type a value can be checked against; None otherwise."""
    import types
    import typing

    if tp is type(None):
        return "null"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number (float)"
    if tp is str:
        return "a string"
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(tp)]
        return None if None in parts else " or ".join(parts)
    return None  # containers, paths, Any, classes: left to the constructor


def _fits(value: Any, tp: Any) -> bool:
    """Whether ``value`` (as Hydra passes it to the constructor) fits annotation ``tp``.

    Python's own rules, except that an integer is accepted where a float is expected (PEP 484's
    numeric tower) and a bool is never an integer (``true`` for a count is a slip). A string
    annotation accepts numbers too: YAML reads ``name: 123`` as an integer.
    """
    import types
    import typing

    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(tp))
    return True


def _param_types(cls: type) -> dict[str, Any]:
    """Annotation of each constructor parameter of ``cls`` that can be evaluated (one at a time, so
    an annotation naming a type only imported for type checkers loses that parameter only)."""
    import inspect
    import sys

    try:
        init = cls.__init__
        sig = inspect.signature(init)
    except (TypeError, ValueError):
        return {}
    namespace = dict(vars(sys.modules.get(init.__module__, object())))
    out = {}
    for name, param in sig.parameters.items():
        ann = param.annotation
        if ann is inspect.Parameter.empty or name == "self":
            continue
        if isinstance(ann, str):
            try:
                ann = eval(ann, namespace)  # noqa: S307  (the class's own annotation text, as typing.get_type_hints does)
            except Exception:  # noqa: BLE001
                continue
        out[name] = ann
    return out


def _shown(value: Any) -> str:
    kind = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})"


def value_problems(node: Any, group: str | None = None) -> list[str]:
    """Values of a ``_target_`` config node that do not fit the annotated constructor parameters.

    One line per key, e.g. ``method.sigma: expected a number (float), got 'abc' (a string); e.g.
    method.sigma=0.05``. Keys whose value is an interpolation are judged where the interpolation
    points (``method.scale: ${dataset.scale}`` is reported as ``dataset.scale``); keys the
    constructor does not annotate with a checkable type (paths, lists, classes) are left to it.
    """
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    if not isinstance(node, DictConfig) or OmegaConf.is_missing(node, "_target_") or not node.get("_target_"):
        return []
    group = group or (node._key() if node._key() is not None else "config")
    try:
        cls = get_class(str(node._target_))
    except Exception:  # noqa: BLE001  (an unimportable target fails when it is built, naming itself)
        return []
    types_ = _param_types(cls)
    defaults = _param_defaults(cls)
    raw = OmegaConf.to_container(node, resolve=False)
    problems = []
    for key, tp in types_.items():
        if key not in raw or OmegaConf.is_missing(node, key):
            continue
        if isinstance(raw[key], str) and "${" in raw[key]:
            continue  # an interpolation: the key it points at is checked in its own node
        value = raw[key]
        want = _describe(tp)
        if want is None or _fits(value, tp):
            continue
        example = defaults.get(key)
        hint = f"; e.g. {group}.{key}={json_like(example)}" if example is not None else ""
        problems.append(f"{group}.{key}: expected {want}, got {_shown(value)}{hint}")
    return problems


def _param_defaults(cls: type) -> dict[str, Any]:
    import inspect

    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return {}
    return {n: p.default for n, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


def json_like(value: Any) -> str:
    """A value as it is written on the command line (``true``, ``null``, ``0.05``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def check_override_values(argv: list[str]) -> None:
    """Fail early, in srbench's words, when a command line gives a top-level key a value of the wrong
    type (``runs=abc``): the key, the type :class:`BenchSchema` declares and the value given.

    The value is converted exactly as Hydra will (OmegaConf's rules: ``runs='5'`` is fine), one
    value at a time for a sweep (``-m runs=1,x``). Keys of ``method``/``dataset``/``metrics`` are
    checked against their own declarations (:func:`value_problems`, the metric schemas).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    args = [a for a in argv if not a.startswith("-") and "=" in a]
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except Exception:  # noqa: BLE001  (a syntax error: Hydra reports it, quoting the override)
        return
    problems = []
    for o in overrides:
        key = o.key_or_group
        top = re.split(r"[./]", key)[0]  # a group override (hydra/launcher=parallel) belongs to its top group
        if o.is_delete() or "/" in key or o.package or top in ("hydra", "method", "dataset", "metrics") \
                or _schema_type(key) is None:
            continue  # config groups, Hydra's own keys, free-form nodes, unknown keys (named by check_override_keys)
        if o.is_sweep_override():
            try:
                values = list(o.sweep_iterator())
            except Exception:  # noqa: BLE001  (interval sweeps cannot be listed; Hydra checks them)
                continue
        else:
            values = [o.value()]
        schema = OmegaConf.structured(BenchSchema)
        want = _schema_type(key)
        for value in values:
            try:
                OmegaConf.update(schema, key, value, merge=True)
            except OmegaConfBaseException:
                what = f"expected {want}" if want else "wrong type"
                default = OmegaConf.select(OmegaConf.structured(BenchSchema), key, default=None)
                hint = f"; default {key}={json_like(default)}" if default is not None else ""
                problems.append(f"{key}={o.input_line.split('=', 1)[1] if o.input_line else value}: {what}, "
                                f"got {_shown(value)}{hint}")
                break
    if problems:
        raise UserError("; ".join(problems) if len(problems) == 1 else
                        "invalid values:\n  - " + "\n  - ".join(problems))


def _schema_type(key: str) -> str | None:
    """What :class:`BenchSchema` expects at a dotted key (``an integer``), None when unknown."""
    import typing

    cls: Any = BenchSchema
    tp: Any = None
    for part in key.split("."):
        if not dataclasses.is_dataclass(cls):
            return None
        hints = typing.get_type_hints(cls)
        if part not in hints:
            return None
        tp = hints[part]
        cls = tp
    return _describe(tp)
