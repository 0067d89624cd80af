"""Synthetic LR/HR folders for benchmarks: crops of the colour photographs that ship inside
scikit-image (natural image statistics, so NIQE and the deep metrics see photographs, not noise),
bicubic-downscaled LR. Deterministic for a given (n, hr_size, scale, seed).

    from synthetic_pairs import write_pairs
    lr_dir, hr_dir = write_pairs(root, n=100, hr_size=128)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: the colour photographs of skimage.data (all at least 300 px on each side)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "hubble_deep_field")


def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def write_pairs(root: Path | str, n: int, hr_size: int, scale: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """Write ``n`` HR crops ``hr_size`` x ``hr_size`` (``img0000.png``, ...) and their bicubic
    ``hr_size // scale`` LR images under ``root/HR`` and ``root/LR``; return ``(lr_dir, hr_dir)``.

    Image i is a random crop (random flip) of photo ``i mod 7``; a photo smaller than the crop is
    enlarged first. ``hr_size`` must be a multiple of ``scale``.
    """
    if hr_size % scale:
        raise ValueError(f"hr_size={hr_size} must be a multiple of scale={scale}")
    root = Path(root)
    lr_dir, hr_dir = root / "LR", root / "HR"
    lr_dir.mkdir(parents=True, exist_ok=True)
    hr_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = {name: _photo(name) for name in PHOTOS}
    for i in range(n):
        img = photos[PHOTOS[i % len(PHOTOS)]]
        h, w = img.shape[:2]
        if min(h, w) < hr_size:
            k = hr_size / min(h, w)
            img = np.asarray(Image.fromarray(img).resize((max(hr_size, round(w * k)), max(hr_size, round(h * k))),
                                                         Image.Resampling.BICUBIC))
            h, w = img.shape[:2]
        top, left = int(rng.integers(0, h - hr_size + 1)), int(rng.integers(0, w - hr_size + 1))
        hr = img[top:top + hr_size, left:left + hr_size]
        if rng.random() < 0.5:
            hr = hr[:, ::-1]
        hr = np.ascontiguousarray(hr)
        lr = Image.fromarray(hr).resize((hr_size // scale, hr_size // scale), Image.Resampling.BICUBIC)
        Image.fromarray(hr).save(hr_dir / f"img{i:04d}.png")
        lr.save(lr_dir / f"img{i:04d}.png")
    return lr_dir, hr_dir
