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
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.images import atomic_write_bytes  # noqa: F401  (the store's writes go through it)


SET_IMAGE = "*"  # image column of set-level metric rows (FID, KID) in scores.csv


def dump_json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, dump_json(obj))


def atomic_write_csv(path: Path, df: pd.DataFrame) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    atomic_write_bytes(path, buf.getvalue().encode())


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

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_json.is_file():
            return None
        return json.loads(self.manifest_json.read_text())

    def prepare(self, manifest: dict[str, Any], overwrite: bool) -> None:
        """Check that stored samples were made by the same generation config, then write the manifest.

        ``manifest["generation_hash"]`` covers what decides the pixels of a sample (method
        config, seed, data set identity). A different hash means the stored samples are stale:
        they are never reused; with ``overwrite`` they are deleted, otherwise the run stops.
        """
        old = self.read_manifest()
        samples = self.root / "samples"
        if old is not None and old.get("generation_hash") != manifest["generation_hash"] and samples.exists():
            if not overwrite:
                diff = _diff(old.get("generation", {}), manifest["generation"])
                raise ValueError(
                    f"{self.root} holds samples generated with a different configuration "
                    f"({'; '.join(diff) or 'hash ' + str(old.get('generation_hash'))[:12]}). They are never reused: "
                    f"pass overwrite=true to delete them, or write elsewhere with output_dir=<dir> or method.name=<new name>"
                )
            shutil.rmtree(samples)
            for f in (self.scores_csv, self.lstd_csv, self.results_json):
                f.unlink(missing_ok=True)
        elif old is None and samples.exists() and any(samples.iterdir()) and not overwrite:
            raise ValueError(
                f"{samples} exists but has no manifest.json, so nothing tells which configuration made it: "
                f"pass overwrite=true to delete it, or choose another output_dir"
            )
        elif old is None and samples.exists():
            shutil.rmtree(samples)
        atomic_write_json(self.manifest_json, manifest)


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            out += _diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]
