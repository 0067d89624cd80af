"""Everything a run lacks, found before any work and reported in one message.

Two layers:

* :class:`Preflight`, a Hydra callback (see ``conf/bench.yaml``), runs before Hydra creates any
  folder: the range checks of :func:`validate` (top-level keys and metric options), the writability of
  ``output_dir``, and then :func:`check` below. Hydra turns an exception raised by a callback
  into a warning and carries on, so a failed check raises :class:`benchmark.errors.Abort`
  (a ``BaseException``, which Hydra does not catch); the entry point prints ``error: <why>``
  and exits 2 (see :mod:`benchmark.errors`).
* :func:`check` runs every registered check (:data:`CHECKS`) on a composed config and collects
  *all* problems: unset required keys (``???``, each with what it is, where it goes and how to
  set it), the data set, the method's files, the metrics' files, precomputed outputs. It raises
  one :class:`PreflightError` listing them, or returns what the checks built (the validated
  data set) so the run does not build it twice. :func:`benchmark.runner.run` calls it too, so
  every job of a sweep is checked (its result is cached per config).

A check is a function ``(cfg, found) -> None`` that raises a user error (see
:func:`benchmark.errors.is_user_error`) naming its problems; ``found`` is a dict shared by the
checks of one config (``found["dataset"]`` holds the data set once its check passed). Register
one with :func:`register`; the ones that depend on others read ``found``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from hydra.experimental.callback import Callback
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from benchmark import config, errors, searchpath
from benchmark import shard as sharding
from benchmark.config import build, value_problems
from benchmark.images import set_max_pixels
from benchmark.metrics import option_problems
from benchmark.scoring import metric_files
from benchmark.sources import USER_KEYS, with_user_keys
from benchmark.weights import check_method_files, fetch_missing
from benchmark.write_errors import check_writable

Check = Callable[[DictConfig, dict], None]
CHECKS: list[tuple[str, Check]] = []


class PreflightError(errors.MissingFilesError):
    """Every problem that keeps a run from starting, in one message (exit status 2)."""


def register(title: str) -> Callable[[Check], Check]:
    """Decorator: add a check under ``title`` (shown before each of its problems)."""

    def deco(fn: Check) -> Check:
        CHECKS[:] = [(t, f) for t, f in CHECKS if t != title] + [(title, fn)]
        return fn

    return deco


def validate(cfg: DictConfig) -> None:
    """The range checks of the top-level keys (:func:`benchmark.config.validate`) and every metric's
    options against its typed schema, in one UserError listing every problem."""
    problems = config.problems(cfg)
    if cfg.get("metrics"):
        problems += option_problems(cfg.metrics)
    if problems:
        raise errors.UserError("invalid configuration:\n  - " + "\n  - ".join(problems))


# ----------------------------------------------------------------------------- running the checks


_CACHE: dict[str, dict] = {}


def _key(cfg: DictConfig) -> str:
    node = {k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"}
    return json.dumps(node, sort_keys=True, default=str)


def check(cfg: DictConfig) -> dict:
    """Run every check on ``cfg``; raise one :class:`PreflightError` listing all problems.

    Returns the ``found`` dict of the checks (``found["dataset"]``: the validated data set). The
    result is cached per config, so the callback and the run do the work once.
    """
    set_max_pixels(cfg.get("max_pixels"))  # before any image is opened (data set validation decodes them)
    key = _key(cfg)
    if key in _CACHE:
        return _CACHE[key]
    found: dict[str, Any] = {"missing_keys": _missing_keys(cfg)}
    problems: list[tuple[str, str]] = []
    for title, fn in CHECKS:
        try:
            fn(cfg, found)
        except Exception as exc:  # noqa: BLE001  (bugs are re-raised below)
            if not errors.is_user_error(exc):
                raise
            problems.append((title, errors.message(exc)))
    if problems:
        raise PreflightError(format_problems(problems))
    _CACHE.clear()  # one config per process at a time; keeps a sweep's memory flat
    _CACHE[key] = found
    return found


def format_problems(problems: list[tuple[str, str]]) -> str:
    """``this run cannot start: N problem(s)`` and one numbered block per problem."""
    blocks = []
    for i, (title, text) in enumerate(problems, 1):
        body = text.strip().replace("\n", "\n   ")
        blocks.append(f"{i}. {title}: {body}")
    return (f"this run cannot start, nothing was generated; {len(problems)} problem(s) to fix:\n\n"
            + "\n\n".join(blocks) + "\n\nFix them, then run the same command again.")


# ----------------------------------------------------------------------------- required keys


def _missing_keys(cfg: DictConfig) -> list[str]:
    """Full keys of ``???`` values outside ``hydra`` (whose sweep keys are unset in a single run)."""
    out: list[str] = []
    for k in cfg:
        if k == "hydra":
            continue
        node = cfg._get_node(k)
        if OmegaConf.is_missing(cfg, k):
            out.append(str(k))
        elif OmegaConf.is_config(node):
            out += sorted(OmegaConf.missing_keys(node))  # full keys (method.sd_path)
    return sorted(out)


def _choice(cfg: DictConfig, group: str) -> str | None:
    """The config file chosen for ``group`` (``ccsr`` for method=ccsr), from Hydra's runtime record."""
    try:
        if "hydra" in cfg:  # the callback sees the whole config
            return cfg.hydra.runtime.choices.get(group)
    except Exception:  # noqa: BLE001
        pass
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return HydraConfig.get().runtime.choices.get(group)
    except Exception:  # noqa: BLE001  (no Hydra context: plain Python use)
        pass
    return None


