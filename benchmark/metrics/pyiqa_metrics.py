"""PSNR, SSIM and NIQE through pyiqa (licensed by its authors for non-commercial use).

Conventions (DESIGN.md): PSNR and SSIM on the Y channel of YCbCr (ITU-R BT.601, pyiqa's
``color_space='ycbcr'``; pyiqa's default ``yiq`` shifts PSNR by about 1.3 dB) after the
runner's border crop; NIQE on the whole RGB image with pyiqa's defaults.

PSNR of identical images: pyiqa computes ``10 log10(1 / (MSE + eps))`` with ``eps = 1e-8``, so
identical images give :data:`PSNR_CAP` = 80 dB instead of infinity. That is what published
numbers computed with pyiqa contain, so srbench keeps it and reports how many pairs hit the cap.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from benchmark.files import default_cache_dir, file_sha256
from benchmark.metrics import GateTolerance, MetricSpec, WeightFile, register
from benchmark.metrics.fast_exact import FastNIQE, FastSSIM
from benchmark.metrics.options import BACKENDS, PYIQA_COLOR_SPACES, MetricOptions, option


def _pyiqa_psnr_eps() -> float:
    """pyiqa's ``psnr(..., eps=1e-8)`` default, read from its signature rather than copied."""
    from pyiqa.archs.psnr_arch import psnr

    return float(inspect.signature(psnr).parameters["eps"].default)


PSNR_EPS = _pyiqa_psnr_eps()
PSNR_CAP = 10 * math.log10(1.0 / PSNR_EPS)  # dB of identical images (data range 1): 80 for eps 1e-8


@dataclass(frozen=True)
class PSNROptions(MetricOptions):
    """pyiqa ``psnr``: ``test_y_channel`` and ``color_space``."""

    y_channel: bool = option(True, "score the Y channel (true) or all three RGB channels (false)")
    color_space: str = option("ycbcr", "colour space whose Y channel is scored (pyiqa's names; ycbcr is "
                                       "ITU-R BT.601 as the official CCSR evaluation)",
                              choices=PYIQA_COLOR_SPACES)


@dataclass(frozen=True)
class SSIMOptions(MetricOptions):
    """pyiqa ``ssim``: ``test_y_channel``, ``color_space``, ``downsample``; and the backend."""

    backend: str = option("fast", "fast: separable filters, equal to pyiqa to 1e-6; pyiqa: pyiqa's 2-D filters",
                          choices=BACKENDS)
    y_channel: bool = option(True, "score the Y channel (true) or all three RGB channels (false, pyiqa's ssimc)")
    color_space: str = option("ycbcr", "colour space whose Y channel is scored (pyiqa's names)",
                              choices=PYIQA_COLOR_SPACES)
    downsample: bool = option(False, "average-pool by round(min(H, W) / 256) first, as the original MATLAB code")


@dataclass(frozen=True)
class NIQEOptions(MetricOptions):
    """pyiqa ``niqe`` with an explicit pristine-model file; and the backend."""

    params_path: Optional[str] = option(None, "niqe_modelparameters.mat, or an .npz with mu_pris_param / "
                                              "cov_pris_param (null: pyiqa's cache)")
    backend: str = option("fast", "fast: separable filters, equal to pyiqa to 1e-6; pyiqa: pyiqa's 2-D filters",
                          choices=BACKENDS)

NIQE_FILE = "niqe_modelparameters.mat"
NIQE_URL = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/niqe_modelparameters.mat"


def pyiqa_cache_dir() -> Path:
    """Where pyiqa looks for its files: ``$TORCH_HOME/hub/pyiqa`` (torch.hub's dir)."""
    return Path(torch.hub.get_dir()) / "pyiqa"


def _create(name: str, device: torch.device, **kwargs: Any):
    import pyiqa

    return pyiqa.create_metric(name, device=device, **kwargs)


