"""Faster SSIM and NIQE that give pyiqa's numbers (to 1e-6, tested in tests/test_fast_exact.py).

Where pyiqa spends the time on CPU (measured in docs/benchmarks.md):

* SSIM filters five float64 planes with an 11x11 2-D Gaussian (121 multiply-adds per pixel),
  and for a batch of runs against one HR image it filters the HR planes once per run.
* NIQE spends about two thirds of its time in the 7x7 2-D Gaussian of its local mean/variance
  normalisation (``normalize_img_with_gauss``), also in float64.

A Gaussian window is the outer product of two 1-D Gaussians, so filtering with it equals a
vertical then a horizontal 1-D pass (22 or 14 multiply-adds per pixel). pyiqa builds its
window in float64, normalises it and stores it in float32; the stored window is therefore not
exactly separable and its weights sum to ``1 + eps`` with ``|eps| ~ 1e-8``. Because
``sigma^2 = E[x^2] - E[x]^2`` cancels, that sum matters on flat regions (it leaves
``x^2 * eps`` there), so the 1-D kernels here are scaled so that their outer product has
exactly the sum of pyiqa's float32 window. What remains is a zero-sum perturbation of relative
size ~6e-8 per weight, which moves SSIM by ~1e-10. NIQE amplifies it (its AGGD fits pick the
nearest point of a 0.001 grid), so for NIQE that remainder is added back, filtered in float32 as
the 4 separable terms of its SVD (see ``_normalize_with_gauss_separable``).

Everything else (colour conversion and rounding, AGGD fits, MATLAB-style resize, block
processing, the MVG distance, the pristine-model file) is pyiqa's own code, called here.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F


def gaussian_1d_for(window2d: torch.Tensor) -> torch.Tensor:
    """float64 1-D kernel ``g`` with ``outer(g, g)`` = the Gaussian ``window2d`` up to float32 rounding.

    ``g`` is the normalised 1-D Gaussian of the window's size and sigma (taken from its
    centre row's ratio, so any size/sigma of pyiqa's ``fspecial`` works), scaled so that
    ``sum(outer(g, g))`` equals ``sum(window2d)`` computed in float64.
    """
    w = window2d.detach().to(torch.float64).cpu().reshape(window2d.shape[-2], window2d.shape[-1])
    if w.shape[0] != w.shape[1]:
        raise ValueError(f"expected a square Gaussian window, got {tuple(w.shape)}")
    # Best rank-1 factor of the window (it is a rank-1 matrix up to float32 rounding); its
    # sign is fixed so that the weights are positive.
    u, s, vh = torch.linalg.svd(w)
    g = u[:, 0] * s[0].sqrt()
    g = g * torch.sign(g.sum())
    total = w.sum()
    return g * (total.sqrt() / g.sum())


def separable_valid(x: torch.Tensor, g: torch.Tensor | Sequence[float],
                    gw: torch.Tensor | Sequence[float] | None = None) -> torch.Tensor:
    """'valid' 2-D correlation of ``x`` (..., H, W) with ``outer(g, gw)`` (``gw`` None: ``g``), as two 1-D passes.

    ``g`` filters along H, ``gw`` along W; both of the same odd or even length k. Shifted slices
    with in-place accumulation beat ``conv2d`` with 1-D kernels in float64 on CPU (no MKL-DNN path
    for float64) by about 2.5x and a 2-D conv by about 13x. The result has ``x``'s dtype.
    """
    weights = [float(v) for v in g]
    weights_w = weights if gw is None else [float(v) for v in gw]
    k = len(weights)
    if len(weights_w) != k:
        raise ValueError(f"separable kernels of different lengths: {k} and {len(weights_w)}")
    h, w = x.shape[-2:]
    if h < k or w < k:
        raise ValueError(f"image of {w}x{h} pixels is smaller than the {k}x{k} filter window")
    t = x[..., 0:h - k + 1, :] * weights[0]
    for i in range(1, k):
        t.add_(x[..., i:h - k + 1 + i, :], alpha=weights[i])
    out = t[..., 0:w - k + 1] * weights_w[0]
    for i in range(1, k):
        out.add_(t[..., i:w - k + 1 + i], alpha=weights_w[i])
    return out


def separable_terms(window2d: torch.Tensor, rel: float = 1e-6) -> list[tuple[list[float], list[float]]]:
    """``window2d`` (k x k) as a sum of separable terms: [(column kernel, row kernel), ...] with
    ``sum(outer(a, b))`` = ``window2d`` to float64 rounding (its SVD; singular values up to
    ``rel`` x the largest are dropped: they are float64 noise of an exactly low-rank matrix).

    Used for the float32 rounding remainder of pyiqa's Gaussian window (window - outer(g, g)):
    a matrix symmetric under both flips, so of rank <= (k+1)/2 (4 for pyiqa's 7x7 NIQE window).
    """
    w = window2d.detach().to(torch.float64).cpu()
    u, s, vh = torch.linalg.svd(w)
    if float(s[0]) == 0.0:
        return []
    return [([float(v) for v in u[:, j] * s[j].sqrt()], [float(v) for v in vh[j] * s[j].sqrt()])
            for j in range(len(s)) if float(s[j]) > rel * float(s[0])]


def _y255(x: torch.Tensor, color_space: str, y_channel: bool = True) -> torch.Tensor:
    """pyiqa's ``preprocess_rgb(x, y_channel, 255, color_space)``: Y (or RGB) in [0, 255], rounded, float64."""
    from pyiqa.utils.color_util import to_y_channel

    if y_channel and x.shape[1] == 3:
        y = to_y_channel(x, 255, color_space)
    else:
        y = x * 255
    return y.round().to(torch.float64)


class FastSSIM:
    """SSIM with pyiqa's definition (``pyiqa.create_metric('ssim', color_space=..., test_y_channel=...,
    downsample=...)``): 11x11 Gaussian window, sigma 1.5, 'valid' filtering, Y (or each RGB
    channel when ``y_channel`` is false, pyiqa's ``ssimc``) rounded to 8 bits, optional average
    pooling by ``round(min(H, W) / 256)`` (``downsample``, the original MATLAB code's step), ReLU
    on the contrast-structure term, mean over channels and pixels. Scores a batch of runs
    against one HR image, filtering the HR statistics once.
    """

    def __init__(self, color_space: str = "ycbcr", device: torch.device | str = "cpu", y_channel: bool = True,
                 downsample: bool = False) -> None:
        from pyiqa.matlab_utils import fspecial

        self.color_space = color_space
        self.y_channel = y_channel
        self.downsample = downsample
        self.device = torch.device(device)
        self.g = gaussian_1d_for(fspecial(11, 1.5, 1)).to(self.device)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = _y255(x, self.color_space, self.y_channel)
        # pyiqa's ssim(): f = max(1, round(min(H, W) / 256)) with Python's round, pooled when f > 1
        f = max(1, round(min(x.shape[-2:]) / 256))
        if self.downsample and f > 1:
            x = F.avg_pool2d(x, kernel_size=f)
        return x

    @torch.no_grad()
    def __call__(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """``sr`` [N,3,H,W] and ``hr`` [1,3,H,W] (or [N,3,H,W]) in [0, 1] -> float64 scores [N]."""
        if hr.shape[-3:] != sr.shape[-3:]:
            raise ValueError(f"SSIM needs SR and HR of the same shape, got {list(sr.shape)} and {list(hr.shape)}")
        c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
        x = self._prepare(sr)
        g = self.g.to(x.device)
        y = self._prepare(hr)  # one HR for all runs: its statistics are filtered once
        mu2 = separable_valid(y, g)
        s2 = separable_valid(y * y, g) - mu2 * mu2
        out = torch.empty(x.shape[0], dtype=torch.float64)
        # one run at a time keeps the float64 temporaries at a few MB per image
        for i in range(x.shape[0]):
            xi = x[i:i + 1]
            yi = y if y.shape[0] == 1 else y[i:i + 1]
            m2 = mu2 if mu2.shape[0] == 1 else mu2[i:i + 1]
            v2 = s2 if s2.shape[0] == 1 else s2[i:i + 1]
            mu1 = separable_valid(xi, g)
            mu1_sq, mu1_mu2 = mu1 * mu1, mu1 * m2
            sigma1_sq = separable_valid(xi * xi, g) - mu1_sq
            sigma12 = separable_valid(xi * yi, g) - mu1_mu2
            cs = F.relu((2 * sigma12 + c2) / (sigma1_sq + v2 + c2))
            ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + m2 * m2 + c1)) * cs
            out[i] = ssim_map.mean()
        return out


