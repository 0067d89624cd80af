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


class RunningMoments:
    """Per-pixel mean and population variance over runs, fed a few runs at a time.

    Chan, Golub and LeVeque's pairwise update (the batch form of Welford's algorithm), so memory
    is two float64 arrays of one image whatever the number of runs N, and the result equals the
    two-pass ``np.std(stack, axis=0, ddof=0)`` to rounding (tests compare them).
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, batch: np.ndarray) -> None:
        """Add ``batch`` (k x ... , k runs of the same shape)."""
        x = np.asarray(batch, dtype=np.float64)
        k = x.shape[0]
        if k == 0:
            return
        b_mean = x.mean(axis=0)
        b_m2 = ((x - b_mean) ** 2).sum(axis=0)
        if self.n == 0:
            self.n, self.mean, self.m2 = k, b_mean, b_m2
            return
        total = self.n + k
        delta = b_mean - self.mean
        self.mean = self.mean + delta * (k / total)
        self.m2 = self.m2 + b_m2 + delta ** 2 * (self.n * k / total)
        self.n = total

    def std(self) -> np.ndarray:
        """Per-element population std (ddof=0) of everything added so far."""
        if self.n == 0 or self.m2 is None:
            raise ValueError("no runs were added")
        return np.sqrt(np.maximum(self.m2, 0.0) / self.n)


def lstd_streamed(moments: RunningMoments, crop_border: int) -> float | None:
    """L-STD of one image from the running moments of its 8-bit runs scaled to [0, 1] (None for one run).

    ``moments`` must have been fed uint8 H x W x 3 runs divided by 255 and border-cropped with
    :func:`crop`, as :func:`lstd_image` does in one pass.
    """
    if moments.n < 2:
        return None
    return float(moments.std().mean())


def lstd(per_image: Sequence[float | None]) -> float | None:
    """Data-set L-STD: mean over images of the per-image L-STD (None when undefined)."""
    values = [v for v in per_image if v is not None]
    if not values or len(values) != len(per_image):
        return None
    return float(np.mean(values))
