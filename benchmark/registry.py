"""Registries (house style rule 1): one name -> object mapping per kind; unknown names list what exists.

* :class:`Registry`: objects registered in code (metrics: one :class:`~benchmark.metrics.MetricSpec` each).
* :class:`GroupRegistry`: methods and data sets, whose names ARE the files of a Hydra config group
  (``conf/method/<name>.yaml``, ``conf/dataset/<name>.yaml``); the object of a name is the class
  its YAML's ``_target_`` names. Nothing else lists the names, so a new method is its module and
  its YAML, and a data set can be a YAML file alone.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from hydra.utils import get_class
from omegaconf import OmegaConf

from benchmark.searchpath import conf_dir, did_you_mean, group_names

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping whose lookups fail with the list of known names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name")`` adds the decorated object under ``name``."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}{did_you_mean(str(name), self.names())}; "
                f"available {self.kind}s: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


class GroupRegistry(Registry[type]):
    """Names from the Hydra config group ``group``; each name's class from its YAML's ``_target_``.

    ``register``/``add`` are accepted for classes used without a config file (tests, plug-ins);
    a name with a YAML file always resolves to that file's ``_target_``.
    """

    def __init__(self, kind: str, group: str) -> None:
        super().__init__(kind)
        self.group = group

    def _target(self, name: str, seen: tuple[str, ...] = ()) -> str | None:
        """``_target_`` of ``<group>/<name>.yaml``, else of the same-group files it inherits (``defaults:``)."""
        node = OmegaConf.load(conf_dir() / self.group / f"{name}.yaml")
        if node.get("_target_"):
            return str(node["_target_"])
        for entry in reversed(list(node.get("defaults") or [])):  # later defaults override earlier ones
            parent = str(entry).removeprefix(f"/{self.group}/").removeprefix(f"{self.group}/") \
                if isinstance(entry, str) else None
            if parent and parent != "_self_" and parent not in seen \
                    and (conf_dir() / self.group / f"{parent}.yaml").is_file():
                found = self._target(parent, seen + (name,))
                if found:
                    return found
        return None

    def get(self, name: str) -> type:
        path = conf_dir() / self.group / f"{name}.yaml"
        if path.is_file():
            target = self._target(name)
            if not target:
                raise ValueError(f"{path} has no _target_ (nor inherits one through defaults:): a {self.kind} "
                                 f"config names its class with _target_: <module>.<Class>")
            return get_class(target)
        return super().get(name)

    def add(self, name: str, obj: type) -> None:
        self._items[name] = obj  # the YAML of the same name stays the truth (see get)

    def names(self) -> list[str]:
        return sorted(set(group_names(self.group)) | set(self._items))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()
