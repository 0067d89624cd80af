"""Files that metrics and methods need (weights, model parameters), where they are cached.

The weights doctor (``python -m benchmark weights [overrides] [--download]``) lists, for the
config a run would use, every file with its source URL, cache path, presence and size, and
fetches the missing ones on a machine with network. The runner calls :func:`fetch_missing`
before any generation: it downloads missing files when the network is reachable and stops
with an error naming each file and the command that fetches it when it is not.

Cache locations follow torch: ``$TORCH_HOME/hub/pyiqa`` (pyiqa's weights),
``$TORCH_HOME/hub/checkpoints`` (torchvision backbones), ``$TORCH_HOME/hub/clip`` (OpenAI
CLIP, as pyiqa's CLIP loader). ``weights_dir=<dir>`` makes ``<dir>`` the TORCH_HOME.

Method files are declared as data in each method preset (``sources:``, see
:mod:`benchmark.sources`) and cached under ``<weights_dir>/methods/`` (``weights_dir`` null:
``$SRBENCH_CACHE`` or ``~/.cache/srbench``); the presets' paths default to that cache.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import socket
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

log = logging.getLogger("srbench")

OFFLINE_ENV = ("HF_HUB_OFFLINE", "SRBENCH_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class WeightFile:
    """A file a metric or method needs before it can run."""

    name: str
    url: str
    path: Path
    needed_by: str
    #: a method file declared in its preset's ``sources`` (:class:`benchmark.sources.Planned`): srbench
    #: fetches it (official source, then mirrors) and checks its size; None for metric files
    planned: Any = field(default=None, compare=False, repr=False)

    @property
    def present(self) -> bool:
        """The file is there (for a declared method file: under its name or an accepted alternative,
        with the declared size)."""
        if self.planned is not None:
            return self.planned.problem() is None
        return self.path.is_file()

    @property
    def status(self) -> str:
        """``present``, ``MISSING`` or what is wrong (``WRONG SIZE``)."""
        if self.present:
            return "present"
        if self.planned is not None and self.planned.found() is not None:
            return "WRONG SIZE"
        return "MISSING"

    @property
    def size(self) -> int | None:
        p = self.planned.found() if self.planned is not None else (self.path if self.path.is_file() else None)
        return p.stat().st_size if p is not None else None


# ----------------------------------------------------------------------------- locations


def hub_dir() -> Path:
    """torch's hub folder, read at call time (``$TORCH_HOME/hub`` unless torch.hub.set_dir was used)."""
    import torch

    return Path(torch.hub.get_dir())


def hub_file(subdir: str, url: str, needed_by: str, name: str | None = None) -> WeightFile:
    """A file downloaded from ``url`` into ``<hub>/<subdir>/`` under its URL's base name."""
    name = name or os.path.basename(urlparse(url).path)
    return WeightFile(name, url, hub_dir() / subdir / name, needed_by)


def apply_weights_dir(weights_dir: str | os.PathLike | None) -> None:
    """Use ``weights_dir`` as TORCH_HOME for this process (and its children).

    torchvision, OpenAI CLIP (through pyiqa) and srbench's own wrappers read the hub folder at
    call time, so setting the variable before any metric is built is enough. ``None`` keeps
    the environment's TORCH_HOME.
    """
    if weights_dir in (None, ""):
        return
    path = Path(weights_dir).expanduser().resolve()
    os.environ["TORCH_HOME"] = str(path)
    log.info("weights_dir=%s: metric and backbone files are looked up under %s", path, path / "hub")


# ----------------------------------------------------------------------------- network


def offline_reason(urls: Iterable[str], timeout: float = 3.0) -> str | None:
    """Why files cannot be downloaded now (None when every host answers).

    ``HF_HUB_OFFLINE=1`` (or ``SRBENCH_OFFLINE=1``) means offline without probing; otherwise
    a TCP connection to each URL's host is tried once.
    """
    for var in OFFLINE_ENV:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}={os.environ[var]} is set"
    for host, port in sorted({_host_port(u) for u in urls if urlparse(u).hostname}):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as err:
            return f"{host} is not reachable ({err})"
    return None


