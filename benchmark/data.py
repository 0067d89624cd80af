"""Data sets: LR/HR pairs matched by file stem and validated before any generation.

Images are decoded by the one codec of :mod:`benchmark.images` (8-bit RGB by one rule).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from benchmark.files import building_folder, default_cache_dir, file_sha256
from benchmark.images import IMAGE_EXTS, read_image, to_rgb8, write_png_atomic
from benchmark.registry import GroupRegistry

log = logging.getLogger(__name__)

DATASETS = GroupRegistry("dataset", "dataset")  # names: conf/dataset/*.yaml


class DatasetError(ValueError):
    """A data set failed validation; the message lists every problem found."""


@dataclass(frozen=True)
class Sample:
    """One LR image (and its HR partner, when the data set has one)."""

    id: str
    lr_path: Path
    hr_path: Path | None
    lr_size: tuple[int, int]  # (height, width)


def content_hash(samples: Sequence[Sample]) -> str:
    """SHA-256 over every image id and the bytes of its LR and HR files, in sample order.

    The data set identity of the manifest (:meth:`Dataset.describe`); a report recomputes it
    from the recorded paths (:mod:`benchmark.datarecord`) to tell whether the files there are
    still the ones the runs used.
    """
    h = hashlib.sha256()
    for s in samples:
        h.update(s.id.encode())
        for p in (s.lr_path, s.hr_path):
            if p is not None:
                h.update(file_sha256(p))
    return h.hexdigest()


# ----------------------------------------------------------------------------- data sets


def list_images(folder: Path, role: str, problems: list[str], *, skip_other_files: bool = False,
                require_images: bool = True) -> dict[str, Path]:
    """Map stem -> image path of the files of ``folder`` (not its sub-folders, not hidden files),
    appending every problem found to ``problems``: two files with one stem (never a silent choice of
    one), a file that is not an image (unless ``skip_other_files``), no images at all (unless not
    ``require_images``). ``role`` names the folder in messages (LR, HR, precomputed)."""
    out: dict[str, Path] = {}
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for p in entries:
        if p.is_dir():
            continue
        if p.suffix.lower() not in IMAGE_EXTS:
            if not skip_other_files:  # a source folder of HR images may hold lists or notes beside them
                problems.append(
                    f"{role} file {p} is not an image (extension {p.suffix or 'none'}; "
                    f"expected one of {', '.join(IMAGE_EXTS)}): move it out of the folder"
                )
            continue
        if p.stem in out:
            problems.append(
                f"duplicate stem {p.stem!r} in {role} folder {folder}: {out[p.stem].name} and "
                f"{p.name}; keep only one"
            )
            continue
        out[p.stem] = p
    if not require_images:
        pass
    elif not entries:
        problems.append(f"{role} folder {folder} is empty")
    elif not out and skip_other_files:
        problems.append(f"{role} folder {folder} holds no images ({', '.join(IMAGE_EXTS)})")
    return out


def _image_size(path: Path, role: str, problems: list[str]) -> tuple[int, int] | None:
    try:
        arr = read_image(path)
    except ValueError as err:
        problems.append(f"{role} image is unreadable: {err}")
        return None
    return int(arr.shape[0]), int(arr.shape[1])


class Dataset:
    """Base class: a named list of samples at a fixed scale."""

    name: str = "dataset"
    scale: int = 4

    def samples(self) -> list[Sample]:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def has_hr(self) -> bool:
        return any(s.hr_path is not None for s in self.samples())

    def describe(self) -> dict:
        """Identity of the data set for the manifest (name, scale and a content hash over ids and file bytes)."""
        return {"name": self.name, "scale": self.scale, "num_images": len(self.samples()),
                "content_hash": content_hash(self.samples())}


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(lr_dir: str | os.PathLike, hr_dir: str | os.PathLike | None = None) -> str:
    """The name of a ``dataset=folder`` data set when ``dataset.name`` is not given, so the results
    of two folders never share ``<output_dir>/<name>/<method>/``.

    ``<parent>-<folder>-<hash>``: the last two components of the resolved LR folder (characters
    other than letters, digits, ``.``, ``_``, ``-`` become ``_``), then the first 6 hex digits of the
    SHA-256 of the resolved LR and HR folder paths (``"<lr>\\0<hr>"``, HR empty when there is none),
    e.g. ``RealSR-test_LR-3fa2c1`` for ``/data/RealSR/test_LR``. The hash tells apart folders with the
    same last components (``/a/x/LR``, ``/b/x/LR``) and the same LR folder scored against two HR folders.
    Relative paths are resolved against the current directory.
    """
    lr = Path(lr_dir).expanduser().resolve()
    hr = str(Path(hr_dir).expanduser().resolve()) if hr_dir not in (None, "") else ""
    parts = [_UNSAFE.sub("_", p).strip("._-") or "_" for p in lr.parts[1:][-2:]]
    digest = hashlib.sha256(f"{lr}\0{hr}".encode()).hexdigest()[:6]
    return "-".join(parts + [digest])


class FolderDataset(Dataset):
    """LR images in ``lr_dir`` and (optionally) HR images of the same stem in ``hr_dir``.

    Pairs are matched by file stem, never by sort order. Every problem is collected and
    raised together as one :class:`DatasetError` before anything is generated. ``name``
    (``dataset.name``, the results folder) defaults to :func:`folder_name` of the folders.
    """

    def __init__(self, lr_dir: str, hr_dir: str | None = None, scale: int = 4,
                 name: str | None = None) -> None:
        if lr_dir in (None, "", "???"):
            raise ValueError("dataset.lr_dir is required for dataset=folder: pass dataset.lr_dir=<folder of LR images>")
        self.lr_dir = Path(lr_dir).expanduser()
        self.hr_dir = Path(hr_dir).expanduser() if hr_dir else None
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(f"dataset.scale must be a positive integer, got {scale!r}")
        self.scale = scale
        self.name = name if name not in (None, "") else folder_name(self.lr_dir, self.hr_dir)
        self._samples: list[Sample] | None = None

    def samples(self) -> list[Sample]:
        if self._samples is None:
            self._samples = self._validate()
        return self._samples

    def _validate(self) -> list[Sample]:
        for role, folder in (("LR", self.lr_dir), ("HR", self.hr_dir)):
            if folder is not None and not folder.is_dir():
                raise FileNotFoundError(
                    f"{role} folder {folder} of dataset {self.name!r} does not exist: "
                    f"set dataset.{role.lower()}_dir to a folder of images"
                )
        problems: list[str] = []
        lr = list_images(self.lr_dir, "LR", problems)
        hr = list_images(self.hr_dir, "HR", problems) if self.hr_dir else {}
        for stem in sorted(set(hr) - set(lr)):
            problems.append(f"HR image {hr[stem]} has no LR partner named {stem}.* in {self.lr_dir}")
        samples: list[Sample] = []
        without_hr: list[str] = []
        for stem in sorted(lr):
            lr_size = _image_size(lr[stem], "LR", problems)
            hr_path = hr.get(stem)
            if hr_path is not None:
                hr_size = _image_size(hr_path, "HR", problems)
                if lr_size and hr_size and hr_size != (lr_size[0] * self.scale, lr_size[1] * self.scale):
                    problems.append(
                        f"size mismatch for {stem!r}: LR {lr[stem].name} is {lr_size[1]}x{lr_size[0]}, "
                        f"HR {hr_path.name} is {hr_size[1]}x{hr_size[0]}, expected exactly "
                        f"{lr_size[1] * self.scale}x{lr_size[0] * self.scale} (scale {self.scale})"
                    )
            elif self.hr_dir is not None:
                without_hr.append(stem)
            if lr_size:
                samples.append(Sample(stem, lr[stem], hr_path, lr_size))
        if problems:
            raise DatasetError(
                f"dataset {self.name!r} ({self.lr_dir}) has {len(problems)} problem(s):\n  - "
                + "\n  - ".join(problems)
            )
        if without_hr:
            log.warning("dataset %s: %d LR image(s) have no HR partner, full-reference metrics skip them: %s",
                        self.name, len(without_hr), ", ".join(without_hr))
        return samples


# The demo set: deterministic crops of colour photographs that ship inside scikit-image.
DEMO_IMAGES: tuple[tuple[str, int, int], ...] = (
    # (skimage.data name, top, left) of a 256x256 HR crop
    ("astronaut", 40, 150),
    ("coffee", 72, 160),
    ("chelsea", 30, 120),
    ("rocket", 90, 200),
    ("immunohistochemistry", 128, 128),
    ("hubble_deep_field", 300, 360),
)
DEMO_HR_SIZE = 256
DEMO_VERSION = "v1"


def build_demo(cache_dir: Path, scale: int = 4) -> Path:
    """Write the demo set (HR crops, bicubic LR) under ``cache_dir`` once; return its folder."""
    import skimage.data

    root = cache_dir / f"demo_{DEMO_VERSION}_x{scale}"
    if (root / "HR").is_dir() and len(list((root / "HR").glob("*.png"))) == len(DEMO_IMAGES):
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    with building_folder(Path(tempfile.mkdtemp(prefix=".demo.", dir=cache_dir)), root) as tmp:
        for name, top, left in DEMO_IMAGES:
            hr = to_rgb8(getattr(skimage.data, name)())[top:top + DEMO_HR_SIZE, left:left + DEMO_HR_SIZE]
            if hr.shape[:2] != (DEMO_HR_SIZE, DEMO_HR_SIZE):
                raise RuntimeError(f"demo crop of skimage.data.{name} is {hr.shape[:2]}")
            lr = np.asarray(Image.fromarray(hr).resize(
                (DEMO_HR_SIZE // scale, DEMO_HR_SIZE // scale), Image.Resampling.BICUBIC))
            write_png_atomic(tmp / "HR" / f"{name}.png", hr)
            write_png_atomic(tmp / "LR" / f"{name}.png", lr)
    log.info("built the demo data set in %s", root)
    return root


class DemoDataset(FolderDataset):
    """Six 256x256 crops of scikit-image's colour photographs with bicubic x4 LR (no download)."""

    def __init__(self, cache_dir: str | None = None, scale: int = 4, name: str = "demo") -> None:
        root = build_demo(Path(cache_dir).expanduser() if cache_dir else default_cache_dir(), scale)
        super().__init__(str(root / "LR"), str(root / "HR"), scale, name)


def sample_ids(samples: Sequence[Sample]) -> list[str]:
    return [s.id for s in samples]
