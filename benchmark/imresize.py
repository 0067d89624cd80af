"""Bicubic resizing with MATLAB ``imresize`` semantics (the SR community's bicubic convention).

Set5/Set14/DIV2K "bicubic" LR images, and the ImageNet bicubic sets of DDRM/DDNM, are made with
MATLAB's ``imresize(img, 1/s, 'bicubic')``. Its semantics, from MATLAB's documented algorithm
(``imresize.m``: ``contributions``, ``cubic``) and reproduced by BasicSR's
``basicsr/utils/matlab_functions.py``:

* the Keys cubic kernel with ``a = -0.5``;
* **antialiasing** when shrinking: the kernel is stretched by ``1/scale`` (``scale * k(scale * x)``),
  so a x4 reduction averages over a 16-pixel-wide window;
* output pixel ``x`` (1-based) samples the input at ``u = x / scale + 0.5 * (1 - 1 / scale)``;
* out-of-range taps are mirrored (``symmetric`` padding: the edge pixel is repeated);
* weights of each output pixel are normalised to sum 1;
* the dimension with the smaller scale factor is resized first (rows first when equal);
* 8-bit input gives 8-bit output rounded half away from zero and clipped to [0, 255]. MATLAB's
  MEX keeps the intermediate (after the first dimension) in double here as BasicSR does; this is
  the convention of BasicSR and of the Python ports used by the SR papers.

Everything is computed in float64 with NumPy, so results do not depend on SIMD paths.
"""

from __future__ import annotations

import math

import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def contributions(in_len: int, out_len: int, scale: float, antialias: bool = True,
                  kernel_width: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``[out_len, P]`` and 0-based input indices ``[out_len, P]`` of a 1-D resize.

    Mirrors MATLAB's ``contributions``: columns whose weights are all zero are dropped.
    """
    if scale < 1 and antialias:
        def kernel(x):
            return scale * cubic(scale * x)
        width = kernel_width / scale
    else:
        kernel = cubic
        width = kernel_width
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    p = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(p, dtype=np.float64)[None, :]  # 1-based, may be out of range
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])  # symmetric mirror, 0-based
    idx0 = aux[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], idx0[:, keep]


def _resize_axis(a: np.ndarray, axis: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    w, idx = contributions(a.shape[axis], out_len, scale, antialias)
    moved = np.moveaxis(a, axis, 0)  # [in_len, ...]
    gathered = moved[idx]  # [out_len, P, ...]
    out = np.einsum("op,op...->o...", w, gathered)
    return np.moveaxis(out, 0, axis)


def imresize(img: np.ndarray, scale: float | None = None, output_shape: tuple[int, int] | None = None,
             antialias: bool = True) -> np.ndarray:
    """Resize ``img`` (``H x W`` or ``H x W x C``) bicubically as MATLAB's ``imresize``.

    Args:
        img: ``uint8`` (returned as ``uint8``, rounded and clipped) or float (returned as float64,
            not clipped, as MATLAB does for double input).
        scale: factor applied to both sides (e.g. 0.25 for x4 reduction); the output side is
            ``ceil(side * scale)`` as in MATLAB.
        output_shape: ``(H, W)`` instead of ``scale`` (the scale of each side is then out/in).
        antialias: MATLAB's ``'Antialiasing'`` option (on by default for bicubic).

    Raises:
        ValueError: neither or both of ``scale`` and ``output_shape`` given, or a side would be 0.
    """
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize needs exactly one of scale and output_shape")
    h, w = img.shape[:2]
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"imresize scale must be positive, got {scale}")
        out_h, out_w = int(math.ceil(h * scale)), int(math.ceil(w * scale))
        scales = (float(scale), float(scale))
    else:
        out_h, out_w = int(output_shape[0]), int(output_shape[1])
        scales = (out_h / h, out_w / w)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"imresize of a {w}x{h} image by {scale or output_shape} gives an empty image")
    x = img.astype(np.float64)
    order = sorted(range(2), key=lambda d: scales[d])  # stable: rows first on ties, as MATLAB's sort
    for d in order:
        x = _resize_axis(x, d, (out_h, out_w)[d], scales[d], antialias)
    if img.dtype == np.uint8:
        return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)  # values >= 0: floor(x+.5) = round half away
    return x
