"""Image sharding: ``shard.index=i shard.count=k`` runs every k-th image of a data set.

k workers (a Slurm array, a joblib sweep over ``shard.index``, k shells) write into the same
``<output_dir>/<dataset>/<method>/`` folder without clashing:

* samples already go to one file per (run, image), and each image belongs to one shard;
* every other file a run writes is suffixed with its shard, e.g. ``scores.shard-1-of-4.csv``,
  ``lstd.shard-1-of-4.csv``, ``results.shard-1-of-4.json``, ``manifest.shard-1-of-4.json``.

``python -m benchmark merge <output_dir>`` (:mod:`benchmark.merge`) then writes the unsharded
``scores.csv``, ``lstd.csv``, ``results.json`` and ``manifest.json``, equal to one unsharded run.

Images are dealt round-robin in sorted-id order (image j goes to shard ``j % k``), so shards
get nearly equal numbers of images whatever the ordering of image sizes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence, TypeVar

from benchmark.store import Store, atomic_write_json, read_json_object

T = TypeVar("T")


def shard_of(cfg: Any) -> tuple[int, int]:
    """``(index, count)`` from ``cfg.shard`` (``(0, 1)`` when the config has no shard key)."""
    shard = cfg.get("shard") if hasattr(cfg, "get") else None
    if shard is None:
        return 0, 1
    return int(shard.get("index", 0)), int(shard.get("count", 1))


def suffix(index: int, count: int) -> str:
    return f"shard-{index}-of-{count}"


def select(samples: Sequence[T], cfg: Any) -> list[T]:
    """The samples of this shard: every ``count``-th one starting at ``index``."""
    index, count = shard_of(cfg)
    if count == 1:
        return list(samples)
    picked = list(samples)[index::count]
    if not picked:
        raise ValueError(f"shard.index={index} of shard.count={count} gets no image: the data set has only "
                         f"{len(samples)} image(s); use shard.count <= {len(samples)}")
    return picked


def store_for(cfg: Any, output_dir: str | Path, dataset: str, method: str, sample_ids: Sequence[str]) -> Store:
    """A plain :class:`Store`, or a :class:`ShardStore` for this shard's images when ``shard.count > 1``."""
    index, count = shard_of(cfg)
    if count == 1:
        return Store(output_dir, dataset, method)
    return ShardStore(output_dir, dataset, method, index, count, sample_ids)


class ShardStore(Store):
    """The files of one shard: shared ``samples/``, everything else suffixed with the shard."""

    def __init__(self, output_dir: str | Path, dataset: str, method: str, index: int, count: int,
                 sample_ids: Sequence[str]) -> None:
        super().__init__(output_dir, dataset, method)
        self.index, self.count = index, count
        self.tag = suffix(index, count)
        self.sample_ids = list(sample_ids)

    @property
    def scores_csv(self) -> Path:
        return self.root / f"scores.{self.tag}.csv"

    @property
    def lstd_csv(self) -> Path:
        return self.root / f"lstd.{self.tag}.csv"

    @property
    def results_json(self) -> Path:
        return self.root / f"results.{self.tag}.json"

    @property
    def manifest_json(self) -> Path:
        return self.root / f"manifest.{self.tag}.json"

    @property
    def timing_json(self) -> Path:
        return self.root / f"timing.{self.tag}.json"

    @property
    def imports_json(self) -> Path:
        return self.root / f"imports.{self.tag}.json"

    def prepare(self, manifest: dict[str, Any], overwrite: bool) -> None:
        """Check every manifest in the folder for stale samples; never touch other shards' files.

        A manifest (unsharded or of any shard) with a different generation hash means stored
        samples may be stale: the run stops, or with ``overwrite`` deletes only this shard's
        sample files and outputs (every shard must then be rerun with ``overwrite=true``).
        """
        manifests = {p.name: read_json(p) for p in sorted(self.root.glob("manifest*.json"))}
        samples = self.root / "samples"
        has_samples = samples.exists() and any(samples.iterdir())
        stale = sorted(n for n, m in manifests.items() if m.get("generation_hash") != manifest["generation_hash"])
        if has_samples and (stale or not manifests):
            if not overwrite:
                why = (f"{', '.join(stale)} record(s) a different generation configuration" if stale
                       else "it has no manifest, so nothing tells which configuration made its samples")
                raise ValueError(f"{self.root}: {why}. Samples are never reused across configurations: pass "
                                 f"overwrite=true to every shard (each deletes only its own images), or write "
                                 f"elsewhere with output_dir=<dir>")
            self._delete_own_samples()
            for f in (self.scores_csv, self.lstd_csv, self.results_json):
                f.unlink(missing_ok=True)
        manifest = dict(manifest, shard={"index": self.index, "count": self.count, "images": list(self.sample_ids)})
        atomic_write_json(self.manifest_json, manifest)

    def _delete_own_samples(self) -> None:
        own = set(self.sample_ids)
        for run_dir in (self.root / "samples").glob("sample*"):
            for f in run_dir.iterdir():
                if f.stem in own or f.name.startswith(tuple(f".{i}." for i in own)):
                    if f.is_dir():
                        shutil.rmtree(f)
                    else:
                        f.unlink()


def read_json(path: Path) -> dict[str, Any]:
    """A shard's manifest or results file; an unreadable or non-object one names the file and the fix."""
    return read_json_object(path, "delete it, then rerun that shard")