def _host_port(url: str) -> tuple[str, int]:
    """Host and TCP port of a URL (443 for https, 80 for http, unless the URL names one)."""
    parts = urlparse(url)
    return str(parts.hostname), parts.port or (80 if parts.scheme == "http" else 443)


def _hash_prefix(url: str) -> str | None:
    """SHA-256 (prefix) that the source itself checks: torchvision's file names, CLIP's URL path."""
    parts = urlparse(url)
    if parts.hostname == "download.pytorch.org":
        m = re.search(r"-([a-f0-9]{6,})\.", os.path.basename(parts.path))
        return m.group(1) if m else None
    if parts.hostname == "openaipublic.azureedge.net" and "/clip/models/" in parts.path:
        return parts.path.split("/")[-2]
    return None


def download(files: Iterable[WeightFile]) -> dict[str, str]:
    """Download each missing file to its path (atomically); return {path: error} for failures."""
    from torch.hub import download_url_to_file

    errors: dict[str, str] = {}
    for w in files:
        if w.present:
            continue
        if w.planned is not None:  # a method file: its preset's sources (official, then mirrors), verified
            from benchmark.sources import fetch_planned

            try:
                fetch_planned(w.planned)
            except Exception as err:  # noqa: BLE001  (every origin failed: the message names each)
                errors[str(w.path)] = str(err)
            continue
        w.path.parent.mkdir(parents=True, exist_ok=True)
        print(f"downloading {w.url} -> {w.path}", file=sys.stderr)
        try:
            # download_url_to_file writes a temporary file and moves it into place when complete
            download_url_to_file(w.url, str(w.path), hash_prefix=_hash_prefix(w.url), progress=True)
        except Exception as err:  # noqa: BLE001  (network errors come in many types)
            errors[str(w.path)] = f"{type(err).__name__}: {err}"
    return errors


def fetch_command(overrides: Sequence[str] | None = None) -> str:
    """The doctor command that fetches what a run with these overrides needs."""
    args = " ".join(shlex.quote(o) for o in (overrides or []))
    return f"python -m benchmark weights {args + ' ' if args else ''}--download"


