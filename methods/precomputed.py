"""Score images that some SR method already wrote (for example the official CCSR scripts)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Sequence

from benchmark.data import Sample, list_images
from benchmark.files import file_sha256
from benchmark.images import IMAGE_EXTS, read_image
from benchmark.sink import SampleSink, Todo, read_output
from benchmark.store import Store, atomic_write_json
from methods.base import SampleSource

log = logging.getLogger("srbench")

_SAMPLE_DIR = re.compile(r"^sample(\d+)$")


class Precomputed(SampleSource):
    """Outputs already on disk under ``path``.

    ``path`` holds either ``sample00 ... sampleNN`` subfolders (the layout of the official CCSR
    scripts; ``sample0``, ``sample1`` spellings too), one run per subfolder in numeric order,
    or a flat folder of images (one run). Files are matched to the data set by stem.
    The number of runs is the number of run folders (``runs=`` is ignored); no seed is recorded.
    """

    seeded = False

    def __init__(self, path: str, scale: int = 4, stochastic: bool | None = None,
                 name: str = "precomputed") -> None:
        if path in (None, "", "???"):
            raise ValueError("method.path is required for method=precomputed: pass method.path=<folder of SR outputs>")
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise FileNotFoundError(
                f"method.path {self.path} does not exist: point it at a folder with sample00.. subfolders "
                f"or at a flat folder of SR images"
            )
        self.scale = int(scale)
        self.name = name
        runs = sorted(
            ((int(m.group(1)), p) for p in self.path.iterdir() if p.is_dir() and (m := _SAMPLE_DIR.match(p.name))),
        )
        # layout problems are collected, not raised one at a time: check_outputs lists them with every
        # missing, undecodable and mis-sized output before anything is imported
        self._problems: list[str] = []
        numbers = [n for n, _ in runs]
        if len(set(numbers)) != len(numbers):
            dup = sorted({p.name for n, p in runs if numbers.count(n) > 1})
            self._problems.append(f"method.path {self.path} has run folders with the same number: {', '.join(dup)}; "
                                  f"keep one spelling")
            seen: set[int] = set()
            runs = [(n, p) for n, p in runs if not (n in seen or seen.add(n))]
        if runs and [n for n, _ in runs] != list(range(len(runs))):  # a gap: a run the official script did not write?
            absent = sorted(set(range(runs[-1][0] + 1)) - {n for n, _ in runs})
            log.warning("method.path %s has %d run folder(s) (%s) but none numbered %s: they are imported as runs "
                        "0..%d in numeric order; if a run is missing, generate it first", self.path, len(runs),
                        ", ".join(p.name for _, p in runs), ", ".join(str(n) for n in absent[:10]), len(runs) - 1)
        self._run_dirs = [p for _, p in runs] or [self.path]
        self.stochastic = len(self._run_dirs) > 1 if stochastic is None else bool(stochastic)
        self._index = [self._list(d, self._problems) for d in self._run_dirs]

    @staticmethod
    def _list(folder: Path, problems: list[str]) -> dict[str, Path]:
        """Map stem -> output file of one run folder, with the checks and wording of LR/HR folders
        (:func:`benchmark.data.list_images`); other files are skipped (official scripts leave logs and
        configs beside their outputs) and missing outputs are counted by :meth:`check_outputs`."""
        return list_images(folder, "precomputed", problems, skip_other_files=True, require_images=False)

    def check_outputs(self, samples: Sequence["Sample"]) -> list[str]:
        """Every problem of the outputs for ``samples``, all at once, before anything is imported:
        run folders with one number, duplicate stems, missing, undecodable and mis-sized files
        (each output must be exactly ``scale`` x its LR image)."""
        problems = list(self._problems)
        missing: list[str] = []
        for run, (folder, index) in enumerate(zip(self._run_dirs, self._index)):
            for smp in samples:
                src = index.get(smp.id)
                if src is None:
                    missing.append(f"{folder}/{smp.id}")
                    continue
                want = (smp.lr_size[0] * self.scale, smp.lr_size[1] * self.scale)
                problem = read_output(src, want, f" (scale {self.scale} x LR); check method.scale and the files")[1]
                if problem:
                    problems.append(f"precomputed output {src} (image {smp.id!r}, run {run}) {problem}")
        if missing:
            problems.insert(len(self._problems),
                            f"{len(missing)} output(s) missing (expected <folder>/<image id> with any of "
                            f"{', '.join(IMAGE_EXTS)}): " + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))
        return problems

    def fixed_runs(self) -> int:
        return len(self._run_dirs)

    def stored_path(self, sample_id: str, run: int) -> Path:
        try:
            return self._index[run][sample_id]
        except KeyError:
            raise FileNotFoundError(
                f"precomputed output for image {sample_id!r}, run {run} is missing: expected "
                f"{self._run_dirs[run]}/{sample_id}.png (any of {', '.join(IMAGE_EXTS)})"
            ) from None

    def missing(self, sample_ids: Sequence[str]) -> list[str]:
        """Every (run folder, image) pair of the data set without an output file."""
        return [f"{d}/{i}" for d, idx in zip(self._run_dirs, self._index) for i in sample_ids if i not in idx]

    def check_inputs(self, samples: Sequence[Sample]) -> None:
        """Every image of the data set must have an output in every run folder (checked before any work)."""
        missing = self.missing([s.id for s in samples])
        if missing:
            raise FileNotFoundError(f"{len(missing)} precomputed output(s) missing under {self.path}: "
                                    + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))

    def _record(self, store: Store) -> "ImportRecord":
        if getattr(self, "_imports", None) is None or self._imports.path != store.imports_json:
            self._imports = ImportRecord(store)
        return self._imports

    def stored_current(self, store: Store, sample_id: str, run: int) -> bool:
        """A stored copy counts only while its source file is unchanged (content hash in imports.json)."""
        return self._record(store).current(self, sample_id, run)

    def produce(self, todo: Todo, sink: SampleSink) -> None:
        """Copy each missing output into the store after the sink checks it like a generated one,
        recording the source's content hash."""
        imports = self._record(sink.store)
        for smp, runs in todo.by_image():
            try:
                for r in runs:
                    src = self.stored_path(smp.id, r)
                    sink.put_array(smp, r, read_image(src), source=f"precomputed output {src}")
                    imports.record(self, smp.id, r)
            finally:
                imports.save()


