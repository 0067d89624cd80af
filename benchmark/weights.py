"""Files that metrics and methods need (weights, model parameters), where they are cached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WeightFile:
    """A file a metric or method needs before it can run."""

    name: str
    url: str
    path: Path
    needed_by: str

    @property
    def present(self) -> bool:
        return self.path.is_file()

    @property
    def size(self) -> int | None:
        return self.path.stat().st_size if self.present else None
