"""Registries (house style rule 1): one name -> object mapping per kind; unknown names list what exists.

* :class:`Registry`: objects registered in code (metrics: one :class:`~benchmark.metrics.MetricSpec` each).
* :class:`GroupRegistry`: methods and data sets, whose names ARE the configs of a Hydra config group
  (``conf/method/<name>.yaml``, ``conf/dataset/<name>.yaml``, found on Hydra's search path by
  :mod:`benchmark.searchpath`); the object of a name is the class its YAML's ``_target_`` names. Nothing else lists the names, so a new method is its module and
  its YAML, and a data set can be a YAML file alone.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from hydra.utils import get_class

from benchmark import searchpath
from benchmark.searchpath import did_you_mean

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

    def get(self, name: str) -> type:
        node = searchpath.merged(self.group, name)  # its file with the same-group files it inherits (defaults:)
        if node is not None:
            target = node.get("_target_")
            if not target:
                raise ValueError(f"config {self.group}/{name}.yaml has no _target_ (nor inherits one through "
                                 f"defaults:): a {self.kind} config names its class with _target_: <module>.<Class>")
            return get_class(str(target))
        return super().get(name)

    def add(self, name: str, obj: type) -> None:
        self._items[name] = obj  # the YAML of the same name stays the truth (see get)

    def names(self) -> list[str]:
        return sorted(set(searchpath.group_names(self.group)) | set(self._items))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()