def _run_overrides() -> list[str] | None:
    """The command-line overrides of the current Hydra run, when there is one."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return [o for o in HydraConfig.get().overrides.task if not o.startswith(("hydra.", "output_dir="))]
    except Exception:  # noqa: BLE001  (no Hydra context: plain Python use)
        pass
    return None


def fetch_missing(missing: Mapping[str, Sequence[WeightFile]]) -> None:
    """Make the files of ``missing`` ({metric: files}) present, or stop before any generation.

    With network, missing files are downloaded. Offline (``HF_HUB_OFFLINE=1`` or an
    unreachable host), or when a download fails, a FileNotFoundError names every missing file,
    where it goes, and the commands that fetch it.
    """
    files = [w for ws in missing.values() for w in ws if not w.present]
    if not files:
        return
    reason = offline_reason(w.url for w in files)
    errors: dict[str, str] = {}
    if reason is None:
        errors = download(files)
        if not errors:
            return
    lines = []
    for metric, ws in missing.items():
        for w in ws:
            if w.present:
                continue
            extra = f" [download failed: {errors[str(w.path)]}]" if str(w.path) in errors else ""
            lines.append(f"{metric}: {w.name} -> {w.path}{extra}\n      curl -L --create-dirs -o "
                         f"{shlex.quote(str(w.path))} {w.url}")
    overrides = _run_overrides()
    raise FileNotFoundError(
        "metric files are missing" + (f" and cannot be downloaded ({reason})" if reason else "")
        + "; nothing was generated:\n  - " + "\n  - ".join(lines)
        + f"\nFetch them on a machine with network with `{fetch_command(overrides)}` (copy the files to the "
          "paths above, or set TORCH_HOME / weights_dir=<dir> to where they are), or pass strict=false to run "
          "without these metrics."
    )


def check_method_files(method_cls: type, method_cfg: Mapping[str, Any]) -> None:
    """Make the method's files present, or stop before any work naming each file, its sources and
    the command that fetches it.

    Files declared in the preset's ``sources`` are fetched here when the network is reachable
    (official source first, then mirrors; progress bars; verified, atomic) and checked for their
    declared size. Other declared files (a diffusers hub id) are left to the method's own loader,
    which downloads into its own cache layout, which srbench must not write into.
    """
    from benchmark.sources import with_user_keys

    cfg = {k: v for k, v in with_user_keys(method_cfg).items() if k != "_target_"}
    name = str(cfg.get("name", method_cls.__name__))
    files = [w for w in method_cls.weight_files(**cfg) if not w.present]
    if not files:
        return
    ours = [w for w in files if w.planned is not None]
    reason = offline_reason(_probe_urls(files))
    errors: dict[str, str] = {}
    if reason is None:
        if ours:
            print(f"method {name}: fetching {len(ours)} missing file(s) into {_common_root(ours)}", file=sys.stderr)
            errors = download(ours)
        files = [w for w in files if not w.present]
        if not [w for w in files if w.planned is not None]:
            if files:
                log.info("method %s will download %s", name, ", ".join(w.name for w in files))
            return
    lines = []
    for w in files:
        why = (w.planned.problem() if w.planned is not None else None) or w.status.lower()
        why += f"; download failed: {errors[str(w.path)]}" if str(w.path) in errors else ""
        src = w.planned.sources_text() if w.planned is not None else w.url
        note = f"\n      note: {w.planned.entry.note}" if w.planned is not None and w.planned.entry.note else ""
        lines.append(f"{w.name} -> {w.path} ({why})\n      from {src}{note}")
    overrides = _run_overrides() or [f"method={name}"]
    head = (f"method {name} needs files that are missing" + (f" and cannot be downloaded ({reason})" if reason
            else " and could not be fetched"))
    raise FileNotFoundError(
        head + "; nothing was generated:\n  - " + "\n  - ".join(lines)
        + f"\nFetch them with `{fetch_command(overrides)}` (on a machine with network; then copy "
          f"{_common_root(files)} here, or set weights_dir=<dir> / the method's path keys to where they are).")


def _probe_urls(files: Sequence[WeightFile]) -> list[str]:
    """The URLs whose hosts must answer to fetch ``files`` (a declared file: its first origin)."""
    return [w.planned.entry.origins[0].host_url() if w.planned is not None else w.url for w in files]


def _common_root(files: Sequence[WeightFile]) -> str:
    try:
        return str(Path(os.path.commonpath([str(w.path.parent) for w in files])))
    except ValueError:
        return str(files[0].path.parent)


# ----------------------------------------------------------------------------- the doctor


def _merge(files: Iterable[WeightFile]) -> list[WeightFile]:
    """One row per path; ``needed_by`` lists every metric or method that needs it."""
    out: dict[Path, WeightFile] = {}
    for w in files:
        if w.path in out:
            old = out[w.path]
            users = old.needed_by.split(", ")
            if w.needed_by not in users:
                out[w.path] = replace(old, needed_by=f"{old.needed_by}, {w.needed_by}")
        else:
            out[w.path] = w
    return list(out.values())


def collect(cfg: Any) -> list[WeightFile]:
    """Every file the metrics and the method of a composed config need."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from benchmark.metrics import METRICS, resolve

    files: list[WeightFile] = []
    selection = resolve(OmegaConf.to_container(cfg.metrics, resolve=True))
    for name in selection.names:
        for w in METRICS.get(name).weights(selection.options[name]):
            # optional metrics are skipped (not stopped on) when their files are missing
            files.append(WeightFile(w.name, w.url, w.path, f"{w.needed_by} (optional)")
                         if name in selection.optional else w)
    if cfg.get("method") is not None:
        from benchmark.sources import with_user_keys

        method_cfg = with_user_keys(cfg.method)
        target = method_cfg.pop("_target_", None)
        if target:
            files += get_class(target).weight_files(**method_cfg)
    return _merge(files)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"


