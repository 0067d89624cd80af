"""The one image codec: every image srbench reads (LR, HR, SR) becomes 8-bit RGB by one rule,
and every PNG it writes is written atomically.

Conversion rule:

* 16-bit images are mapped to 8 bits by ``round(v * 255 / 65535)``;
* grayscale is replicated to three channels;
* palette images are expanded through their palette;
* an alpha channel is dropped (the colour values are kept as they are, not composited);
* the result is 8-bit RGB, read as ``uint8`` ``H x W x 3`` and scaled to [0, 1] by ``/255``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark import write_errors

if TYPE_CHECKING:  # torch is imported where tensors are made, so reports that only read PNGs stay light
    import torch

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``, so that a reader
    never sees a partial file. The temporary file ``.<stem>.<random><suffix>.tmp`` sits beside
    ``path`` (same file system, so the replace is atomic); nothing reads ``*.tmp`` files.

    A failed write raises :class:`~benchmark.write_errors.OutputWriteError` naming ``path``.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{path.suffix}.tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise write_errors.explain(path, err) from err
        raise




def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR chunk (PIL silently truncates 16-bit RGB to 8 bits)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return None
    return head[24]


def to_rgb8(arr: np.ndarray) -> np.ndarray:
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


DEFAULT_MAX_PIXELS = 89_478_485  # PIL's Image.MAX_IMAGE_PIXELS: about 256 MiB of 24-bit pixels
_max_pixels = DEFAULT_MAX_PIXELS


def set_max_pixels(limit: int | None) -> None:
    """The largest image (width x height) any decoder may open (the ``max_pixels`` key; None: the default,
    PIL's ``MAX_IMAGE_PIXELS``). One limit for PIL and OpenCV alike, checked from the header."""
    global _max_pixels
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"max_pixels={limit!r}: expected a positive integer number of pixels (or null for the "
                         f"default {DEFAULT_MAX_PIXELS})")
    _max_pixels = DEFAULT_MAX_PIXELS if limit is None else int(limit)


def header_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` declared by the file's header, without decoding any pixel.

    PNG: the IHDR chunk (also for 16-bit files, which OpenCV decodes); other formats: PIL's
    lazy open with its own bomb check off (this function is the check).
    """
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # PIL would warn or raise without naming the file; we check below
    try:
        with Image.open(path) as img:
            return img.size
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _check_pixels(path: Path) -> None:
    w, h = header_size(path)
    if w * h > _max_pixels:
        raise ValueError(f"it declares {w}x{h} = {w * h} pixels, more than max_pixels={_max_pixels} (a decompression "
                         f"bomb, or a genuinely huge image: then raise the limit with max_pixels=<pixels>)")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode ``path`` to 8-bit RGB (``uint8``, H x W x 3) following the module's rule.

    The size declared in the header is checked against ``max_pixels`` (:func:`set_max_pixels`)
    before anything is decoded. Raises ValueError naming the file when it cannot be decoded or
    is too large.
    """
    path = Path(path)
    try:
        _check_pixels(path)
        if path.suffix.lower() == ".png" and (_png_bit_depth(path) or 8) == 16:
            import cv2  # PIL cannot hold 16-bit RGB; OpenCV can

            arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise ValueError("OpenCV could not decode it")
            if arr.ndim == 3:  # OpenCV orders colour channels as BGR(A)
                arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]] if arr.shape[2] >= 3 else arr
            return to_rgb8(arr)
        with Image.open(path) as img:
            img.load()
            if img.mode == "P" or img.mode == "PA":
                img = img.convert("RGBA")
            elif img.mode == "CMYK" or img.mode == "YCbCr" or img.mode == "LAB":
                img = img.convert("RGB")
            elif img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                return to_rgb8(np.asarray(img).astype(np.uint16))
            elif img.mode == "I":
                return to_rgb8(np.asarray(img).clip(0, 65535).astype(np.uint16))
            elif img.mode == "1":
                img = img.convert("L")
            return to_rgb8(np.asarray(img))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err


def to_tensor(arr: np.ndarray) -> "torch.Tensor":
    """uint8 H x W x 3 -> float32 tensor 3 x H x W in [0, 1]."""
    import torch

    if not arr.flags.writeable:  # arrays decoded by PIL are read-only views
        arr = arr.copy()
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)


def to_uint8(tensor: "torch.Tensor") -> np.ndarray:
    """Float tensor 3 x H x W (or a batch B x 3 x H x W) in [0, 1] -> C-contiguous uint8 H x W x 3
    (B x H x W x 3): clamp to [0, 1], x 255, round half to even (``torch.round``).

    Values outside [0, 1] are clamped (the sink refuses them before converting). The array is
    C-contiguous, the layout ``read_image`` returns, so scoring it (numpy's reductions sum in
    memory order) gives the bits of scoring the PNG read back, with no copy on the way; a batch is
    converted in one pass and its ``[i]`` are C-contiguous as well.
    """
    import torch

    x = tensor.detach().float().clamp(0, 1).mul_(255.0).round_()
    if x.ndim not in (3, 4):
        raise ValueError(f"to_uint8 expects 3 x H x W or B x 3 x H x W, got shape {list(x.shape)}")
    order = (1, 2, 0) if x.ndim == 3 else (0, 2, 3, 1)
    return x.permute(*order).to(torch.uint8, memory_format=torch.contiguous_format).cpu().numpy()


def encode_png(arr: np.ndarray) -> bytes:
    """uint8 H x W x 3 RGB -> the bytes of an 8-bit RGB PNG (lossless: decoding gives ``arr``).

    Encoded with libpng through OpenCV at zlib level 1, the Paeth filter and zlib's run-length
    strategy: on 512x512 SR outputs about 2-4x faster than Pillow at ``compress_level=1`` (whose
    adaptive filter choice dominates its time) and no larger (smaller on smooth images, the same
    on noisy ones); the figures are in docs/benchmarks.md (Harness overhead). Raises ValueError
    when ``arr`` is not uint8 H x W x 3.
    """
    import cv2  # 0.2 s to import: only where samples are written, so reports that read PNGs stay light

    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 H x W x 3 RGB array, got {arr.dtype} {list(arr.shape)}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH,
                            cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {arr.shape[1]}x{arr.shape[0]} image as PNG")
    return buf.tobytes()


def write_png_atomic(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` (uint8 H x W x 3 RGB) as an 8-bit RGB PNG (:func:`encode_png`) so that a
    reader never sees a partial file.

    A failed write raises :class:`~benchmark.write_errors.OutputWriteError` naming ``path``.
    """
    atomic_write_bytes(path, encode_png(arr))


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
