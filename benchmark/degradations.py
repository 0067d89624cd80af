"""Synthetic degradations for test sets: bicubic, Real-ESRGAN second order, BSRGAN shuffle.

Written from the papers and the official code's semantics (read, not copied):

* Real-ESRGAN (Wang et al., ICCVW 2021): ``basicsr/data/degradations.py`` (kernels, noise),
  ``basicsr/data/realesrgan_dataset.py`` (kernel sampling), ``realesrgan/models/realesrgan_model.py``
  (the second-order pipeline). BasicSR's package cannot be imported with torchvision >= 0.17
  (it imports ``torchvision.transforms.functional_tensor``), so it is not a dependency.
* BSRGAN (Zhang et al., ICCV 2021): ``utils/utils_blindsr.py`` of cszn/BSRGAN
  (``degradation_bsrgan``: random shuffle of blur, blur, downsample, noise, JPEG, camera noise).

Every random choice is drawn from one ``numpy.random.Generator`` passed in (never a global RNG),
and every sampled value is returned in a record, so a set's manifest says exactly what was done
to each image. Arithmetic is float64 (NumPy/SciPy, torch on CPU for Real-ESRGAN's resizes,
OpenCV for BSRGAN's resizes and for JPEG), so the result is the same on every machine with the
same library versions (the set manifest records them).

Differences from the official code, each deliberate and documented in docs/datasets.md:
JPEG uses OpenCV's encoder at an integer quality (Real-ESRGAN trains with DiffJPEG at a float
quality); BSRGAN's camera-ISP step needs a model the official code does not ship (it is skipped
there too when ``isp_model`` is None, the default); the final random crop of both pipelines is
replaced by srbench's HR crop before degradation, so LR is exactly HR / scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from benchmark.imresize import imresize

Record = dict[str, Any]


# ----------------------------------------------------------------------------- kernels


def _grid(ksize: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(-(ksize // 2), ksize // 2 + 1, dtype=np.float64)
    return np.meshgrid(r, r)  # xx (columns), yy (rows)


def sigma_matrix(sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    """Covariance ``R diag(sx^2, sy^2) R^T`` of a rotated 2-D Gaussian (Real-ESRGAN's ``sigma_matrix2``)."""
    d = np.diag([sig_x ** 2, sig_y ** 2])
    u = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return u @ d @ u.T


def bivariate_kernel(ksize: int, sig_x: float, sig_y: float, theta: float, kind: str = "gaussian",
                     beta: float = 1.0) -> np.ndarray:
    """Normalised ``ksize x ksize`` kernel; ``kind`` is gaussian, generalized or plateau.

    With ``q = d^T S^-1 d`` (``d`` the offset from the centre, ``S`` from :func:`sigma_matrix`), as
    Real-ESRGAN: gaussian ``exp(-q / 2)``, generalized ``exp(-0.5 * q^beta)``, plateau ``1 / (1 + q^beta)``.
    """
    xx, yy = _grid(ksize)
    inv = np.linalg.inv(sigma_matrix(sig_x, sig_y, theta))
    q = inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy
    if kind == "gaussian":
        k = np.exp(-0.5 * q)
    elif kind == "generalized":
        k = np.exp(-0.5 * np.power(q, beta))
    elif kind == "plateau":
        k = 1.0 / (np.power(q, beta) + 1.0)
    else:
        raise ValueError(f"unknown kernel kind {kind!r} (gaussian, generalized, plateau)")
    return k / k.sum()


def circular_lowpass_kernel(cutoff: float, ksize: int, pad_to: int = 0) -> np.ndarray:
    """2-D sinc (ideal circular low-pass) kernel: ``cutoff * J1(cutoff * r) / (2 pi r)``, normalised.

    The centre (r = 0) takes the limit ``cutoff^2 / (4 pi)``. ``pad_to`` zero-pads to that size.
    """
    from scipy.special import j1

    if ksize % 2 == 0:
        raise ValueError(f"sinc kernel size must be odd, got {ksize}")
    c = (ksize - 1) / 2
    yy, xx = np.mgrid[0:ksize, 0:ksize].astype(np.float64)
    r = np.hypot(xx - c, yy - c)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = cutoff * j1(cutoff * r) / (2 * np.pi * r)
    k[r == 0] = cutoff ** 2 / (4 * np.pi)
    k = k / k.sum()
    if pad_to > ksize:
        p = (pad_to - ksize) // 2
        k = np.pad(k, ((p, p), (p, p)))
    return k


def random_mixed_kernel(rng: np.random.Generator, kernel_list: Sequence[str], kernel_prob: Sequence[float],
                        ksize: int, sigma_range: Sequence[float], betag_range: Sequence[float],
                        betap_range: Sequence[float]) -> tuple[np.ndarray, Record]:
    """One kernel of Real-ESRGAN's mixture (iso/aniso x gaussian/generalized/plateau)."""
    kind = str(rng.choice(list(kernel_list), p=np.asarray(kernel_prob) / np.sum(kernel_prob)))
    iso = kind.endswith("iso") and not kind.endswith("aniso")
    sx = float(rng.uniform(*sigma_range))
    sy = sx if iso else float(rng.uniform(*sigma_range))
    theta = 0.0 if iso else float(rng.uniform(-math.pi, math.pi))
    family = "gaussian" if kind in ("iso", "aniso") else kind.split("_")[0]
    beta = 1.0
    if family == "generalized":
        beta = float(rng.uniform(betag_range[0], 1) if rng.uniform() < 0.5 else rng.uniform(1, betag_range[1]))
    elif family == "plateau":
        beta = float(rng.uniform(betap_range[0], 1) if rng.uniform() < 0.5 else rng.uniform(1, betap_range[1]))
    k = bivariate_kernel(ksize, sx, sy, theta, family, beta)
    return k, {"type": kind, "size": ksize, "sigma_x": sx, "sigma_y": sy, "theta": theta, "beta": beta}


# ----------------------------------------------------------------------------- primitives


def filter2d(img: np.ndarray, kernel: np.ndarray, mode: str = "mirror") -> np.ndarray:
    """Correlate each channel of ``img`` (H x W x C float) with ``kernel``.

    ``mode='mirror'`` reflects without repeating the edge pixel (torch's ``F.pad(mode='reflect')``,
    used by Real-ESRGAN's ``filter2D``).
    """
    from scipy.ndimage import correlate

    return np.stack([correlate(img[:, :, c], kernel, mode=mode) for c in range(img.shape[2])], axis=2)


def torch_resize(img: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """``torch.nn.functional.interpolate`` in float64 on the CPU (Real-ESRGAN's resizes).

    ``mode``: area, bilinear or bicubic (``align_corners=False``, no antialiasing, as the official code).
    """
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(torch.float64)
    kw = {} if mode == "area" else {"align_corners": False}
    out = F.interpolate(t, size=(int(size[0]), int(size[1])), mode=mode, **kw)
    return out[0].numpy().transpose(1, 2, 0).copy()


def rgb_to_gray(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (torchvision's ``rgb_to_grayscale``), H x W x 1."""
    return (0.299 * img[:, :, 0] + 0.587 * img[:, :, 1] + 0.114 * img[:, :, 2])[:, :, None]


def gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float, gray: bool) -> np.ndarray:
    """Zero-mean Gaussian noise of std ``sigma`` (in [0, 1] units); ``gray``: one field for all channels."""
    h, w, c = shape
    if gray:
        return np.repeat(rng.standard_normal((h, w, 1)) * sigma, c, axis=2)
    return rng.standard_normal((h, w, c)) * sigma


def poisson_noise(rng: np.random.Generator, img: np.ndarray, scale: float, gray: bool) -> np.ndarray:
    """Real-ESRGAN's Poisson noise: the image is quantised to 8 bits, ``vals`` = the next power of
    two above its number of distinct values, noise = ``Poisson(img * vals) / vals - img``, times ``scale``."""
    src = rgb_to_gray(img) if gray else img
    src = np.clip(np.rint(src * 255.0), 0, 255) / 255.0
    vals = 2 ** math.ceil(math.log2(max(len(np.unique(src)), 1)))
    noise = rng.poisson(src * vals) / vals - src
    if gray:
        noise = np.repeat(noise, img.shape[2], axis=2)
    return noise * scale


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode with OpenCV's JPEG at ``quality`` (1-100); float [0,1] RGB in and out.

    The input is rounded to 8 bits first, as every JPEG encoder needs.
    """
    import cv2

    u8 = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(u8[:, :, ::-1]), [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a JPEG at quality {quality}")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float64) / 255.0


def to_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) / 255.0


def to_uint8(img: np.ndarray) -> np.ndarray:
    """[0,1] float -> uint8 by rounding half to even (as ``torch.round``) and clipping."""
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- Real-ESRGAN


# Kernel choices of both blur stages in StableSR's test_data.yaml (kernel_list / kernel_list2 and their
# probabilities are equal there); one tuple each so the two stages' defaults cannot drift apart.
_KERNELS: tuple[str, ...] = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
_KERNEL_PROB: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


@dataclass(frozen=True)
class RealESRGANParams:
    """Parameters of the Real-ESRGAN second-order degradation.

    Defaults: StableSR's test-set recipe ``configs/stableSRdata/test_data.yaml`` (the degradation
    used for StableSR's DIV2K_V2_val, the CCSR paper's DIV2K-Val): kernel sigmas [0.2, 1.5] /
    [0.2, 1.0], betag [0.5, 2], betap [1, 1.5], second blur 0.5, resize [0.3, 1.5] / [0.6, 1.2],
    noise [1, 15] / [1, 12], Poisson [0.05, 2] / [0.05, 1], gray noise 0.4, JPEG [60, 95] / [60, 100].
    """

    kernel_range: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_list: tuple[str, ...] = _KERNELS
    kernel_prob: tuple[float, ...] = _KERNEL_PROB
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 1.5)
    betag_range: tuple[float, float] = (0.5, 2.0)
    betap_range: tuple[float, float] = (1.0, 1.5)
    kernel_list2: tuple[str, ...] = _KERNELS
    kernel_prob2: tuple[float, ...] = _KERNEL_PROB
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.0)
    betag_range2: tuple[float, float] = (0.5, 2.0)
    betap_range2: tuple[float, float] = (1.0, 1.5)
    final_sinc_prob: float = 0.8
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.3, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 15.0)
    poisson_scale_range: tuple[float, float] = (0.05, 2.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (60.0, 95.0)
    second_blur_prob: float = 0.5
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.6, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 12.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 1.0)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[float, float] = (60.0, 100.0)
    pad_to: int = 21  # every kernel is zero-padded to 21 x 21, as the official dataset class does


def _realesrgan_kernel(rng: np.random.Generator, p: RealESRGANParams, second: bool) -> tuple[np.ndarray, Record]:
    ksize = int(rng.choice(p.kernel_range))
    sinc_prob = p.sinc_prob2 if second else p.sinc_prob
    if rng.uniform() < sinc_prob:
        cutoff = float(rng.uniform(math.pi / 3, math.pi) if ksize < 13 else rng.uniform(math.pi / 5, math.pi))
        return circular_lowpass_kernel(cutoff, ksize, p.pad_to), {"type": "sinc", "size": ksize, "cutoff": cutoff}
    if second:
        k, rec = random_mixed_kernel(rng, p.kernel_list2, p.kernel_prob2, ksize, p.blur_sigma2, p.betag_range2, p.betap_range2)
    else:
        k, rec = random_mixed_kernel(rng, p.kernel_list, p.kernel_prob, ksize, p.blur_sigma, p.betag_range, p.betap_range)
    pad = (p.pad_to - ksize) // 2
    return np.pad(k, ((pad, pad), (pad, pad))), rec


def _noise_step(rng: np.random.Generator, img: np.ndarray, gauss_prob: float, sigma_range, poisson_range,
                gray_prob: float) -> tuple[np.ndarray, Record]:
    gray = bool(rng.uniform() < gray_prob)
    if rng.uniform() < gauss_prob:
        sigma = float(rng.uniform(*sigma_range))
        out = img + gaussian_noise(rng, img.shape, sigma / 255.0, gray)
        rec = {"type": "gaussian", "sigma": sigma, "gray": gray}
    else:
        scale = float(rng.uniform(*poisson_range))
        out = img + poisson_noise(rng, img, scale, gray)
        rec = {"type": "poisson", "scale": scale, "gray": gray}
    return np.clip(out, 0.0, 1.0), rec


def _resize_factor(rng: np.random.Generator, probs, rng_range) -> tuple[str, float]:
    kind = str(rng.choice(["up", "down", "keep"], p=np.asarray(probs) / np.sum(probs)))
    if kind == "up":
        return kind, float(rng.uniform(1, rng_range[1]))
    if kind == "down":
        return kind, float(rng.uniform(rng_range[0], 1))
    return kind, 1.0


MODES = ("area", "bilinear", "bicubic")


def realesrgan_degrade(hr: np.ndarray, rng: np.random.Generator, scale: int = 4,
                       params: RealESRGANParams | None = None) -> tuple[np.ndarray, Record]:
    """Real-ESRGAN's second-order degradation of an 8-bit HR image (H x W x 3, H and W divisible
    by ``scale``); returns the 8-bit LR image (H/scale x W/scale x 3) and the sampled parameters."""
    p = params or RealESRGANParams()
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not divisible by the scale {scale}")
    rec: Record = {}
    k1, rec["kernel1"] = _realesrgan_kernel(rng, p, second=False)
    k2, rec["kernel2"] = _realesrgan_kernel(rng, p, second=True)
    if rng.uniform() < p.final_sinc_prob:
        ks = int(rng.choice(p.kernel_range))
        cutoff = float(rng.uniform(math.pi / 3, math.pi))
        sinc = circular_lowpass_kernel(cutoff, ks, p.pad_to)
        rec["final_sinc"] = {"size": ks, "cutoff": cutoff}
    else:
        sinc = None  # the official code convolves with a unit pulse: the identity
        rec["final_sinc"] = None

    out = filter2d(to_float(hr), k1)
    kind, f = _resize_factor(rng, p.resize_prob, p.resize_range)
    mode = str(rng.choice(MODES))
    out = torch_resize(out, (int(h * f), int(w * f)), mode)  # scale_factor semantics: floor(side * f)
    rec["resize1"] = {"kind": kind, "factor": f, "mode": mode}
    out, rec["noise1"] = _noise_step(rng, out, p.gaussian_noise_prob, p.noise_range, p.poisson_scale_range,
                                     p.gray_noise_prob)
    q = float(rng.uniform(*p.jpeg_range))
    out = jpeg(np.clip(out, 0, 1), round(q))
    rec["jpeg1"] = round(q)

    if rng.uniform() < p.second_blur_prob:
        out = filter2d(out, k2)
        rec["blur2"] = True
    else:
        rec["blur2"] = False
    kind, f = _resize_factor(rng, p.resize_prob2, p.resize_range2)
    mode = str(rng.choice(MODES))
    out = torch_resize(out, (int(h / scale * f), int(w / scale * f)), mode)
    rec["resize2"] = {"kind": kind, "factor": f, "mode": mode}
    out, rec["noise2"] = _noise_step(rng, out, p.gaussian_noise_prob2, p.noise_range2, p.poisson_scale_range2,
                                     p.gray_noise_prob2)
    size = (h // scale, w // scale)
    mode = str(rng.choice(MODES))
    q = round(float(rng.uniform(*p.jpeg_range2)))
    if rng.uniform() < 0.5:  # resize back + sinc, then JPEG
        out = torch_resize(out, size, mode)
        if sinc is not None:
            out = filter2d(out, sinc)
        out = jpeg(np.clip(out, 0, 1), q)
        rec["final_order"] = "resize_sinc_jpeg"
    else:  # JPEG, then resize back + sinc
        out = jpeg(np.clip(out, 0, 1), q)
        out = torch_resize(out, size, mode)
        if sinc is not None:
            out = filter2d(out, sinc)
        rec["final_order"] = "jpeg_resize_sinc"
    rec["final_mode"], rec["jpeg2"] = mode, q
    return to_uint8(out), rec


# ----------------------------------------------------------------------------- BSRGAN


def fspecial_gaussian(ksize: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', ksize, sigma)``: values below eps * max are zeroed, then normalised."""
    c = (ksize - 1) / 2.0
    y, x = np.mgrid[-c:c + 1, -c:c + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    s = h.sum()
    return h / s if s != 0 else h


def anisotropic_gaussian(ksize: int, theta: float, l1: float, l2: float) -> np.ndarray:
    """BSRGAN's anisotropic Gaussian: covariance with eigenvalues ``l1, l2`` and eigenvector angle
    ``theta``, sampled on the grid ``y - size/2 + 0.5`` (BSRGAN's ``gm_blur_kernel``), normalised."""
    v = np.array([math.cos(theta), math.sin(theta)])
    vmat = np.array([[v[0], v[1]], [v[1], -v[0]]])
    cov = vmat @ np.diag([l1, l2]) @ np.linalg.inv(vmat)
    inv = np.linalg.inv(cov)
    centre = ksize / 2.0 + 0.5
    r = np.arange(ksize) - centre + 1
    cx, cy = np.meshgrid(r, r)
    q = inv[0, 0] * cx * cx + (inv[0, 1] + inv[1, 0]) * cx * cy + inv[1, 1] * cy * cy
    k = np.exp(-0.5 * q)  # the normal density's constant cancels in the normalisation
    return k / k.sum()


def shift_kernel(k: np.ndarray, sf: int) -> np.ndarray:
    """BSRGAN's ``shift_pixel(k, sf)``: bilinear resampling at ``(y, x) + (sf - 1) / 2`` (clamped to the
    grid), so that nearest downsampling after the blur stays aligned with the HR grid."""
    from scipy.ndimage import map_coordinates

    h, w = k.shape
    s = (sf - 1) * 0.5
    yy, xx = np.meshgrid(np.clip(np.arange(h) + s, 0, h - 1), np.clip(np.arange(w) + s, 0, w - 1), indexing="ij")
    return map_coordinates(k, [yy, xx], order=1, mode="nearest")


def _convolve(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    from scipy.ndimage import convolve

    return np.stack([convolve(img[:, :, c], k, mode="mirror") for c in range(img.shape[2])], axis=2)


CV2_MODES = {1: "linear", 2: "cubic", 3: "area"}


def _cv2_resize(img: np.ndarray, size_wh: tuple[int, int], interp: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (int(size_wh[0]), int(size_wh[1])), interpolation=interp)


def _bsrgan_blur(rng: np.random.Generator, img: np.ndarray, sf: int) -> tuple[np.ndarray, Record]:
    wd2, wd = 4.0 + sf, 2.0 + 0.2 * sf
    if rng.uniform() < 0.5:
        l1, l2 = wd2 * float(rng.uniform()), wd2 * float(rng.uniform())
        ksize = 2 * int(rng.integers(2, 12)) + 3
        theta = float(rng.uniform()) * math.pi
        k = anisotropic_gaussian(ksize, theta, max(l1, 1e-6), max(l2, 1e-6))
        rec = {"type": "aniso", "size": ksize, "theta": theta, "l1": l1, "l2": l2}
    else:
        ksize = 2 * int(rng.integers(2, 12)) + 3
        sigma = wd * float(rng.uniform())
        k = fspecial_gaussian(ksize, max(sigma, 1e-6))
        rec = {"type": "iso", "size": ksize, "sigma": sigma}
    return _convolve(img, k), rec


def _bsrgan_noise(rng: np.random.Generator, img: np.ndarray, lo: int = 2, hi: int = 25) -> tuple[np.ndarray, Record]:
    from scipy.linalg import orth

    level = int(rng.integers(lo, hi + 1))
    r = float(rng.uniform())
    if r > 0.6:
        img = img + rng.normal(0, level / 255.0, img.shape)
        rec = {"type": "color", "level": level}
    elif r < 0.4:
        img = img + rng.normal(0, level / 255.0, (*img.shape[:2], 1))
        rec = {"type": "gray", "level": level}
    else:
        big = hi / 255.0
        d = np.diag(rng.uniform(size=3))
        u = orth(rng.uniform(size=(3, 3)))
        cov = np.abs(big ** 2 * (u.T @ d @ u))
        img = img + rng.multivariate_normal([0, 0, 0], cov, img.shape[:2])
        rec = {"type": "channel_correlated", "level": hi}
    return np.clip(img, 0.0, 1.0), rec


def bsrgan_degrade(hr: np.ndarray, rng: np.random.Generator, scale: int = 4,
                   noise_range: tuple[int, int] = (2, 8), jpeg_range: tuple[int, int] = (30, 95),
                   jpeg_prob: float = 0.9, scale2_prob: float = 0.25) -> tuple[np.ndarray, Record]:
    """BSRGAN's degradation (``degradation_bsrgan``) of an 8-bit HR image whose sides are divisible
    by ``scale``; returns the 8-bit LR image (exactly H/scale x W/scale) and the sampled parameters.

    Steps: optional first x2 downsampling (p = 0.25, x4 only); then a random order of two blurs,
    a random downsampling, the final downsampling to HR/scale (kept after the random one), Gaussian
    noise (levels ``noise_range``, colour/gray/channel-correlated), JPEG (p = 0.9), and the camera-ISP
    step (skipped: no ISP model is published, as in the official code's default); then a final JPEG.
    """
    import cv2

    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not divisible by the scale {scale}")
    img = to_float(hr)
    sf = scale
    rec: Record = {"steps": []}
    if sf == 4 and rng.uniform() < scale2_prob:
        if rng.uniform() < 0.5:
            interp = int(rng.choice([1, 2, 3]))
            img = _cv2_resize(img, (img.shape[1] // 2, img.shape[0] // 2), interp)
            rec["down1"] = {"how": f"cv2_{CV2_MODES[interp]}"}
        else:
            img = imresize(img, 0.5)
            rec["down1"] = {"how": "matlab_bicubic"}
        img = np.clip(img, 0.0, 1.0)
        sf = 2
    order = [int(i) for i in rng.permutation(7)]
    i2, i3 = order.index(2), order.index(3)
    if i2 > i3:  # the final downsampling (3) comes after the random one (2)
        order[i2], order[i3] = order[i3], order[i2]
    rec["order"] = order
    a, b = img.shape[1], img.shape[0]
    for i in order:
        if i in (0, 1):
            img, r = _bsrgan_blur(rng, img, sf)
            rec["steps"].append({"blur": r})
        elif i == 2:
            a, b = img.shape[1], img.shape[0]
            if rng.uniform() < 0.75:
                sf1 = float(rng.uniform(1, 2 * sf))
                interp = int(rng.choice([1, 2, 3]))
                img = _cv2_resize(img, (int(1 / sf1 * a), int(1 / sf1 * b)), interp)
                rec["steps"].append({"down2": {"factor": sf1, "how": f"cv2_{CV2_MODES[interp]}"}})
            else:
                sigma = float(rng.uniform(0.1, 0.6 * sf))
                k = shift_kernel(fspecial_gaussian(25, sigma), sf)
                img = _convolve(img, k / k.sum())[0::sf, 0::sf, :]
                rec["steps"].append({"down2": {"how": "gaussian_nearest", "sigma": sigma}})
            img = np.clip(img, 0.0, 1.0)
        elif i == 3:
            interp = int(rng.choice([1, 2, 3]))
            img = np.clip(_cv2_resize(img, (int(1 / sf * a), int(1 / sf * b)), interp), 0.0, 1.0)
            rec["steps"].append({"down3": {"how": f"cv2_{CV2_MODES[interp]}"}})
        elif i == 4:
            img, r = _bsrgan_noise(rng, img, *noise_range)
            rec["steps"].append({"noise": r})
        elif i == 5:
            if rng.uniform() < jpeg_prob:
                q = int(rng.integers(jpeg_range[0], jpeg_range[1] + 1))
                img = jpeg(img, q)
                rec["steps"].append({"jpeg": q})
        elif i == 6:
            rec["steps"].append({"isp": "skipped (no camera ISP model)"})
    q = int(rng.integers(jpeg_range[0], jpeg_range[1] + 1))
    img = jpeg(img, q)
    rec["final_jpeg"] = q
    if img.shape[:2] != (h // scale, w // scale):  # cannot happen with the steps above; guard the contract
        img = cv2.resize(img, (w // scale, h // scale), interpolation=cv2.INTER_CUBIC)
    return to_uint8(img), rec


def bicubic_degrade(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-bicubic downsampling by ``scale`` (antialiased); sides must be divisible by ``scale``."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR size {w}x{h} is not divisible by the scale {scale}")
    return imresize(hr, 1.0 / scale)
