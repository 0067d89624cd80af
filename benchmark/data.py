"""Data sets: LR/HR pairs matched by file stem and validated before any generation.

Image conversion rule (one rule for every image srbench reads, LR, HR or SR):

* 16-bit images are mapped to 8 bits by ``round(v * 255 / 65535)``;
* grayscale is replicated to three channels;
* palette images are expanded through their palette;
* an alpha channel is dropped (the colour values are kept as they are, not composited);
* the result is 8-bit RGB, read as ``uint8`` ``H x W x 3`` and scaled to [0, 1] by ``/255``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark.registry import Registry

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DATASETS: Registry[type] = Registry("dataset")


class DatasetError(ValueError):
    """A data set failed validation; the message lists every problem found."""


@dataclass(frozen=True)
class Sample:
    """One LR image (and its HR partner, when the data set has one)."""

    id: str
    lr_path: Path
    hr_path: Path | None
    lr_size: tuple[int, int]  # (height, width)


# ----------------------------------------------------------------------------- image I/O


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR chunk (PIL silently truncates 16-bit RGB to 8 bits)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return None
    return head[24]


def _to_rgb8(arr: np.ndarray) -> np.ndarray:
    """Apply the module's conversion rule to a decoded H x W [x C] array."""
    if arr.dtype == np.uint16 or arr.dtype == np.int32:
        arr = np.rint(arr.astype(np.float64) * (255.0 / 65535.0)).clip(0, 255).astype(np.uint8)
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {arr.dtype} (expected 8- or 16-bit integers)")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    channels = arr.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    elif channels == 4:  # RGBA
        arr = arr[:, :, :3]
    elif channels != 3:
        raise ValueError(f"unsupported channel count {channels}")
    return np.ascontiguousarray(arr)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to 8-bit RGB (``uint8``, H x W x 3) following the module's rule.

    Raises ValueError naming the file when it cannot be decoded.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".png" and (_png_bit_depth(path) or 8) == 16:
            import cv2  # PIL cannot hold 16-bit RGB; OpenCV can

            arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise ValueError("OpenCV could not decode it")
            if arr.ndim == 3:  # OpenCV orders colour channels as BGR(A)
                arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]] if arr.shape[2] >= 3 else arr
            return _to_rgb8(arr)
        with Image.open(path) as img:
            img.load()
            if img.mode == "P" or img.mode == "PA":
                img = img.convert("RGBA")
            elif img.mode == "CMYK" or img.mode == "YCbCr" or img.mode == "LAB":
                img = img.convert("RGB")
            elif img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                return _to_rgb8(np.asarray(img).astype(np.uint16))
            elif img.mode == "I":
                return _to_rgb8(np.asarray(img).clip(0, 65535).astype(np.uint16))
            elif img.mode == "1":
                img = img.convert("L")
            return _to_rgb8(np.asarray(img))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err


def to_tensor(arr: np.ndarray):
    """uint8 H x W x 3 -> float32 tensor 3 x H x W in [0, 1]."""
    import torch

    if not arr.flags.writeable:  # arrays decoded by PIL are read-only views
        arr = arr.copy()
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)


def to_uint8(tensor) -> np.ndarray:
    """Float tensor 3 x H x W in [0, 1] -> uint8 H x W x 3 (round half to even, as torch.round)."""
    return tensor.detach().float().clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()


def write_png_atomic(path: Path, arr: np.ndarray) -> None:
    """Write an 8-bit RGB PNG so that a reader never sees a partial file.

    A failed write raises :class:`~benchmark.write_errors.OutputWriteError` naming ``path``.
    """
    from benchmark.store import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", compress_level=1)
    atomic_write_bytes(path, buf.getvalue())


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk every complete PNG ends with


