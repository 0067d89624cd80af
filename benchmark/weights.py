"""Files that metrics and methods need (weights, model parameters): what they are, where they
are cached, and fetching the missing ones.

The runner calls :func:`fetch_missing` (metric files) and :func:`check_method_files` before any
generation: missing files are downloaded when the network is reachable, and otherwise the run
stops with an error naming each file and the command that fetches it. The weights doctor CLI
(``python -m benchmark weights``) lives in :mod:`benchmark.doctor`.

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
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlparse

import torch
import torch.hub
from hydra.core.hydra_config import HydraConfig

from benchmark.files import WeightFile  # noqa: F401  (re-exported: metrics and methods declare their files with it)
from benchmark.sources import fetch_planned, with_user_keys

log = logging.getLogger("srbench")

OFFLINE_ENV = ("HF_HUB_OFFLINE", "SRBENCH_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}


# ----------------------------------------------------------------------------- locations


def hub_dir() -> Path:
    """torch's hub folder, read at call time (``$TORCH_HOME/hub`` unless torch.hub.set_dir was used)."""
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


def reasons_by_host(urls: Iterable[str], timeout: float = 3.0) -> dict[str, str | None]:
    """For each URL, why its host cannot be reached now (None when it answers), probing each host once.

    So a message can blame the host a file really comes from: a Hugging Face file is not held back
    by an unreachable Google Drive. ``HF_HUB_OFFLINE=1`` / ``SRBENCH_OFFLINE=1`` stand for every host.
    """
    urls = list(urls)
    out: dict[str, str | None] = {}
    by_host: dict[tuple[str, int], str | None] = {}
    for u in urls:
        if u in out:
            continue
        if not urlparse(u).hostname:
            out[u] = offline_reason([], timeout)
            continue
        hp = _host_port(u)
        if hp not in by_host:
            by_host[hp] = offline_reason([u], timeout)
        out[u] = by_host[hp]
    return out


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
    errors: dict[str, str] = {}
    for w in files:
        if w.present:
            continue
        if not w.has_address:  # nothing to download from (a preset that only describes the file, a path given)
            errors[str(w.path)] = w.no_address
            continue
        if w.planned is not None:  # a method file: its preset's sources (official, then mirrors), verified
            try:
                fetch_planned(w.planned)
            except Exception as err:  # noqa: BLE001  (every origin failed: the message names each)
                errors[str(w.path)] = str(err)
            continue
        w.path.parent.mkdir(parents=True, exist_ok=True)
        print(f"downloading {w.url} -> {w.path}", file=sys.stderr)
        try:
            # download_url_to_file writes a temporary file and moves it into place when complete
            torch.hub.download_url_to_file(w.url, str(w.path), hash_prefix=_hash_prefix(w.url), progress=True)
        except Exception as err:  # noqa: BLE001  (network errors come in many types)
            errors[str(w.path)] = f"{type(err).__name__}: {err}"
    return errors


#: top-level keys whose overrides change which files a run needs (everything else, e.g. runs=, dataset=,
#: output_dir=, is left out of the suggested fetch command)
FETCH_KEYS = ("method", "metrics", "weights_dir")


