"""Preflight of a run's disk and memory needs, before any work.

``runs=100000`` once generated for minutes, then died in scoring with nothing written. Scoring now
streams over runs (memory does not grow with N), and this check refuses, before anything is
generated, a configuration whose stored samples cannot fit on the disk or whose scoring cannot
fit in memory, naming the estimate and what is available.

Estimates (upper bounds, stated in the message):

* disk: every missing sample as an uncompressed 8-bit RGB PNG (``H x W x 3`` bytes of the SR
  size; srbench writes PNGs with fast compression, which rarely saves much on SR outputs);
  samples already stored in the folder count as available, since they are reused;
* memory: for the largest image, ``chunk`` decoded runs as uint8 and float32 tensors plus the
  float64 running mean and variance of L-STD, and the tidy score table (about 120 bytes a row);
  a pipelined run (``pipeline=true``) also holds ``buffered`` more uint8 samples (the PNG writer's
  queue, the runs gathered for the next chunk and the chunk queued for the scorer).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from benchmark.data import Sample
from benchmark.errors import UserError
from benchmark.write_errors import nearest_existing

SCORE_ROW_BYTES = 120  # one row of the tidy scores (image, run, seed, metric, value) in pandas


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(nearest_existing(folder)).free
    except OSError:
        return None


def _available_memory() -> int | None:
    """MemAvailable of /proc/meminfo (Linux); None where unknown (the memory check is then skipped)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _stored_bytes(folder: Path) -> int:
    samples = folder / "samples"
    if not samples.is_dir():
        return 0
    return sum(p.stat().st_size for p in samples.rglob("*.png") if p.is_file())


def estimate(samples: Sequence[Sample], runs: int, scale: int, metrics: int, chunk: int,
             buffered: int = 0) -> tuple[int, int]:
    """``(disk_bytes, memory_bytes)`` for ``runs`` runs of ``samples`` at ``scale`` (see the module doc)."""
    pixels = [s.lr_size[0] * s.lr_size[1] * scale * scale for s in samples]
    disk = sum(pixels) * 3 * runs
    largest = max(pixels, default=0)
    per_image = largest * 3 * (min(chunk, runs) * (1 + 4 + 4) + 2 * 8 + 4 + buffered)
    table = len(samples) * runs * max(metrics, 1) * SCORE_ROW_BYTES
    return disk, per_image + table


def check(samples: Sequence[Sample], runs: int, scale: int, metrics: int, chunk: int, folder: Path,
          buffered: int = 0) -> None:
    """Raise a UserError naming the estimate when the run cannot fit on disk or in memory."""
    disk, memory = estimate(samples, runs, scale, metrics, chunk, buffered)
    free = _free_bytes(folder)
    stored = _stored_bytes(folder)
    what = f"{len(samples)} image(s) x {runs} run(s)"
    if free is not None and disk - stored > free:
        raise UserError(
            f"{what} need about {_gib(disk)} of samples in {folder} (upper bound: uncompressed 8-bit RGB"
            + (f"; {_gib(stored)} already stored there" if stored else "")
            + f"), but the disk holding it has {_gib(free)} free. Lower runs=, score a subset with shard.count/"
              f"shard.index, free space, or write to another disk with output_dir=<dir>")
    avail = _available_memory()
    if avail is not None and memory > avail:
        raise UserError(
            f"scoring {what} needs about {_gib(memory)} of memory (the largest image's {min(chunk, runs)} runs at a "
            f"time and a score table of {len(samples) * runs * max(metrics, 1)} rows), but {_gib(avail)} is "
            f"available. Lower runs=, or split the images with shard.count/shard.index and merge")