def key_help(conf_file: Path, key: str) -> list[str]:
    """What a required key is, from its config file's comments (:func:`key_help_text`); [] when the
    file does not exist."""
    return key_help_text(conf_file.read_text(), key) if conf_file.is_file() else []


def key_help_text(yaml_text: str | None, key: str) -> list[str]:
    """What a required key is, from the comments of its config's YAML text.

    The key's own line comment (``repo: ???  # the clone described above``) and every comment
    line that names the key or starts an ``Install:`` / ``Weights:`` note (with its indented
    continuation lines) — the notes the preset files keep for exactly this purpose.
    """
    if not yaml_text:
        return []
    out: list[str] = []
    own: list[str] = []  # the key's line comment, shown first
    in_note = False
    for line in yaml_text.splitlines():
        stripped = line.strip()
        m = re.match(rf"^{re.escape(key)}:\s*\?\?\?\s*#\s*(.*)$", stripped)
        if m:
            own.append(m.group(1).strip())
            continue
        if not stripped.startswith("#"):
            in_note = False
            continue
        text = stripped.lstrip("#").rstrip()
        if in_note and line.lstrip("#").startswith("   "):  # continuation of a note
            out.append(text.strip())
            continue
        in_note = bool(re.match(r"^\s*(Install|Weights)\b", text)) or bool(re.search(rf"\b{re.escape(key)}\b", text))
        if in_note:
            out.append(text.strip())
    seen: set[str] = set()
    return [x for x in own + out if x and not (x in seen or seen.add(x))]


@register("required keys")
def _required_keys(cfg: DictConfig, found: dict) -> None:
    missing = found["missing_keys"]
    if not missing:
        return
    lines = []
    for full in missing:
        group, _, key = full.partition(".")
        choice = _choice(cfg, group) if key else None
        where = f" (conf/{group}/{choice}.yaml)" if choice else ""
        notes = key_help_text(searchpath.text(group, choice), key.split(".")[-1]) if choice else []
        text = f"{full} is required and has no default{where}; set it: {full}=<value>"
        if notes:
            text += "\n      " + "\n      ".join(notes)
        lines.append(text)
    raise errors.UserError(f"{len(missing)} required key(s) unset:\n  - " + "\n  - ".join(lines))


@register("config values")
def _config_values(cfg: DictConfig, found: dict) -> None:
    """Method and data set values of the wrong type for their class (``method.sigma=abc``), named
    with the key, the expected type and the value, before anything is built."""
    problems = []
    for group in ("method", "dataset"):
        if group in cfg and not _has_missing(found, group):
            bad = value_problems(cfg[group], group)
            if bad:
                found.setdefault("bad_values", set()).add(group)
                problems += bad
    if problems:
        raise errors.UserError(problems[0] if len(problems) == 1 else
                               f"{len(problems)} value(s) of the wrong type:\n  - " + "\n  - ".join(problems))


# ----------------------------------------------------------------------------- data set, files


