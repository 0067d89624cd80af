"""Where srbench's Hydra configs are: ``bench.yaml`` and the groups ``method/``, ``dataset/``,
``metrics/`` (and ``hydra/launcher/``), and the names they hold (with suggestions for mistyped ones).

At the bottom of the import graph (it imports nothing from the project), so the registries,
the metrics and the config checks all ask it, and none of them imports another for it.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from pathlib import Path

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


def close_names(name: str, names: list[str], n: int = 3) -> list[str]:
    """The known names a mistyped ``name`` most likely means, best first: names that contain it
    (``esrgan`` -> ``realesrgan``), difflib's closest matches, then names it contains."""
    low = name.lower()
    longer = sorted((x for x in names if low and x != name and low in x.lower()), key=lambda x: (len(x), x))
    shorter = sorted((x for x in names if low and x != name and x.lower() in low), key=lambda x: (-len(x), x))
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    return list(dict.fromkeys(longer + close + shorter))[:n]


def did_you_mean(name: str, names: list[str]) -> str:
    """`` (did you mean 'a' or 'b'?)`` for a mistyped name, or "" when nothing is close."""
    close = close_names(name, names)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
