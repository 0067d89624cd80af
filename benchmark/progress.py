"""Progress that suits where the output goes: a tqdm bar on a terminal, periodic one-line log
records otherwise (CI, Slurm, ``| tee``), where carriage-return updates become one huge line.

``SRBENCH_PROGRESS_INTERVAL`` (seconds, default 30) sets how often the one-line records come;
the first and the last are always written.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

log = logging.getLogger("srbench")
T = TypeVar("T")


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("SRBENCH_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


class Progress:
    """``update(n)`` / ``close()`` like a tqdm bar; a bar only when stderr is a terminal."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = int(total), desc, unit
        self.tty = sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True) if self.tty else None
        self.done = 0
        self.t0 = self.last = time.monotonic()
        self.interval = _interval()
        if not self.tty:
            log.info("%s: 0/%d %s", desc, self.total, unit)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.interval and self.done < self.total:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            log.info("%s: %d/%d %s (%.0f%%), %.0f s elapsed, about %.0f s left", self.desc, self.done, self.total,
                     self.unit, 100.0 * self.done / max(self.total, 1), now - self.t0, eta)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            log.info("%s: %d/%d %s in %.1f s", self.desc, self.done, self.total, self.unit, time.monotonic() - self.t0)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], total: int, desc: str, unit: str) -> Iterator[T]:
    """Iterate ``items`` with a :class:`Progress` (closed when the loop ends or breaks)."""
    with Progress(total, desc, unit) as p:
        for item in items:
            yield item
            p.update(1)