def _normalize_with_gauss_separable(img: torch.Tensor, g: torch.Tensor,
                                    residual_terms: Sequence[tuple[Sequence[float], Sequence[float]]],
                                    c: float = 1.0) -> torch.Tensor:
    """pyiqa's ``normalize_img_with_gauss(img, padding='replicate')`` with a separable window.

    ``residual_terms``: pyiqa's float32 window minus ``outer(g, g)`` (entries ~1e-9) as separable
    terms (:func:`separable_terms`). NIQE's AGGD fits amplify even that remainder (~2e-7 on NIQE,
    and up to ~1e-5 where a fit sits near a step of its 0.001 grid), so it is added, each term
    filtered separably in float32: its own rounding (~1e-7 of a term of size ~1e-5) is far below
    float64 noise of the main term, and 4 separable float32 passes cost about half of the one
    7x7 float32 convolution they replace.
    """
    k = int(g.numel())
    pad = (k - 1) // 2  # odd window, stride 1: ExactPadding2d pads (k-1)/2 on every side
    padded = F.pad(img, (pad, pad, pad, pad), mode="replicate")
    sq = padded * padded

    def corr(x: torch.Tensor) -> torch.Tensor:
        x32 = x.to(torch.float32)
        total = None
        for a, b in residual_terms:
            term = separable_valid(x32, a, b)
            total = term if total is None else total.add_(term)
        return total.to(torch.float64) if total is not None else torch.zeros((), dtype=torch.float64)

    mu = separable_valid(padded, g) + corr(padded)
    second = separable_valid(sq, g) + corr(sq)
    sigma = torch.sqrt((second - mu ** 2).abs() + torch.finfo(img.dtype).eps)  # pyiqa's safe_sqrt
    return (img - mu) / (sigma + c)


