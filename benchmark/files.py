"""Files on disk, at the bottom of the import graph: a file a metric or method needs
(:class:`WeightFile`), the SHA-256 of a file's bytes, and srbench's cache folder.

Data sets, metrics, methods and the weights locator all use these; they live here, importing
nothing from the project, so that none of those modules has to import another for them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse


def file_sha256(path: str | os.PathLike) -> bytes:
    """SHA-256 digest of a file's bytes, read in 1 MiB chunks (content hashes of data sets,
    reference-feature caches and converted parameter files all use it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


@contextmanager
def building_folder(tmp: Path, dest: Path) -> Iterator[Path]:
    """Build a folder under the hidden name ``tmp``; when the block ends without error, ``tmp``
    replaces ``dest`` (an older ``dest`` is removed first), so ``dest`` is never seen half built.
    ``tmp`` is removed whether or not the block succeeds (the demo and synthetic data sets)."""
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def default_cache_dir() -> Path:
    """srbench's cache folder: ``$SRBENCH_CACHE``, default ``~/.cache/srbench`` (the demo data set,
    FID reference features, converted NIQE parameters)."""
    return Path(os.environ.get("SRBENCH_CACHE", Path.home() / ".cache" / "srbench"))


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
    def has_address(self) -> bool:
        """Whether the file can be downloaded at all: its preset declares sources, or its ``url`` is an
        http(s)/ftp address (a hub id is given as its https URL). A file of a preset that only
        describes where it comes from (``url`` "see conf/method/<name>.yaml") or at a path the user
        gave (no ``url``) has none: the user gets it by hand."""
        if self.planned is not None:
            return True
        parts = urlparse(self.url)
        return parts.scheme in ("http", "https", "ftp") and bool(parts.hostname)

    @property
    def no_address(self) -> str:
        """Why :attr:`has_address` is False, for messages."""
        return (f"no download address is declared for it: get it as {self.url.removeprefix('see ')} describes"
                if self.url else "no download address is declared for it: it is a path you gave")

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
