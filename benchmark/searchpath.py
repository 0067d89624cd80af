"""Where srbench's Hydra configs are, read through Hydra's config search path, and the names they
hold (with suggestions for mistyped ones).

``bench.yaml`` and the groups ``method/``, ``dataset/``, ``metrics/`` (and ``hydra/launcher/``)
form the *primary* entry of Hydra's search path (:func:`primary`):

* ``$SRBENCH_CONF`` when set (a folder, or a Hydra URI such as ``pkg://mypkg.conf``);
* the ``conf/`` folder of the source checkout this package runs from (``python run_bench.py``,
  ``pip install -e .``), so a checkout always uses its own files;
* otherwise ``pkg://srbench_conf``: ``conf/`` as ``pip install .`` installs it (pyproject.toml maps
  the package ``srbench_conf`` to ``conf/``), found by import, from any directory.

Every reader goes through Hydra's config repository over that search path (Hydra's own configs,
the primary entry, any ``SearchPathPlugin`` installed in ``hydra_plugins``, the structured
configs): the group names of the registries and the command-line checks, the metric presets,
the ``_target_`` of a preset, the text of a preset for the help of a required key, and the
compositions of the entry points (:func:`initialize`). Nothing joins file paths under ``conf/``.

At the bottom of the import graph (it imports nothing from the project), so the registries,
the metrics and the config checks all ask it and none of them imports another for it.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.resources
import importlib.util
import os
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

CONF_PACKAGE = "srbench_conf"  # conf/ as installed by `pip install .` (pyproject.toml: package-dir)
ENV = "SRBENCH_CONF"  # a folder (or Hydra URI) used instead of srbench's own configs
PKG = "pkg://"


def primary() -> str:
    """The primary entry of Hydra's search path: an absolute folder or ``pkg://srbench_conf``.

    Raises FileNotFoundError, naming both places looked at and the fix, when neither a checkout's
    ``conf/`` nor the installed ``srbench_conf`` package exists.
    """
    env = os.environ.get(ENV)
    if env:
        return env if "://" in env else str(Path(env).expanduser().resolve())
    checkout = Path(__file__).resolve().parent.parent / "conf"
    if (checkout / "bench.yaml").is_file():
        return str(checkout)
    if importlib.util.find_spec(CONF_PACKAGE) is not None:
        return PKG + CONF_PACKAGE
    raise FileNotFoundError(f"srbench's configs are missing: no {checkout}/bench.yaml and no installed "
                            f"{CONF_PACKAGE} package; reinstall srbench (pip install .) or set {ENV}=<conf dir>")


def _entry(conf: str | os.PathLike | None) -> str:
    """``conf`` as a search-path entry (None: :func:`primary`)."""
    if conf is None:
        return primary()
    text = str(conf)
    return text if "://" in text else str(Path(text).expanduser().resolve())


def repository(conf: str | os.PathLike | None = None) -> Any:
    """Hydra's config repository over srbench's search path (``conf``: another primary entry).

    ``hydra._internal`` is Hydra's only API that reads configs without initialising the global
    Hydra state, which must stay untouched while a run is inside ``@hydra.main``.
    """
    from hydra._internal.config_repository import ConfigRepository
    from hydra._internal.utils import create_config_search_path

    return ConfigRepository(create_config_search_path(_entry(conf)))


def group_names(group: str, conf: str | os.PathLike | None = None) -> list[str]:
    """Names of a config group (``method``, ``dataset``, ``metrics``), sorted: every config of the group
    on the search path."""
    from hydra.core.object_type import ObjectType

    return repository(conf).get_group_options(group, ObjectType.CONFIG)


def exists(group: str, name: str, conf: str | os.PathLike | None = None) -> bool:
    """Whether ``<group>/<name>`` is a config on the search path."""
    return repository(conf).config_exists(f"{group}/{name}")


def load(group: str, name: str, conf: str | os.PathLike | None = None
         ) -> tuple[dict[str, Any], list[str | dict[str, Any]]] | None:
    """The own keys of config ``<group>/<name>`` (interpolations unresolved) and its defaults list as
    written: a config of the same group as its name (``["gan", "_self_"]``), a group choice as
    ``{group: choice}`` (``{"method": "noise_control"}``). None when the group has no such config.
    ``group=""``: a config at the top of the search path (``bench``)."""
    from hydra.core.default_element import GroupDefault

    found = repository(conf).load_config(f"{group}/{name}" if group else name)
    if found is None:
        return None
    own = OmegaConf.to_container(found.config, resolve=False) if isinstance(found.config, DictConfig) else {}
    defaults: list[str | dict[str, Any]] = [{str(d.group): d.value} if isinstance(d, GroupDefault) else str(d.path)
                                            for d in found.defaults_list or []]
    return dict(own or {}), defaults


def merged(group: str, name: str, conf: str | os.PathLike | None = None,
           _seen: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Config ``<group>/<name>`` merged with the same-group configs of its defaults list, in list order,
    its own keys where ``_self_`` stands (last when absent, as Hydra >= 1.1); None when it does not exist.

    Hydra composes a group entry the same way; this is the fast path for the registries and the
    metric presets (a full composition loads Hydra's own configs too, ~0.5 s).
    """
    found = load(group, name, conf)
    if found is None:
        return None
    own, defaults = found
    if "_self_" not in defaults:
        defaults = defaults + ["_self_"]
    out = OmegaConf.create()
    for entry in defaults:
        if not isinstance(entry, str):
            continue  # a choice of another group: composed with that group, not into this node
        if entry == "_self_":
            out = OmegaConf.merge(out, own)
            continue
        parent = entry.removeprefix(f"/{group}/").removeprefix(f"{group}/")
        if parent in _seen + (name,):
            continue  # a loop in defaults lists: Hydra reports it when it composes
        node = merged(group, parent, conf, _seen + (name,))
        if node is not None:
            out = OmegaConf.merge(out, node)
    return OmegaConf.to_container(out, resolve=False)  # type: ignore[return-value]


def text(group: str, name: str, conf: str | os.PathLike | None = None) -> str | None:
    """The YAML text of config ``<group>/<name>`` (with its comments), from the search-path entry that
    holds it; None when no folder or package entry holds it."""
    repo = repository(conf)
    path = f"{group}/{name}.yaml"
    for source in repo.get_sources():
        if not source.is_config(f"{group}/{name}"):
            continue
        if source.scheme() == "file":
            return (Path(source.path) / path).read_text(encoding="utf-8")
        if source.scheme() == "pkg":
            return importlib.resources.files(source.path.replace("/", ".")).joinpath(path).read_text(encoding="utf-8")
        return None
    return None


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


@contextlib.contextmanager
def initialize(conf: str | os.PathLike | None = None, job_name: str = "srbench") -> Iterator[None]:
    """Hydra's global state initialised on srbench's search path, for ``hydra.compose`` (the weights
    doctor, tests); cleared before and after."""
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    entry = _entry(conf)
    GlobalHydra.instance().clear()
    try:
        if entry.startswith(PKG):
            with initialize_config_module(entry[len(PKG):], job_name=job_name, version_base="1.3"):
                yield
        else:
            with initialize_config_dir(config_dir=entry.removeprefix("file://"), job_name=job_name,
                                       version_base="1.3"):
                yield
    finally:
        GlobalHydra.instance().clear()