class FastNIQE:
    """NIQE as ``pyiqa.create_metric('niqe', pretrained_model_path=...)`` computes it.

    The pyiqa metric is built once (it loads and checks the pristine model exactly as pyiqa
    does and holds the colour space and crop options); only its 7x7 Gaussian normalisation runs
    separably here. Block features, resize and the distance are pyiqa's functions.
    """

    def __init__(self, pyiqa_metric: Any) -> None:
        from pyiqa.matlab_utils import fspecial

        self.net = pyiqa_metric.net if hasattr(pyiqa_metric, "net") else pyiqa_metric
        window = fspecial(7, 7.0 / 6, 1).to(torch.float64)[0, 0]  # what pyiqa filters with
        self.g = gaussian_1d_for(window)
        self.residual_terms = separable_terms(window - torch.outer(self.g, self.g))

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [N,3,H,W] in [0, 1] -> float64 NIQE scores [N]."""
        from pyiqa.archs.niqe_arch import compute_feature
        from pyiqa.matlab_utils import blockproc, imresize, nancov, nanmean

        net = self.net
        img = _y255(x, net.color_space)  # calculate_niqe: Y for RGB input whatever test_y_channel says
        if net.crop_border:
            cb = net.crop_border
            img = img[..., cb:-cb, cb:-cb]
        b, _, h, w = img.shape
        bh, bw = 96, 96  # pyiqa's (and the paper's) block size
        nh, nw = math.floor(h / bh), math.floor(w / bw)
        if nh == 0 or nw == 0:
            raise ValueError(f"NIQE needs images of at least {bw}x{bh} pixels, got {w}x{h}")
        img = img[..., 0:nh * bh, 0:nw * bw]
        g = self.g.to(img.device)
        feats = []
        for scale in (1, 2):
            normalized = _normalize_with_gauss_separable(img, g, self.residual_terms)
            feats.append(blockproc(normalized, [bh // scale, bw // scale], fun=compute_feature))
            if scale == 1:
                img = imresize(img / 255.0, scale=0.5, antialiasing=True) * 255.0
        dist = torch.cat(feats, -1)
        mu_pris = net.mu_pris_param.to(dist).repeat(b, 1)
        cov_pris = net.cov_pris_param.to(dist).repeat(b, 1, 1)
        mu_dist = nanmean(dist, dim=1)
        cov_dist = nancov(dist)
        inv = torch.linalg.pinv((cov_pris + cov_dist) / 2)
        diff = (mu_pris - mu_dist).unsqueeze(1)
        quality = torch.bmm(torch.bmm(diff, inv), diff.transpose(1, 2)).reshape(b)
        return torch.sqrt(quality).to(torch.float64).cpu()


def reference_window_sum(size: int, sigma: float) -> float:
    """Sum of pyiqa's float32 ``fspecial(size, sigma)`` window in float64 (for the docs/tests)."""
    from pyiqa.matlab_utils import fspecial

    return float(fspecial(size, sigma, 1).to(torch.float64).sum())


__all__ = ["FastSSIM", "FastNIQE", "separable_valid", "separable_terms", "gaussian_1d_for", "reference_window_sum"]