def format_table(files: Sequence[WeightFile]) -> str:
    """Plain-text table: status, size, file, needed by, cache path, source URL."""
    rows = [("status", "size", "file", "needed by", "path", "url")]
    rows += [(w.status, _size(w.size), w.name, w.needed_by, str(w.path), w.url) for w in files]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(widths[i]) if i < 5 else c for i, c in enumerate(r)).rstrip() for r in rows)


DOCTOR_USAGE = """usage: python -m benchmark weights [override ...] [--download]

Lists every file that a run with the same overrides needs (metrics and method): status, size,
name, who needs it, cache path and source URL. Exit status 1 when a file is missing.

  override     as for run_bench.py, e.g. metrics=paper method=noise_control weights_dir=/data/torch
  --download   fetch the missing files (on a machine with network)

Metric files live under $TORCH_HOME/hub (pyiqa/, checkpoints/, clip/); weights_dir=<dir> uses <dir> as
TORCH_HOME. Method files (declared under `sources:` in conf/method/<m>.yaml) live under
<weights_dir>/methods/ (weights_dir null: $SRBENCH_CACHE, else ~/.cache/srbench); --download fetches
them from the official source, then the listed mirrors, and checks their size and SHA-256."""


def doctor(argv: Sequence[str]) -> int:
    """``python -m benchmark weights``: list (and with --download fetch) the files a run needs."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import benchmark.config  # noqa: F401  (registers the schema)
    from benchmark.config import check_group_choices
    from benchmark.metrics import conf_dir

    if any(a in ("-h", "--help") for a in argv):
        print(DOCTOR_USAGE)
        return 0
    do_download = "--download" in argv
    unknown = [a for a in argv if a.startswith("-") and a != "--download"]
    if unknown:
        print(f"unknown option(s) {' '.join(unknown)}\n\n{DOCTOR_USAGE}", file=sys.stderr)
        return 2
    overrides = [a for a in argv if a != "--download"]
    try:
        check_group_choices(overrides, conf_dir())
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(config_name="bench", overrides=overrides)
        apply_weights_dir(cfg.get("weights_dir"))
        files = collect(cfg)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        GlobalHydra.instance().clear()
    print(f"TORCH_HOME hub folder: {hub_dir()}")
    if not files:
        print("the chosen metrics and method need no files")
        return 0
    print(format_table(files))
    missing = [w for w in files if not w.present]
    if do_download and missing:
        # each host on its own: one unreachable source does not hold back the files of the others
        reasons: dict[str, str | None] = {}
        reachable = []
        for w in missing:
            url = _probe_urls([w])[0]
            host = str(_host_port(url)) if urlparse(url).hostname else ""
            if host not in reasons:
                reasons[host] = offline_reason([url])
            if reasons[host] is None:
                reachable.append(w)
        for reason in sorted({r for r in reasons.values() if r}):
            print(f"cannot download: {reason}", file=sys.stderr)
        if reachable:
            for path, err in download(reachable).items():
                print(f"failed: {path}: {err}", file=sys.stderr)
            print()
            print(format_table(files))
        missing = [w for w in files if not w.present]
    if missing:
        print(f"\n{len(missing)} file(s) missing." + ("" if do_download else
              f" Fetch them with `{fetch_command(overrides)}` on a machine with network, or pass "
              "strict=false to run without the metrics that need them."))
        return 1
    print(f"\nall {len(files)} file(s) present")
    return 0