def fetch_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides that decide which files are needed (:data:`FETCH_KEYS`), in their order."""
    out = []
    for o in overrides:
        if o.startswith("-") or "=" not in o:
            continue
        top = re.split(r"[./@=]", o.lstrip("+~"), maxsplit=1)[0]
        if top in FETCH_KEYS:
            out.append(o)
    return out


def fetch_command(overrides: Sequence[str] | None = None) -> str:
    """The doctor command that fetches what a run with these overrides needs (only the overrides that
    decide the files: method, metrics, weights_dir)."""
    args = " ".join(shlex.quote(o) for o in fetch_overrides(overrides or []))
    return f"python -m benchmark weights {args + ' ' if args else ''}--download"


def _run_overrides() -> list[str] | None:
    """The command-line overrides of the current Hydra run, when there is one."""
    try:
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
    reasons = reasons_by_host(w.url for w in files)
    errors = download([w for w in files if reasons[w.url] is None])
    if all(w.present for w in files):
        return
    lines = []
    for metric, ws in missing.items():
        for w in ws:
            if w.present:
                continue
            extra = (f" [download failed: {errors[str(w.path)]}]" if str(w.path) in errors else
                     f" [cannot be downloaded: {reasons[w.url]}]" if reasons.get(w.url) else "")
            lines.append(f"{metric}: {w.name} -> {w.path}{extra}\n      curl -L --create-dirs -o "
                         f"{shlex.quote(str(w.path))} {w.url}")
    overrides = _run_overrides()
    why = sorted({r for w in files if not w.present and (r := reasons.get(w.url))})
    raise FileNotFoundError(
        "metric files are missing" + (f" and cannot be downloaded ({'; '.join(why)})" if why else "")
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
    cfg = {k: v for k, v in with_user_keys(method_cfg).items() if k != "_target_"}
    name = str(cfg.get("name", method_cls.__name__))
    files = [w for w in method_cls.weight_files(**cfg) if not w.present]
    if not files:
        return
    # each file's own host decides whether it can be fetched now, and is the one a message blames
    probe = dict(zip(map(id, files), _probe_urls(files)))
    reasons = reasons_by_host(probe.values())
    reason_of = {id(w): reasons[probe[id(w)]] if w.has_address else w.no_address for w in files}
    ours = [w for w in files if w.planned is not None and reason_of[id(w)] is None]
    errors: dict[str, str] = {}
    if ours:
        print(f"method {name}: fetching {len(ours)} missing file(s) into {_common_root(ours)}", file=sys.stderr)
        errors = download(ours)
    # files the method's own loader fetches (no plan) are left to it when their host answers
    later = [w for w in files if not w.present and w.planned is None and reason_of[id(w)] is None]
    files = [w for w in files if not w.present and (w.planned is not None or reason_of[id(w)] is not None)]
    if not files:
        if later:
            log.info("method %s will download %s", name, ", ".join(w.name for w in later))
        return
    lines, notes = [], []
    # each file says why it cannot be fetched when that differs between files (one host down, another up)
    per_file = len({reason_of[id(w)] for w in files}) > 1 or bool(errors)
    for w in files:
        why = (w.planned.problem() if w.planned is not None else None) or w.status.lower()
        if str(w.path) in errors:
            why += f"; download failed: {errors[str(w.path)]}"
        elif reason_of[id(w)] and per_file:
            why += f"; cannot be downloaded: {reason_of[id(w)]}"
        src = (w.planned.sources_text() if w.planned is not None else w.url if w.has_address
               else w.url.removeprefix("see ") or "the path you gave")
        lines.append(f"{w.name} -> {w.path} ({why})\n      from {src}")
        if w.planned is not None and w.planned.entry.note and w.planned.entry.note not in notes:
            notes.append(w.planned.entry.note)  # once per source entry, not once per file
    lines += [f"note: {n}" for n in notes]
    overrides = _run_overrides() or [f"method={name}"]
    offline = sorted({r for w in files if (r := reason_of[id(w)])})
    head = (f"method {name} needs files that are missing" + (f" and cannot be downloaded ({'; '.join(offline)})"
            if offline else " and could not be fetched"))
    if not any(w.has_address for w in files):  # only by hand: `weights --download` could not fetch them either
        how = (f"\nGet them as conf/method/{name}.yaml describes and put them at the paths above, or set "
               f"{path_keys_hint(files)} to where they are.")
    else:
        how = (f"\nFetch them with `{fetch_command(overrides)}` (on a machine with network; then copy "
               f"{_common_root(files)} here, or set weights_dir=<dir> or {path_keys_hint(files)} to where they are).")
    raise FileNotFoundError(head + "; nothing was generated:\n  - " + "\n  - ".join(lines) + how)


def path_keys_hint(files: Sequence[WeightFile]) -> str:
    """The method keys that hold the paths of ``files`` (``method.sd_path=<path>, method.ccsr_path=<path>``),
    from the ``sources`` entries of its preset; files declared otherwise point at conf/method/."""
    keys = list(dict.fromkeys(f"method.{w.planned.entry.key}=<path>" for w in files if w.planned is not None))
    others = [w for w in files if w.planned is None]
    if others:
        name = others[0].needed_by.removeprefix("method ").removesuffix(" (optional)")
        keys.append(f"the method's path keys (see conf/method/{name}.yaml)")
    return ", ".join(keys) or "the method's path keys (see conf/method/)"


def _probe_urls(files: Sequence[WeightFile]) -> list[str]:
    """The URLs whose hosts must answer to fetch ``files`` (a declared file: its first origin)."""
    return [w.planned.entry.origins[0].host_url() if w.planned is not None else w.url for w in files]


def _common_root(files: Sequence[WeightFile]) -> str:
    try:
        return str(Path(os.path.commonpath([str(w.path.parent) for w in files])))
    except ValueError:
        return str(files[0].path.parent)