class ImportRecord:
    """Content hash of the source of every imported sample (``imports.json`` beside the samples).

    ``precomputed``'s generation hash covers only ``method.path`` as a string, so changed files at
    that path would otherwise keep being scored from their old imported copies. Each import records
    the SHA-256 of its source; a stored sample whose source now hashes differently (or that has no
    record, e.g. imported by an older srbench) is imported again, with a log line naming the file.
    """

    def __init__(self, store: Store) -> None:
        self.path = store.imports_json
        self._hashes: dict[str, str] = {}
        self._now: dict[str, str] = {}
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict) and isinstance(data.get("sources"), dict):
                self._hashes = {str(k): str(v) for k, v in data["sources"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable %s (%s): every precomputed output is imported again", self.path, err)
        self._dirty = False

    @staticmethod
    def _key(sample_id: str, run: int) -> str:
        return f"{run}/{sample_id}"

    def _hash(self, method: "Precomputed", sample_id: str, run: int) -> str:
        key = self._key(sample_id, run)
        if key not in self._now:
            self._now[key] = file_sha256(method.stored_path(sample_id, run)).hex()
        return self._now[key]

    def current(self, method: "Precomputed", sample_id: str, run: int) -> bool:
        """True when the stored copy of (image, run) was imported from the source as it is now."""
        old = self._hashes.get(self._key(sample_id, run))
        if old == self._hash(method, sample_id, run):
            return True
        if old is not None:
            log.warning("precomputed output %s changed since it was imported; importing it again",
                        method.stored_path(sample_id, run))
        return False

    def record(self, method: "Precomputed", sample_id: str, run: int) -> None:
        self._hashes[self._key(sample_id, run)] = self._hash(method, sample_id, run)
        self._dirty = True

    def save(self) -> None:
        if self._dirty:
            atomic_write_json(self.path, {"sources": dict(sorted(self._hashes.items()))})
            self._dirty = False
