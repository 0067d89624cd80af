"""On-disk layout of one (data set, method) run, with atomic writes.

::

    <output_dir>/<dataset>/<method>/
      samples/sample00/<id>.png ... samples/sample{N-1}/<id>.png
      scores.csv  lstd.csv  results.json  manifest.json

The layout of ``samples/`` is the one the official CCSR scripts write, so their evaluation
scripts can read it and ``method=precomputed`` can read theirs.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.images import atomic_write_bytes  # noqa: F401  (the store's writes go through it)

log = logging.getLogger("srbench")

SET_IMAGE = "*"  # image column of set-level metric rows (FID, KID) in scores.csv


def dump_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, dump_json(obj))


def atomic_write_csv(path: Path, df: pd.DataFrame) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    atomic_write_bytes(path, buf.getvalue().encode())


def read_csv(path: Path) -> pd.DataFrame:
    """Read back a CSV srbench wrote (scores.csv, lstd.csv, their shard parts).

    Image ids and metric names stay strings exactly as written: ``0801`` keeps its leading zero,
    and ``NA``, ``null``, ``nan``, ``None`` are ids, not the missing values pandas reads them as by
    default. Only an empty cell is missing (a source that draws no seeds, an undefined L-STD).
    """
    return pd.read_csv(path, dtype={"image": str, "metric": str}, keep_default_na=False, na_values=[""])


def config_hash(obj: Any) -> str:
    """Stable hash of a JSON-serialisable config."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class Store:
    """Paths and files of one (data set, method) result folder."""

    def __init__(self, output_dir: str | Path, dataset: str, method: str) -> None:
        self.root = Path(output_dir) / dataset / method

    def sample_dir(self, run: int) -> Path:
        return self.root / "samples" / f"sample{run:02d}"

    def sample_path(self, sample_id: str, run: int) -> Path:
        return self.sample_dir(run) / f"{sample_id}.png"

    @property
    def scores_csv(self) -> Path:
        return self.root / "scores.csv"

    @property
    def lstd_csv(self) -> Path:
        return self.root / "lstd.csv"

    @property
    def results_json(self) -> Path:
        return self.root / "results.json"

    @property
    def manifest_json(self) -> Path:
        return self.root / "manifest.json"

    @property
    def timing_json(self) -> Path:
        """Inference-time totals that survive resumed runs (one file per shard: shards never share it)."""
        return self.root / "timing.json"

    @property
    def imports_json(self) -> Path:
        """Content hashes of the sources of imported (``precomputed``) samples."""
        return self.root / "imports.json"

    def read_manifest(self) -> dict[str, Any] | None:
        """The stored manifest, None when there is none; a damaged one names the file and the fix."""
        if not self.manifest_json.is_file():
            return None
        return read_json_object(self.manifest_json, _damaged_manifest_fix(self.root))

    def prepare(self, manifest: dict[str, Any], overwrite: bool) -> None:
        """Check that stored samples were made by the same generation config, then write the manifest.

        ``manifest["generation_hash"]`` covers what decides the pixels of a sample (method
        config, seed, data set identity). A different hash means the stored samples are stale:
        they are never reused; with ``overwrite`` they are deleted, otherwise the run stops.
        Samples of unmerged shards (``manifest.shard-*.json``) with the same hash are valid: they
        are reused, never deleted, and when every shard has finished the run stops and says
        ``merge`` (which assembles them without generating or scoring anything again).
        """
        old = self.read_manifest()
        samples = self.root / "samples"
        stored = _count_files(samples)
        what = (f"samples/ ({stored} file(s)) and scores.csv, lstd.csv, results.json")
        if old is not None and old.get("generation_hash") != manifest["generation_hash"] and samples.exists():
            diff = _diff(old.get("generation", {}), manifest["generation"])
            if not overwrite:
                # a value a sweep varies (-m seed=0,1, -m method.sigma=...): one folder per value
                keys = [k for k in (d.split(":", 1)[0] for d in diff) if k == "seed" or k.startswith("method.")]
                sweep = (f" In a sweep (-m {keys[0]}=a,b), give each value its own folder: "
                         f"'output_dir=<dir>/{keys[0].rsplit('.', 1)[-1]}${{{keys[0]}}}'." if keys else "")
                raise ValueError(
                    f"{self.root} holds samples generated with a different configuration "
                    f"({'; '.join(diff) or 'hash ' + str(old.get('generation_hash'))[:12]}). They are never reused: "
                    f"pass overwrite=true to delete them ({what} of {self.root}), or write elsewhere with "
                    f"output_dir=<dir>, method.name=<new name> or dataset.name=<new name> (a dataset=folder data "
                    f"set is named after its folders, <parent>-<folder>-<hash>, unless dataset.name is given)"
                    + sweep
                )
            log.warning("overwrite=true: deleting %s of %s (generated with another configuration: %s)", what,
                        self.root, "; ".join(diff) or "another hash")
            shutil.rmtree(samples)
            for f in (self.scores_csv, self.lstd_csv, self.results_json):
                f.unlink(missing_ok=True)
        elif old is None and stored:
            shards = _shard_manifests(self.root)
            same = sorted(n for n, m in shards.items() if m.get("generation_hash") == manifest["generation_hash"])
            if shards and len(same) == len(shards):
                counts = {n.rsplit("-of-", 1)[1].split(".")[0] for n in shards}
                done = len(counts) == 1 and all(
                    (self.root / f"results.shard-{i}-of-{c}.json").is_file() for c in counts for i in range(int(c)))
                if done:
                    raise ValueError(
                        f"{self.root} holds the finished, unmerged shards ({', '.join(same)}) of this same "
                        f"generation configuration: run `python -m benchmark merge {self.root}` to assemble them "
                        f"(nothing is generated or scored again); to score them with other options afterwards, rerun "
                        f"this command: it reuses every sample")
                # unfinished shards of this configuration: their samples are valid, reuse them
            elif not overwrite:
                why = (f"{', '.join(sorted(set(shards) - set(same)))} record(s) a different generation configuration"
                       if shards else "it has no manifest.json, so nothing tells which configuration made them")
                raise ValueError(
                    f"{samples} holds {stored} file(s) but {why}. They are never reused: pass overwrite=true to "
                    f"delete {what} of {self.root}, or choose another output_dir=<dir>")
            else:
                log.warning("overwrite=true: deleting %s of %s (%s)", what, self.root, why)
                shutil.rmtree(samples)
        elif old is None and samples.exists() and not stored:
            shutil.rmtree(samples)
        atomic_write_json(self.manifest_json, manifest)


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def _shard_manifests(root: Path) -> dict[str, dict[str, Any]]:
    return {p.name: read_json_object(p, "delete it, then rerun that shard")
            for p in sorted(root.glob("manifest.shard-*-of-*.json"))}


def _damaged_manifest_fix(root: Path) -> str:
    return (f"it records which configuration made the samples in {root / 'samples'}, so they cannot be checked. "
            f"If you know they were made by this same command, restore manifest.json (e.g. from a copy of the "
            f"folder); otherwise pass overwrite=true, which deletes them, or write elsewhere with output_dir=<dir>")


def read_json_object(path: Path, fix: str) -> dict[str, Any]:
    """A JSON object srbench wrote (manifest, results); a damaged file raises ValueError naming it and ``fix``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path}: {err}; {fix}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path} is damaged: it holds a JSON {type(data).__name__}, not an object; {fix}")
    return data


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            out += _diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]
