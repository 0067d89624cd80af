"""Typed schema of the top-level config and the checks Hydra's types cannot express.

The schema is registered in Hydra's ConfigStore as ``bench_schema`` and listed first in
``conf/bench.yaml``'s defaults, so a wrong type (``runs=abc``) or an unknown key
(``rnus=3``) fails during composition, naming the key, before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig


@dataclass
class ShardSchema:
    """Which slice of the images this process runs: image j goes to shard ``j % count``."""

    index: int = 0
    count: int = 1


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
    weights_dir: Optional[str] = None


ConfigStore.instance().store(name="bench_schema", node=BenchSchema)

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def validate(cfg: DictConfig) -> None:
    """Range checks on the top-level keys; each error names the key and the allowed values."""
    problems = []
    if cfg.runs < 1:
        problems.append(f"runs={cfg.runs}: runs must be an integer >= 1 (the paper uses 10)")
    if cfg.seed < 0:
        problems.append(f"seed={cfg.seed}: seed must be an integer >= 0")
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
    shard = cfg.get("shard")
    if shard is not None and not (shard.count >= 1 and 0 <= shard.index < shard.count):
        problems.append(f"shard.index={shard.index} shard.count={shard.count}: need shard.count >= 1 and "
                        f"0 <= shard.index < shard.count (shards are numbered 0 .. count-1)")
    if problems:
        raise ValueError("invalid configuration:\n  - " + "\n  - ".join(problems))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; an explicit CUDA device must exist."""
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
        available = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ValueError(f"unknown {GROUPS[group]} {', '.join(map(repr, unknown))} in {arg!r}; "
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
        raise ValueError(f"unknown key {top!r} in {arg!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                         + f"; allowed top-level keys: {', '.join(allowed)}; options of a method or data set "
                           f"are set as method.<key>=... or dataset.<key>=...")