def png_complete(path: Path) -> bool:
    """True when ``path`` ends with PNG's IEND chunk.

    Decoding alone does not prove a file complete: with ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``
    (a process-wide flag that some libraries set on import) PIL fills a truncated PNG with
    grey instead of failing. Checking the end chunk does not depend on that flag.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < len(PNG_END):
                return False
            f.seek(-len(PNG_END), os.SEEK_END)
            return f.read() == PNG_END
    except OSError:
        return False


# ----------------------------------------------------------------------------- data sets


def _list_dir(folder: Path, role: str, problems: list[str]) -> dict[str, Path]:
    """Map stem -> image path of a folder, recording every problem found."""
    out: dict[str, Path] = {}
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for p in entries:
        if p.is_dir():
            continue
        if p.suffix.lower() not in IMAGE_EXTS:
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
    if not entries:
        problems.append(f"{role} folder {folder} is empty")
    return out


def _image_size(path: Path, role: str, problems: list[str]) -> tuple[int, int] | None:
    try:
        arr = read_image(path)
    except ValueError as err:
        problems.append(f"{role} image is unreadable: {err}")
        return None
    return int(arr.shape[0]), int(arr.shape[1])


def file_sha256(path: str | os.PathLike) -> bytes:
    """SHA-256 digest of a file's bytes, read in 1 MiB chunks (content hashes of data sets,
    reference-feature caches and converted parameter files all use it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


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
        from benchmark.datarecord import content_hash

        return {"name": self.name, "scale": self.scale, "num_images": len(self.samples()),
                "content_hash": content_hash(self.samples())}


@DATASETS.register("folder")
class FolderDataset(Dataset):
    """LR images in ``lr_dir`` and (optionally) HR images of the same stem in ``hr_dir``.

    Pairs are matched by file stem, never by sort order. Every problem is collected and
    raised together as one :class:`DatasetError` before anything is generated.
    """

    def __init__(self, lr_dir: str, hr_dir: str | None = None, scale: int = 4,
                 name: str = "folder") -> None:
        if lr_dir in (None, "", "???"):
            raise ValueError("dataset.lr_dir is required for dataset=folder: pass dataset.lr_dir=<folder of LR images>")
        self.lr_dir = Path(lr_dir).expanduser()
        self.hr_dir = Path(hr_dir).expanduser() if hr_dir else None
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(f"dataset.scale must be a positive integer, got {scale!r}")
        self.scale = scale
        self.name = name
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
        lr = _list_dir(self.lr_dir, "LR", problems)
        hr = _list_dir(self.hr_dir, "HR", problems) if self.hr_dir else {}
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
    tmp = Path(tempfile.mkdtemp(prefix=".demo.", dir=cache_dir))
    try:
        for name, top, left in DEMO_IMAGES:
            hr = _to_rgb8(getattr(skimage.data, name)())[top:top + DEMO_HR_SIZE, left:left + DEMO_HR_SIZE]
            if hr.shape[:2] != (DEMO_HR_SIZE, DEMO_HR_SIZE):
                raise RuntimeError(f"demo crop of skimage.data.{name} is {hr.shape[:2]}")
            lr = np.asarray(Image.fromarray(hr).resize(
                (DEMO_HR_SIZE // scale, DEMO_HR_SIZE // scale), Image.Resampling.BICUBIC))
            write_png_atomic(tmp / "HR" / f"{name}.png", hr)
            write_png_atomic(tmp / "LR" / f"{name}.png", lr)
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("built the demo data set in %s", root)
    return root


def default_cache_dir() -> Path:
    return Path(os.environ.get("SRBENCH_CACHE", Path.home() / ".cache" / "srbench"))


@DATASETS.register("demo")
class DemoDataset(FolderDataset):
    """Six 256x256 crops of scikit-image's colour photographs with bicubic x4 LR (no download)."""

    def __init__(self, cache_dir: str | None = None, scale: int = 4, name: str = "demo") -> None:
        root = build_demo(Path(cache_dir).expanduser() if cache_dir else default_cache_dir(), scale)
        super().__init__(str(root / "LR"), str(root / "HR"), scale, name)


def sample_ids(samples: Sequence[Sample]) -> list[str]:
    return [s.id for s in samples]


# The published test sets and the synthetic sets register themselves in DATASETS (imported last:
# they build on FolderDataset). RealSRDataset stays importable from here.
import benchmark.testsets  # noqa: E402,F401
import benchmark.synthetic  # noqa: E402,F401


def __getattr__(name: str):
    if name == "RealSRDataset":  # moved to benchmark.testsets (fetched and verified); old imports keep working
        from benchmark.testsets import RealSRDataset

        return RealSRDataset
    raise AttributeError(f"module 'benchmark.data' has no attribute {name!r}")
