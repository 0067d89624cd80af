"""The sample-source contract's two halves: what to produce (:class:`Todo`) and where it goes
(:class:`SampleSink`).

Every method produces its samples through ``method.produce(todo, sink)``
(:class:`methods.base.SampleSource`). The runner computes the todo (the (image, run) pairs
whose ``samples/sampleRR/<id>.png`` is missing or unusable) and hands over a sink; the sink owns
everything that must be the same for every kind of method:

* seeds: run ``r`` uses seed ``seed + r`` (:meth:`SampleSink.seed`, the one place this is computed);
* output validation: shape ``scale x`` LR, three channels, finite, in [0, 1], with method, image
  and seed named when wrong (:func:`validate_output`, :meth:`SampleSink.put_array`);
* atomic writing of the 8-bit PNG (:func:`benchmark.images.write_png_atomic`), inline or, in a
  pipelined run (``pipeline=true``), on one background writer thread behind a bounded queue
  (:class:`PNGWriter`);
* timing: seconds per stored image-run, kept across resumed runs, and the progress bar.

In a pipelined run the sink also hands each validated 8-bit sample to a ``consumer`` (the
streaming scorer, :class:`benchmark.pipeline.StreamScorer`), so the sample is scored from the
array in memory while its PNG is still being written.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from benchmark.data import Sample
from benchmark.progress import Progress
from benchmark.images import png_complete, read_image, to_uint8, write_png_atomic
from benchmark.store import Store

log = logging.getLogger("srbench")

RANGE_TOL = 1e-6


@dataclass
class Todo:
    """The work a sample source is asked to do.

    ``samples``: every image of the data set (or of this shard), in data-set order;
    ``runs``: N, the runs per image; ``missing``: image id -> the runs still to produce, ascending;
    ``batch_size``: how many runs of one image an ``upscale`` call may take; ``device``: where to run.
    """

    samples: list[Sample]
    runs: int
    missing: dict[str, list[int]]
    batch_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def total(self) -> int:
        """Image-runs to produce."""
        return sum(len(v) for v in self.missing.values())

    def by_image(self) -> list[tuple[Sample, list[int]]]:
        """(sample, its missing runs) for each image with work, in data-set order."""
        return [(s, self.missing[s.id]) for s in self.samples if self.missing.get(s.id)]

    def by_run(self) -> dict[int, list[Sample]]:
        """run -> the samples missing in that run (runs without work left out), for per-run producers."""
        out: dict[int, list[Sample]] = {}
        for r in range(self.runs):
            todo = [s for s in self.samples if r in self.missing.get(s.id, ())]
            if todo:
                out[r] = todo
        return out


def validate_output(out: Any, method: Any, sample: Sample, seeds: Sequence[int | None],
                    shape: tuple[int, ...]) -> None:
    """Check a method's output against the contract; name method, image and seed when wrong.

    ``method`` needs ``name`` and ``scale``; ``out`` must be a float tensor of ``shape``
    (batch, 3, scale*h, scale*w), finite, in [0, 1] (up to 1e-6).
    """
    where = f"method {method.name!r} on image {sample.id!r} (seeds {list(seeds)})"
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{where} returned {type(out).__name__}, expected a torch.Tensor of shape {list(shape)}")
    if not out.is_floating_point():
        raise ValueError(f"{where} returned dtype {out.dtype}, expected a floating-point tensor in [0, 1]")
    if tuple(out.shape) != shape:
        raise ValueError(f"{where} returned shape {list(out.shape)}, expected {list(shape)} "
                         f"(batch, 3 channels, scale {method.scale} x LR size)")
    # One pass over the whole batch in the common case; the per-run loop below only runs to
    # name the culprit (per-run reductions cost ~5x more per image-run on 2 cores).
    lo_all, hi_all = torch.aminmax(out.detach())
    if bool(torch.isfinite(lo_all)) and bool(torch.isfinite(hi_all)) and float(lo_all) >= -RANGE_TOL \
            and float(hi_all) <= 1 + RANGE_TOL:
        return
    for i, seed in enumerate(seeds):
        x = out[i]
        if not torch.isfinite(x).all():
            raise ValueError(f"method {method.name!r} returned non-finite values (NaN/Inf) for image {sample.id!r}, "
                             f"seed {seed}")
        lo, hi = float(x.min()), float(x.max())
        if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
            raise ValueError(f"method {method.name!r} returned values in [{lo:.4g}, {hi:.4g}] for image "
                             f"{sample.id!r}, seed {seed}; outputs must lie in [0, 1] (clamp in the adapter)")


def read_output(path: Path, size: tuple[int, int], hint: str = "") -> tuple[np.ndarray | None, str | None]:
    """Decode an SR image file (stored sample, precomputed or external output) and check its size.

    ``size``: the expected (height, width), ``scale x`` the LR size. Returns ``(uint8 H x W x 3, None)``,
    or ``(None, problem)`` where ``problem`` completes a sentence whose subject is the file:
    ``is unreadable (undecodable: <error>)`` or ``is WxH, expected W'xH'<hint>``.
    """
    try:
        arr = read_image(path)
    except ValueError as err:
        return None, f"is unreadable (undecodable: {err})"
    if arr.shape[:2] != tuple(size):
        return None, f"is {arr.shape[1]}x{arr.shape[0]}, expected {size[1]}x{size[0]}{hint}"
    return arr, None


def stored_ok(path: Path, size: tuple[int, int]) -> bool:
    """A stored sample counts as finished only if it is complete, decodes and has the expected size."""
    if not path.is_file():
        return False
    if not png_complete(path):  # truncated by a crash or a full disk outside srbench's atomic writes
        log.warning("stored sample %s is truncated (no PNG end chunk); regenerating it", path)
        return False
    problem = read_output(path, size)[1]
    if problem:
        log.warning("stored sample %s %s; regenerating it", path, problem)
        return False
    return True


def missing_runs(samples: Sequence[Sample], store: Store, runs: int, source: Any) -> dict[str, list[int]]:
    """image id -> the runs whose stored sample is absent, unusable (see :func:`stored_ok`) or, by
    ``source.stored_current``, out of date (a precomputed file changed since it was imported)."""
    todo: dict[str, list[int]] = {}
    for smp in samples:
        size = (smp.lr_size[0] * source.scale, smp.lr_size[1] * source.scale)
        missing = [r for r in range(runs) if not stored_ok(store.sample_path(smp.id, r), size)
                   or not source.stored_current(store, smp.id, r)]
        if missing:
            todo[smp.id] = missing
    return todo


TMP_SUFFIX = ".png.tmp"  # write_png_atomic's temporaries: .<id>.<8 random chars>.png.tmp beside the final file


def remove_stale_temporaries(samples: Sequence[Sample], store: Store, runs: int) -> list[Path]:
    """Delete the temporary files a killed writer left for these images' samples; return them.

    A SIGKILL inside an atomic write (more likely in a pipelined run, whose writer thread writes
    while the method works) leaves ``.<id>.<random>.png.tmp`` beside the final name. Nothing reads
    them; the rerun that regenerates the sample removes them. Only files of ``samples`` (this
    process's images: distinct shards share the folder and hold distinct images) are touched, and
    the caller holds the folder lock.
    """
    ids = {s.id for s in samples}
    removed: list[Path] = []
    for r in range(runs):
        folder = store.sample_dir(r)
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            name = entry.name
            if name.startswith(".") and name.endswith(TMP_SUFFIX):
                stem = name[1:-len(TMP_SUFFIX)].rsplit(".", 1)[0]
                if stem in ids:
                    entry.unlink(missing_ok=True)
                    removed.append(entry)
    if removed:
        log.info("removed %d temporary file(s) of an interrupted write: %s", len(removed),
                 ", ".join(str(p) for p in removed[:5]) + (" ..." if len(removed) > 5 else ""))
    return removed


def run_seed(seed: int | None, run: int) -> int | None:
    """The seed of run ``run``: ``seed + run`` (DESIGN.md); None when the source draws no seeds.

    The one place the rule is written: the sink, the scores' seed column and the determinism
    check all call it.
    """
    return None if seed is None else seed + run


class PNGWriter:
    """One background thread that writes 8-bit PNGs atomically, in the order they were queued.

    ``put`` blocks while ``maxsize`` samples wait (memory stays bounded when the disk is slower
    than the method). Each write goes through :func:`~benchmark.images.write_png_atomic`, so a
    SIGKILL leaves finished files and at most a ``*.tmp`` that nothing reads; samples still
    queued at that moment are simply missing and a rerun generates them again. The first error
    of a write (an :class:`~benchmark.write_errors.OutputWriteError` naming the file, or anything
    else) stops all later writes and is re-raised in the calling thread by the next ``put``,
    ``flush`` or :meth:`raise_error`, exactly as an inline write would have raised it.
    ``done(path)`` runs in the writer thread after each successful write (the sink counts timing
    and progress there, so they always match the samples on disk).
    """

    def __init__(self, maxsize: int, done: Callable[[Path], None] | None = None) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(maxsize)))
        self._done = done
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="srbench-png-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self.error is None:  # after a failure nothing more is written (as an inline write stops)
                    path, arr = item
                    write_png_atomic(path, arr)
                    if self._done is not None:
                        self._done(path)
            except BaseException as err:  # noqa: BLE001 (KeyboardInterrupt from a test's hook included)
                self.error = err
            finally:
                self._queue.task_done()

    def raise_error(self) -> None:
        """Re-raise the first failed write in the calling thread (no-op when none failed)."""
        if self.error is not None:
            raise self.error

    def put(self, path: Path, arr: np.ndarray) -> None:
        """Queue ``arr`` (uint8 H x W x 3, not modified afterwards) for ``path``; blocks while the queue is full."""
        self.raise_error()
        self._queue.put((path, arr))

    def flush(self) -> None:
        """Wait until every queued sample is written (or dropped after a failure); then re-raise a failure."""
        self._queue.join()
        self.raise_error()

    def stop(self) -> None:
        """Write what is queued, then end the thread (errors stay in :attr:`error`)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class SampleSink:
    """Receives a method's samples: seeds, validation, atomic PNG writes, timing, progress.

    ``timing`` (``image_runs``, ``seconds``) is updated in place as each sample is stored, so a
    caller keeps the timing of finished work even when production stops with an error; seconds
    are counted per stored image, so totals kept across resumes match the stored samples.
    ``seed`` None: the source does not draw seeds (precomputed outputs); :meth:`seed` then
    returns None.

    Pipelined runs: ``write_queue`` > 0 writes PNGs on a :class:`PNGWriter` thread with a queue
    of that many samples (0: inline, today's sequential behaviour); ``consumer(sample, run, arr)``
    (optional) receives each stored sample's uint8 array in the main thread after it was
    validated and queued for writing. :meth:`close` must be called (it flushes the writer).
    ``method_seconds`` and ``consumer_seconds`` add up the time spent inside the method (the
    ``seconds`` given to ``put_*``) and inside ``consumer`` in this process, for the
    critical-path timing of :func:`benchmark.runner.generate`.
    """

    def __init__(self, store: Store, method: Any, seed: int | None, timing: dict[str, Any],
                 total: int = 0, progress: str = "generate", samples: Sequence[Sample] = (), *,
                 write_queue: int = 0, consumer: Callable[[Sample, int, np.ndarray], None] | None = None) -> None:
        self.store, self.method, self.base_seed, self.timing = store, method, seed, timing
        self._samples = {s.id: s for s in samples}  # so sources may name images by id
        self.timing.setdefault("image_runs", 0)
        self.timing.setdefault("seconds", 0.0)
        # a bar on a terminal, log lines otherwise
        self._bar = Progress(total, f"{progress} {method.name}", "img-run") if total else None
        self._consumer = consumer
        self.method_seconds = 0.0
        self.consumer_seconds = 0.0
        self._lock = threading.Lock()  # timing and progress are counted by the writer thread
        self._pending: collections.deque[tuple[float, bool]] = collections.deque()  # (seconds, counted), FIFO as the writes
        self._writer = PNGWriter(write_queue, self._written) if write_queue > 0 else None

    # ------------------------------------------------------------------ seeds

    def seed(self, run: int) -> int | None:
        """The seed of run ``run`` (:func:`run_seed`: ``seed + run``), None when the source draws none."""
        return run_seed(self.base_seed, run)

    def generators(self, runs: Sequence[int], device: torch.device) -> list[torch.Generator]:
        """One explicit generator per run, seeded ``seed + r`` (never the global RNG)."""
        return [torch.Generator(device=device).manual_seed(self.seed(r)) for r in runs]

    # ------------------------------------------------------------------ paths

    @property
    def root(self) -> Path:
        """The result folder (for a source's own scratch files, e.g. an external command's log)."""
        return self.store.root

    def sample_path(self, sample_id: str, run: int) -> Path:
        """Where the sample of (image, run) is stored (to read it back; write through :meth:`put_array`).

        With a background writer, every sample put so far is written first, so what a source reads
        back there is what it stored (a source comparing its new outputs with stored ones)."""
        if self._writer is not None:
            self._writer.flush()
        return self.store.sample_path(sample_id, run)

    def expected_size(self, sample: Sample) -> tuple[int, int]:
        """(height, width) of an SR output: ``scale x`` the LR size."""
        return sample.lr_size[0] * self.method.scale, sample.lr_size[1] * self.method.scale

    # ------------------------------------------------------------------ storing

    def put_batch(self, sample: Sample, runs: Sequence[int], out: torch.Tensor, seconds: float) -> None:
        """Validate an ``upscale`` output ``[B, 3, H, W]`` for ``runs`` of ``sample`` and store each;
        ``seconds`` (the call's time) is shared equally by the B image-runs."""
        h, w = self.expected_size(sample)
        validate_output(out, self.method, sample, [self.seed(r) for r in runs], (len(runs), 3, h, w))
        arrays = to_uint8(out)  # one conversion for the batch; each arrays[i] is C-contiguous H x W x 3
        for i, r in enumerate(runs):
            self._write(sample, r, arrays[i], seconds / len(runs))

    def put_array(self, sample: Sample | str, run: int, arr: np.ndarray, seconds: float = 0.0,
                  source: str | None = None, counted: bool = True) -> None:
        """Store an 8-bit RGB image (``uint8`` H x W x 3) made outside ``upscale``.

        ``source`` describes where it came from (e.g. ``precomputed output <path>``) for errors;
        ``counted=False`` replaces a sample that was already stored (an external command that
        regenerates a whole run) without counting it again in the timing.
        Raises ValueError naming ``source``, the image and the run when its size is not ``scale x`` LR.
        """
        if isinstance(sample, str):
            sample = self._samples[sample]
        want = self.expected_size(sample)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"{source or 'output of method ' + repr(self.method.name)} (image {sample.id!r}, run "
                             f"{run}) is {arr.dtype} {list(arr.shape)}, expected uint8 H x W x 3 (8-bit RGB)")
        if arr.shape[:2] != want:
            raise ValueError(f"{source or 'output of method ' + repr(self.method.name)} (image {sample.id!r}, run "
                             f"{run}) is {arr.shape[1]}x{arr.shape[0]}, expected {want[1]}x{want[0]} (scale "
                             f"{self.method.scale} x LR); check method.scale and the files")
        if self._writer is not None:
            arr = np.array(arr, copy=True)  # written later: a source may reuse its buffer after put_array returns
        self._write(sample, run, arr, seconds, counted)

    def _write(self, sample: Sample, run: int, arr: np.ndarray, seconds: float, counted: bool = True) -> None:
        path = self.store.sample_path(sample.id, run)
        self.method_seconds += seconds
        if self._writer is None:
            write_png_atomic(path, arr)
            self._count(seconds, counted)
        else:
            self._pending.append((seconds, counted))
            self._writer.put(path, arr)  # blocks while the queue is full; re-raises an earlier failed write
        if self._consumer is not None:
            t0 = time.perf_counter()
            self._consumer(sample, run, arr)
            self.consumer_seconds += time.perf_counter() - t0

    def _written(self, path: Path) -> None:
        """Writer thread: ``path`` is on disk; count it now, so timing never covers a lost sample."""
        seconds, counted = self._pending.popleft()  # the writer writes in queue order
        self._count(seconds, counted)

    def _count(self, seconds: float, counted: bool) -> None:
        if counted:
            with self._lock:
                self.timing["image_runs"] += 1
                self.timing["seconds"] += seconds
            if self._bar is not None:
                self._bar.update(1)

    def flush(self) -> None:
        """Wait until every sample put so far is on disk; re-raise a failed background write."""
        if self._writer is not None:
            self._writer.flush()

    def close(self, raise_errors: bool = True) -> None:
        """Write every queued sample and end the writer thread; close the progress bar.

        A failed background write is re-raised here (naming the file) unless ``raise_errors`` is
        False (the caller is already propagating another error; the failure is then logged).
        """
        try:
            if self._writer is not None:
                self._writer.stop()
                if self._writer.error is not None:
                    if raise_errors:
                        raise self._writer.error
                    log.warning("a background PNG write failed as well: %s", self._writer.error)
        finally:
            if self._bar is not None:
                self._bar.close()