class _PyiqaScorer:
    """Calls a pyiqa metric on a batch and returns float64 scores of shape [N]."""

    def __init__(self, metric, full_reference: bool, one_by_one: bool = False) -> None:
        self.metric = metric
        self.full_reference = full_reference
        # pyiqa's PSNR reduces in float32, so a batch of 10 and ten single images differ by up
        # to ~4e-6 dB; one call per image gives exactly what pyiqa gives per image (and what the
        # official CCSR scripts get), at about 3 ms per 512x512 image.
        self.one_by_one = one_by_one

    @torch.no_grad()
    def __call__(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> torch.Tensor:
        if self.one_by_one and sr.shape[0] > 1:
            return torch.cat([self(sr[i:i + 1], hr if hr is None or hr.shape[0] == 1 else hr[i:i + 1])
                              for i in range(sr.shape[0])])
        if self.full_reference:
            hr = hr.expand(sr.shape[0], -1, -1, -1)
            out = self.metric(sr, hr)
        else:
            out = self.metric(sr)
        return out.detach().reshape(-1).to(torch.float64).cpu()


def _psnr(options: PSNROptions, device: torch.device) -> _PyiqaScorer:
    return _PyiqaScorer(_create("psnr", device, test_y_channel=options.y_channel, color_space=options.color_space),
                        True, one_by_one=True)


def _ssim(options: SSIMOptions, device: torch.device):
    if options.backend == "fast":
        return FastSSIM(options.color_space, device, y_channel=options.y_channel, downsample=options.downsample)
    # pyiqa's "ssim" and "ssimc" are the same SSIM class; test_y_channel chooses between them
    return _PyiqaScorer(_create("ssim", device, color_space=options.color_space, test_y_channel=options.y_channel,
                                downsample=options.downsample), True)


def niqe_params_file(options: NIQEOptions | dict[str, Any]) -> Path:
    """The ``.mat`` file pyiqa's NIQE will read: ``params_path`` or pyiqa's own cache."""
    path = options.get("params_path") if isinstance(options, dict) else options.params_path
    return Path(path).expanduser() if path else pyiqa_cache_dir() / NIQE_FILE


def _niqe_mat(path: Path) -> Path:
    """pyiqa reads a MATLAB file; an ``.npz`` (mu_pris_param, cov_pris_param) is converted once."""
    if path.suffix.lower() != ".npz":
        return path
    import scipy.io

    data = np.load(path)
    missing = {"mu_pris_param", "cov_pris_param"} - set(data.files)
    if missing:
        raise ValueError(f"NIQE params file {path} lacks {sorted(missing)} (has {data.files})")
    digest = file_sha256(path).hex()[:16]
    out = default_cache_dir() / "niqe" / f"niqe_pris_params_{digest}.mat"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp.mat")
        scipy.io.savemat(tmp, {"mu_prisparam": data["mu_pris_param"], "cov_prisparam": data["cov_pris_param"]})
        tmp.replace(out)
    return out


def _niqe(options: NIQEOptions, device: torch.device) -> _PyiqaScorer:
    path = niqe_params_file(options)
    if not path.is_file():
        raise FileNotFoundError(f"NIQE params file {path} is missing: {_niqe_hint()}")
    metric = _create("niqe", device, pretrained_model_path=str(_niqe_mat(path)))
    if options.backend == "fast":
        return FastNIQE(metric)
    return _PyiqaScorer(metric, False)


def _niqe_hint() -> str:
    return (f"download {NIQE_URL} into {pyiqa_cache_dir()} (python -m benchmark weights --download), "
            f"or pass metrics.niqe.params_path=<niqe_modelparameters.mat or .npz with "
            f"mu_pris_param/cov_pris_param>")


def _niqe_weights(options: NIQEOptions) -> list[WeightFile]:
    return [WeightFile(NIQE_FILE, NIQE_URL, niqe_params_file(options), "niqe")]


# NIQE's features come from 96x96 blocks (pyiqa: block_size_h = block_size_w = 96): an image
# with fewer rows or columns has no block, and pyiqa fails deep inside with an empty tensor.
NIQE_BLOCK = 96
# SSIM's 11x11 Gaussian window with 'valid' filtering (pyiqa's fspecial(11, 1.5)).
SSIM_WINDOW = 11

register(MetricSpec("psnr", "FR", True, True, "pyiqa", _psnr, options=PSNROptions, label="PSNR", decimals=2,
                    table_row=1, pyiqa_name="psnr", cap=PSNR_CAP,
                    description=f"PSNR on Y (YCbCr, BT.601), border crop; identical images give "
                                f"{PSNR_CAP:g} dB (pyiqa's eps {PSNR_EPS:g})"))
register(MetricSpec("ssim", "FR", True, True, "pyiqa (separable filters: backend=fast)", _ssim, options=SSIMOptions,
                    label="SSIM", decimals=4, table_row=2, pyiqa_name="ssim",
                    min_size=SSIM_WINDOW, min_size_why="SSIM's 11x11 window",
                    description="SSIM on Y (YCbCr, BT.601), 8-bit rounding, 'valid' filtering, border crop"))
register(MetricSpec("niqe", "NR", False, False, "pyiqa (separable filters: backend=fast)", _niqe, _niqe_weights,
                    options=NIQEOptions, label="NIQE", decimals=2, table_row=5, pyiqa_name="niqe",
                    min_size=NIQE_BLOCK, min_size_why="NIQE's 96x96 blocks", flat_undefined=True,
                    description="NIQE (pyiqa defaults) on the whole SR image"))
