"""What report and merge need from a data set, stored as plain data at run time.

A results folder is data, never code: ``report`` and ``merge`` must not rebuild a data set
from the ``_target_`` in a stored config (a shared results folder could then name
``shutil.copyfile``, ``builtins.open`` or ``numpy.load(allow_pickle=True)`` and overwrite
files or run code). The runner therefore writes the data set's image list, LR/HR paths and
content hash into the manifest (key ``"data"``), and readers rebuild :class:`Sample` objects
from those strings and numbers alone, checking every type on the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.data import Sample, content_hash  # noqa: F401  (content_hash: the hash a report recomputes)

RECORD_KEY = "data"  # key of the record in manifest.json / manifest.shard-*.json


def record(name: str, scale: int, chash: str, samples: Sequence[Sample]) -> dict[str, Any]:
    """Plain-data record of a data set: name, scale, content hash and, per image, id, LR path,
    HR path (or None) and LR size ``[height, width]``. Paths are absolute strings."""
    return {"name": str(name), "scale": int(scale), "content_hash": str(chash),
            "images": [{"id": s.id, "lr": str(Path(s.lr_path).absolute()),
                        "hr": None if s.hr_path is None else str(Path(s.hr_path).absolute()),
                        "lr_size": [int(s.lr_size[0]), int(s.lr_size[1])]} for s in samples]}


def samples_of(rec: Any, where: str | Path) -> list[Sample]:
    """The samples of a stored record, checked to be plain strings and integers.

    Raises ValueError naming ``where`` (the file the record came from) when the record is
    absent or malformed; nothing in it is imported, instantiated or unpickled.
    """
    fix = ("rerun the same command (stored samples are reused; only scoring runs again) "
           "so that srbench records the data set")
    if rec is None:
        raise ValueError(f"{where} has no data set record ({RECORD_KEY!r}: image list and LR/HR paths; written by "
                         f"srbench since results are data, not code): {fix}")
    if not isinstance(rec, dict) or not isinstance(rec.get("images"), list):
        raise ValueError(f"{where}: {RECORD_KEY!r} is not a data set record (expected an object with a list "
                         f"'images'): {fix}")
    out: list[Sample] = []
    for n, img in enumerate(rec["images"]):
        ok = (isinstance(img, dict) and isinstance(img.get("id"), str) and isinstance(img.get("lr"), str)
              and (img.get("hr") is None or isinstance(img.get("hr"), str))
              and isinstance(img.get("lr_size"), list) and len(img["lr_size"]) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in img["lr_size"]))
        if not ok:
            raise ValueError(f"{where}: entry {n} of {RECORD_KEY}.images is not {{id, lr, hr, lr_size: [h, w]}} "
                             f"(found {img!r:.200}): {fix}")
        out.append(Sample(img["id"], Path(img["lr"]), None if img["hr"] is None else Path(img["hr"]),
                          (img["lr_size"][0], img["lr_size"][1])))
    return out
