"""G-STD and L-STD exactly as DESIGN.md defines them.

* G-STD of metric p: for each image the population std (ddof=0) of p over the N runs,
  then the mean over the M images.
* L-STD of one image: the per-pixel population std over the N runs of the 8-bit RGB
  samples scaled to [0, 1], border-cropped, averaged over channels and pixels. The L-STD of
  a data set is the mean over images of the per-image values, so images of different sizes
  each count once and each uses its own size.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def gstd(scores: pd.DataFrame) -> dict[str, float | None]:
    """G-STD per metric from tidy scores (columns image, run, metric, value).

    None where a metric has a single run per image (the std is undefined, not 0).
    """
    out: dict[str, float | None] = {}
    for metric, df in scores.groupby("metric", sort=True):
        per_image = df.groupby("image")["value"]
        sizes = per_image.size()
        if sizes.max() < 2:
            out[str(metric)] = None
            continue
        stds = per_image.apply(lambda v: float(np.std(v.to_numpy(dtype=np.float64), ddof=0)))
        # an image left with one run (the others excluded as undefined, issue 12) has no spread
        # to measure: its std of 0 would pull G-STD down, so only images with >= 2 runs count
        out[str(metric)] = float(stds[sizes >= 2].mean())
    return out


def crop(arr: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from each side of the two axes before the last one (H, W of ...xHxWxC)."""
    if border <= 0:
        return arr
    return arr[..., border:-border, border:-border, :]


def lstd_image(runs: Sequence[np.ndarray], crop_border: int) -> float | None:
    """L-STD of one image from its N runs (uint8 H x W x 3 each). None for a single run."""
    if len(runs) < 2:
        return None
    stack = crop(np.stack(runs).astype(np.float64) / 255.0, crop_border)
    return float(stack.std(axis=0, ddof=0).mean())


def lstd(per_image: Sequence[float | None]) -> float | None:
    """Data-set L-STD: mean over images of the per-image L-STD (None when undefined)."""
    values = [v for v in per_image if v is not None]
    if not values or len(values) != len(per_image):
        return None
    return float(np.mean(values))