def _has_missing(found: dict, group: str) -> bool:
    """``group`` cannot be built yet: a required key is unset or a value has the wrong type
    (both reported by their own checks)."""
    return (any(k.startswith(group + ".") for k in found["missing_keys"])
            or group in found.get("bad_values", ()))


@register("data set")
def _dataset(cfg: DictConfig, found: dict) -> None:
    if _has_missing(found, "dataset"):
        return  # reported under "required keys"
    dataset = build(cfg.dataset)
    dataset.samples()  # validates every image (sizes, pairs, duplicates), all problems at once
    found["dataset"] = dataset


def _method_values(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.method`` as plain values for a method's classmethods; unset (``???``) keys become None."""
    return {k: None if OmegaConf.is_missing(cfg.method, k) else
            (OmegaConf.to_container(cfg.method[k], resolve=True) if OmegaConf.is_config(cfg.method[k])
             else cfg.method[k]) for k in cfg.method}


@register("method files")
def _method_files(cfg: DictConfig, found: dict) -> None:
    """The method's declared files. Unset (``???``) keys are passed as None, so a method whose
    paths are unset still lists the files it will need (CCSR names each under
    ``<method.sd_path is not set>``); one that cannot tell yet is left to "required keys"."""
    if OmegaConf.is_missing(cfg.method, "_target_") or not cfg.method.get("_target_"):
        return
    values = _method_values(cfg)
    # which path keys still hold the preset's cache default (those files are held to the release's size)
    values[USER_KEYS] = with_user_keys(cfg.method).get(USER_KEYS, [])
    try:
        check_method_files(get_class(values["_target_"]), values)
    except Exception as exc:  # noqa: BLE001
        if errors.is_user_error(exc) or not _has_missing(found, "method"):
            raise
        # the method cannot list its files before its required keys are set: reported there


@register("method settings")
def _method_settings(cfg: DictConfig, found: dict) -> None:
    """Problems a method can tell from its config alone (its ``preflight_problems`` classmethod, if any),
    e.g. an official-repository preset without ``method.repo``."""
    if _has_missing(found, "method") or not cfg.method.get("_target_"):
        return
    hook = getattr(get_class(cfg.method._target_), "preflight_problems", None)
    if hook is None:
        return
    problems = hook(**_method_values(cfg))
    if problems:
        raise errors.UserError("\n  - ".join(problems))


@register("metric files")
def _metric_files(cfg: DictConfig, found: dict) -> None:
    dataset = found.get("dataset")
    has_hr = True if dataset is None else any(s.hr_path is not None for s in dataset.samples())
    _, missing = metric_files(cfg, has_hr)
    fetch_missing(missing)  # downloads when online; offline it raises, naming each file and command


@register("precomputed outputs")
def _precomputed_outputs(cfg: DictConfig, found: dict) -> None:
    """Methods that score outputs already on disk (``check_outputs``): every missing, duplicate,
    undecodable or mis-sized file, against the data set's images, before anything is imported."""
    if "dataset" not in found or _has_missing(found, "method") or not cfg.method.get("_target_"):
        return
    if not hasattr(get_class(cfg.method._target_), "check_outputs"):
        return
    method = build(cfg.method)
    samples = sharding.select(found["dataset"].samples(), cfg)
    problems = method.check_outputs(samples)
    if problems:
        raise errors.UserError(f"{len(problems)} problem(s) with the outputs under method.path={method.path}:\n  - "
                               + "\n  - ".join(problems))


# ----------------------------------------------------------------------------- the Hydra callback


class Preflight(Callback):
    """Validate the config, the output folder and everything :func:`check` covers, before any
    work or folder."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate(config)
            check_writable(config.output_dir)
        except (ValueError, OSError) as err:
            raise errors.Abort(err) from err
        try:
            from hydra.core.hydra_config import HydraConfig

            HydraConfig.instance().set_config(config)  # as run_job does next; messages quote the overrides
            check(config)
        except Exception as err:  # noqa: BLE001
            if errors.is_user_error(err):
                raise errors.Abort(err) from err
            raise

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # each job's own values are checked by its run (benchmark.runner.run calls check)
        try:
            validate(config)
            check_writable(config.output_dir)
        except (ValueError, OSError) as err:
            raise errors.Abort(err) from err
