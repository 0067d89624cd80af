"""Typed schema of the top-level config and the checks Hydra's types cannot express.

The schema is registered in Hydra's ConfigStore as ``bench_schema`` and listed first in
``conf/bench.yaml``'s defaults, so a wrong type (``runs=abc``) or an unknown key
(``rnus=3``) fails during composition, naming the key, before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig

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

CONF_PACKAGE = "srbench_conf"  # conf/ as installed by `pip install .` (pyproject.toml: package-dir)


def conf_dir() -> Path:
    """The folder holding ``bench.yaml`` and the config groups (method/, dataset/, metrics/, hydra/).

    In order: ``$SRBENCH_CONF``; the ``conf/`` of the source checkout this package runs from
    (``python run_bench.py``, ``pip install -e .``); the installed data package ``srbench_conf``
    (``pip install .``), so the installed ``srbench`` command works from any directory.
    """
    if os.environ.get("SRBENCH_CONF"):
        return Path(os.environ["SRBENCH_CONF"])
    checkout = Path(__file__).resolve().parent.parent / "conf"
    if (checkout / "bench.yaml").is_file():
        return checkout
    spec = importlib.util.find_spec(CONF_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    raise FileNotFoundError(f"srbench's configs are missing: no {checkout}/bench.yaml and no installed "
                            f"{CONF_PACKAGE} package; reinstall srbench (pip install .) or set SRBENCH_CONF=<conf dir>")


def group_names(group: str) -> list[str]:
    """Names of a config group (``method``, ``dataset``, ``metrics``): its YAML files, sorted."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))

MAX_SEED = 2**63 - 1  # largest seed of a run: signed 64-bit, as scores.csv stores it
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def validate(cfg: DictConfig) -> None:
    """Range checks on the top-level keys; each error names the key and the allowed values."""
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
    else:
        problems += _metric_option_problems(cfg)
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
    if problems:
        raise UserError("invalid configuration:\n  - " + "\n  - ".join(problems))


def _metric_option_problems(cfg: DictConfig) -> list[str]:
    """Every metric's options against its typed schema (unknown option, wrong type or value)."""
    from omegaconf import OmegaConf

    from benchmark.metrics import resolve

    try:
        resolve(OmegaConf.to_container(cfg.metrics, resolve=True))
    except ValueError as err:
        lines = str(err).split("\n  - ")
        return lines[1:] if len(lines) > 1 else lines
    return []


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
    fix, instead of wrapped in Hydra's InstantiationException."""
    try:
        return instantiate(node)
    except InstantiationException as err:
        if isinstance(err.__cause__, (ValueError, OSError)):
            raise err.__cause__ from None
        raise


GROUPS = {"method": "method", "dataset": "dataset", "metrics": "metric or metrics preset"}


def check_group_choices(argv: list[str], conf: Path) -> None:
    """Fail early, listing what exists, when a command line names an unknown config choice.

    Hydra lists the options of a group for ``method=nope`` but not for a list such as
    ``metrics=[psnr,nope]`` or a sweep ``-m method=a,nope``; this check covers every form.
    """
    for arg in argv:
        m = re.match(r"^(method|dataset|metrics)=(.*)$", arg)
        if not m:
            continue
        group, value = m.groups()
        names = [v.strip().strip("'\"") for v in re.split(r",", value.strip().strip("[]")) if v.strip()]
        available = sorted(p.stem for p in (Path(conf) / group).glob("*.yaml"))
        unknown = [n for n in names if n not in available]
        if unknown:
            raise UserError(f"unknown {GROUPS[group]} {', '.join(map(repr, unknown))} in {arg!r}; "
                             f"available in conf/{group}/: {', '.join(available)}")


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


def _default_choices(conf: Path) -> dict[str, str]:
    """The group choices of ``bench.yaml``'s defaults list (``method: noise_control`` ...)."""
    from omegaconf import OmegaConf

    out: dict[str, str] = {}
    for item in OmegaConf.to_container(OmegaConf.load(conf / "bench.yaml")).get("defaults", []):
        if isinstance(item, dict):
            for k, v in item.items():
                if isinstance(v, str):
                    out[str(k)] = v
    return out


def _choices(argv: list[str], conf: Path, group: str) -> list[str]:
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


def _group_node(conf: Path, group: str, choice: str) -> dict | None:
    """The keys of ``conf/<group>/<choice>.yaml`` as Hydra composes them (its defaults list included)."""
    if not (conf / group / f"{choice}.yaml").is_file():
        return None
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose(config_name="bench", overrides=[f"{group}={choice}"])
        return OmegaConf.to_container(cfg[group], resolve=False)
    finally:
        GlobalHydra.instance().clear()


def _suggest(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_nested_keys(argv: list[str], conf: Path) -> None:
    """Fail early on ``method.<key>=`` / ``dataset.<key>=`` / ``metrics.<name>.<key>=`` typos.

    Hydra rejects ``method.sigm=0.1`` with a raw "not in struct" error whose hint
    (``+method.sigm=0.1``) then fails inside the constructor with a TypeError. Here the key is
    compared with the keys the chosen config file declares (and, for ``+key``, with the
    parameters its ``_target_`` accepts), and the error suggests the closest declared key.
    """
    from omegaconf import OmegaConf

    targets = {a.split("=", 1)[0].lstrip("+"): a.split("=", 1)[1] for a in argv
               if re.match(r"^\+{0,2}(method|dataset)\._target_=", a)}
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
            path = conf / "metrics" / f"{name}.yaml"
            if not path.is_file():
                continue
            declared = sorted((OmegaConf.to_container(OmegaConf.load(path)).get(name) or {}).keys())
            if key in declared:
                continue
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
