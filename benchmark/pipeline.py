"""Pipelined scoring (``pipeline=true``, the default): samples are scored while generation goes on.

In a pipelined run three things overlap: the method generates on the main thread, the sink's
:class:`~benchmark.sink.PNGWriter` thread writes the PNGs, and a :class:`StreamScorer` thread
scores the samples from the uint8 arrays the sink holds in memory, instead of decoding the
PNGs again after generation. The PNG round trip is lossless (8-bit RGB in, the same 8-bit RGB
out: ``tests/test_pipeline.py`` asserts it), and the scorer feeds the very same
:class:`benchmark.scoring.ImageScoring` with the very same chunks of runs as the sequential
:func:`benchmark.scoring.score`, so every score, G-STD and L-STD is bit-identical to a
``pipeline=false`` run.

What is streamed and what is read back from disk:

* an image all of whose N runs are generated in this invocation is streamed: its runs are
  gathered in the main thread and handed to the scorer thread one chunk of
  :data:`~benchmark.scoring.SCORE_CHUNK` runs at a time (runs ``0..15``, ``16..31``, ...), each
  chunk as soon as all of its runs were stored; L-STD accumulates over the chunks;
* an image with runs stored by an earlier invocation (a resumed run) is scored from its stored
  PNGs after generation, exactly as :func:`benchmark.scoring.score` does;
* a source that leaves an image before all of its runs were stored (sources that produce run by
  run, such as the ``external`` methods), or stores a run twice, has that image scored from disk
  after generation too (its in-memory part is dropped), so memory stays bounded whatever the order:
  the main thread holds at most one image's pending chunk (at most ``SCORE_CHUNK`` +
  ``batch_size`` runs), plus ``queue_size`` chunks queued and one being scored;
* set-level metrics (FID, KID) need every image of a run: they read the stored PNGs after
  generation, as in a sequential run.

Per-image metrics run on the device the scorers were built on (the run's ``device``); results.json
records it as ``scoring_device``. An exception in the scorer thread stops scoring and is re-raised
in the main thread at the next sample or at :meth:`StreamScorer.wait` / :meth:`StreamScorer.finish`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from benchmark.data import Sample
from benchmark.progress import Progress
from benchmark.results import Excluded
from benchmark.scoring import (SCORE_CHUNK, ImageScoring, MetricPlan, chunks, per_image_metrics, score_sets,
                               score_stored, tidy)
from benchmark.store import Store

log = logging.getLogger("srbench")

Rows = list[tuple[str, int, Any, str, float]]


class StreamScorer:
    """Scores samples handed over by the sink (``scorer(sample, run, arr)``) on a background thread.

    Use: build it before generation, pass it to :func:`benchmark.runner.generate` (which calls
    :meth:`expect` with the todo and gives it to the sink as its consumer), then :meth:`finish`
    returns the tidy scores and per-image L-STD exactly as :func:`benchmark.scoring.score` would;
    :meth:`abort` ends the thread on an error path. ``blocked_seconds``: how long the main thread
    waited to hand over a chunk because the scorer was still busy (the scorer was the bottleneck).
    """

    def __init__(self, samples: Sequence[Sample], runs: int, seeds: Sequence[int | None], plan: MetricPlan,
                 crop_border: int, device: torch.device, chunk: int = SCORE_CHUNK, queue_size: int = 1) -> None:
        self.samples, self.runs, self.seeds, self.plan = list(samples), runs, list(seeds), plan
        self.crop_border, self.device, self.chunk = crop_border, device, chunk
        self._per_image = per_image_metrics(plan)
        self._chunks = chunks(runs, chunk)
        self._streamed: set[str] = set()  # images every run of which is produced now
        self._begun: set[str] = set()  # images whose first sample arrived
        self._current: str | None = None  # the image whose runs are being gathered
        self._pending: dict[int, np.ndarray] = {}
        self._next = 0  # index of the current image's next chunk to hand over
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._results: dict[str, tuple[Rows, list[Excluded], float | None]] = {}  # filled by the thread
        self._aborted = False
        self.error: BaseException | None = None
        self.blocked_seconds = 0.0
        self.streamed_images = 0
        self._thread = threading.Thread(target=self._loop, name="srbench-scorer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ main thread

    def expect(self, missing: Mapping[str, Sequence[int]]) -> None:
        """The todo's missing runs per image: images missing all N runs are streamed, the rest read from disk."""
        self._streamed = {sid for sid, m in missing.items() if set(m) == set(range(self.runs))}

    def __call__(self, sample: Sample, run: int, arr: np.ndarray) -> None:
        """The sink's consumer: ``arr`` (uint8 H x W x 3) is run ``run`` of ``sample``, just stored."""
        self._raise()
        sid = sample.id
        if sid not in self._streamed:
            return
        if sid != self._current:
            if self._current is not None:  # the source left an image unfinished: score that one from disk
                self._demote(self._current)
            if sid in self._begun:  # back to an image seen before (a replaced sample): from disk
                self._demote(sid)
                return
            self._current, self._pending, self._next = sid, {}, 0
            self._begun.add(sid)
        if run in self._pending or any(run in part for part in self._chunks[:self._next]):
            self._demote(sid)  # the same run stored twice: the stored file is what counts
            return
        self._pending[run] = arr
        while self._next < len(self._chunks) and all(r in self._pending for r in self._chunks[self._next]):
            part = self._chunks[self._next]
            self._send(("chunk", sample, self._next, part, [self._pending.pop(r) for r in part]))
            self._next += 1
        if self._next == len(self._chunks):  # every chunk handed over: the image is complete
            self._current, self._pending = None, {}
            self.streamed_images += 1

    def _demote(self, sid: str) -> None:
        self._streamed.discard(sid)
        if sid == self._current:
            self._current, self._pending = None, {}
        self._send(("drop", sid))

    def _send(self, item: tuple) -> None:
        t0 = time.perf_counter()
        self._queue.put(item)  # blocks while the scorer is busy with the previous chunk(s)
        self.blocked_seconds += time.perf_counter() - t0
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def wait(self) -> None:
        """Block until every chunk handed over so far is scored; re-raise a scorer failure."""
        self._queue.join()
        self._raise()

    def abort(self) -> None:
        """End the thread without scoring what is queued (error paths, Ctrl-C) and wait for it.

        Waits at most for the chunk being scored (a torch operation cannot be stopped halfway).
        It must wait: a thread still inside torch's C++ code when the interpreter exits ends the
        process with "terminate called without an active exception" (SIGABRT, exit 134) instead
        of srbench's Ctrl-C exit 130.
        """
        self._aborted = True
        while self._thread.is_alive():
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:  # make room: the queued chunks are not scored any more
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()
                except queue.Empty:
                    pass
        self._thread.join()

    def finish(self, store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
        """After generation (every sample written): the tidy scores and per-image L-STD of all images.

        Streamed images take the scorer's results; the others are scored from their stored PNGs;
        set metrics read the stored PNGs. Exclusions go into ``plan.excluded`` in data-set order,
        as :func:`benchmark.scoring.score` appends them.
        """
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()
        from_disk = [s for s in self.samples if s.id not in self._results]
        done: dict[str, tuple[Rows, list[Excluded], float | None]] = dict(self._results)
        if from_disk:
            log.info("scoring %d image(s) from their stored samples (%d scored during generation)",
                     len(from_disk), len(self._results))
        # One progress record for the whole scoring stage, as a sequential run prints: the images
        # scored during generation count as done at once, the ones read back from disk one by one.
        with Progress(len(self.samples), "score", "img") as bar:
            bar.update(len(self._results))
            for smp in from_disk:
                excluded: list[Excluded] = []
                rows, lstd = score_stored(smp, store, self.runs, self.seeds, self.plan, self.crop_border,
                                          self.device, excluded, self.chunk)
                done[smp.id] = (rows, excluded, lstd)
                bar.update(1)
        rows_all: Rows = []
        lstd_rows: list[tuple[str, float | None]] = []
        for smp in self.samples:
            rows, excluded, lstd = done[smp.id]
            rows_all += rows
            self.plan.excluded.extend(excluded)
            lstd_rows.append((smp.id, lstd))
        scores = tidy(rows_all, score_sets(self.samples, store, self.runs, self.seeds, self.plan))
        return scores, pd.DataFrame(lstd_rows, columns=["image", "lstd"])

    # ------------------------------------------------------------------ scorer thread

    def _loop(self) -> None:
        state: dict[str, ImageScoring] = {}
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self.error is not None or self._aborted:
                    continue  # keep draining so that the main thread never blocks on a dead scorer
                if item[0] == "chunk":
                    _, smp, index, part, arrays = item
                    if index == 0:
                        state[smp.id] = ImageScoring(smp, self.seeds, self._per_image, self.crop_border, self.device,
                                                     [])
                    image = state[smp.id]
                    image.add(part, arrays)
                    if index == len(self._chunks) - 1:
                        self._results[smp.id] = (image.rows, image.excluded, image.finish())
                        del state[smp.id]
                else:  # ("drop", id): this image is scored from disk after generation
                    state.pop(item[1], None)
                    self._results.pop(item[1], None)
            except BaseException as err:  # noqa: BLE001 (re-raised in the main thread)
                self.error = err
            finally:
                self._queue.task_done()
