"""Inference timing that survives resumed runs (Table 2 of the CCSR paper: seconds per image-run).

``<result folder>/timing.json`` holds the image-runs generated so far and their inference
seconds (device-synchronised, model loading excluded where the adapter can exclude it), keyed
by the generation hash of the manifest: a resumed run adds its new work to the earlier totals,
and samples of another configuration never contribute.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, Iterator

from benchmark.store import Store, atomic_write_json

log = logging.getLogger(__name__)


def _read(path, generation_hash: str) -> dict[str, Any]:
    try:
        old = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable %s (%s): timing restarts from this run", path, err)
        return {}
    if not isinstance(old, dict) or old.get("generation_hash") != generation_hash:
        return {}
    return old


@contextlib.contextmanager
def timing_file(store: Store, generation_hash: str) -> Iterator[dict[str, Any]]:
    """Yield the accumulated timing dict (``image_runs``, ``seconds`` and any extra keys an adapter adds);
    whatever the block adds is written back on exit, errors included."""
    path = store.timing_json  # timing.json, or timing.shard-i-of-k.json: shards never share one
    old = _read(path, generation_hash)
    timing: dict[str, Any] = {k: v for k, v in old.items() if k != "generation_hash"}
    timing["image_runs"] = int(timing.get("image_runs", 0))
    timing["seconds"] = float(timing.get("seconds", 0.0))
    before = dict(timing)
    try:
        yield timing
    finally:
        if timing != before or not old:
            atomic_write_json(path, {"generation_hash": generation_hash, **timing})
