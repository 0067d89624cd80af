"""PSNR, SSIM and NIQE through pyiqa (licensed by its authors for non-commercial use).

Conventions (DESIGN.md): PSNR and SSIM on the Y channel of YCbCr (ITU-R BT.601, pyiqa's
``color_space='ycbcr'``; pyiqa's default ``yiq`` shifts PSNR by about 1.3 dB) after the
runner's border crop; NIQE on the whole RGB image with pyiqa's defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.metrics import MetricSpec, WeightFile, register

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


def _psnr(options: dict[str, Any], device: torch.device) -> _PyiqaScorer:
    y = bool(options.get("y_channel", True))
    kwargs = {"test_y_channel": y}
    if y:
        kwargs["color_space"] = options.get("color_space", "ycbcr")
    return _PyiqaScorer(_create("psnr", device, **kwargs), True, one_by_one=True)


def _backend(options: dict[str, Any], metric: str) -> str:
    """``fast`` (default): srbench's separable filters, equal to pyiqa to 1e-6 (tests/test_fast_exact.py);
    ``pyiqa``: pyiqa's own 2-D filters."""
    backend = options.get("backend", "fast")
    if backend not in ("fast", "pyiqa"):
        raise ValueError(f"metrics.{metric}.backend={backend!r}: use fast (separable, equal to pyiqa) or pyiqa")
    return backend


def _ssim(options: dict[str, Any], device: torch.device):
    color_space = options.get("color_space", "ycbcr")
    if _backend(options, "ssim") == "fast":
        from benchmark.metrics.fast_exact import FastSSIM

        return FastSSIM(color_space, device)
    return _PyiqaScorer(_create("ssim", device, color_space=color_space), True)


def niqe_params_file(options: dict[str, Any]) -> Path:
    """The ``.mat`` file pyiqa's NIQE will read: ``params_path`` or pyiqa's own cache."""
    path = options.get("params_path")
    return Path(path).expanduser() if path else pyiqa_cache_dir() / NIQE_FILE


def _niqe_mat(path: Path) -> Path:
    """pyiqa reads a MATLAB file; an ``.npz`` (mu_pris_param, cov_pris_param) is converted once."""
    if path.suffix.lower() != ".npz":
        return path
    import scipy.io

    from benchmark.data import default_cache_dir, file_sha256

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


def _niqe(options: dict[str, Any], device: torch.device) -> _PyiqaScorer:
    path = niqe_params_file(options)
    if not path.is_file():
        raise FileNotFoundError(f"NIQE params file {path} is missing: {_niqe_hint()}")
    metric = _create("niqe", device, pretrained_model_path=str(_niqe_mat(path)))
    if _backend(options, "niqe") == "fast":
        from benchmark.metrics.fast_exact import FastNIQE

        return FastNIQE(metric)
    return _PyiqaScorer(metric, False)


def _niqe_hint() -> str:
    return (f"download {NIQE_URL} into {pyiqa_cache_dir()} (python -m benchmark weights --download), "
            f"or pass metrics.niqe.params_path=<niqe_modelparameters.mat or .npz with "
            f"mu_pris_param/cov_pris_param>")


def _niqe_weights(options: dict[str, Any]) -> list[WeightFile]:
    return [WeightFile(NIQE_FILE, NIQE_URL, niqe_params_file(options), "niqe")]


register(MetricSpec("psnr", "FR", True, True, "pyiqa", _psnr,
                    description="PSNR on Y (YCbCr, BT.601), border crop"))
register(MetricSpec("ssim", "FR", True, True, "pyiqa (separable filters: backend=fast)", _ssim,
                    description="SSIM on Y (YCbCr, BT.601), 8-bit rounding, 'valid' filtering, border crop"))
register(MetricSpec("niqe", "NR", False, False, "pyiqa (separable filters: backend=fast)", _niqe, _niqe_weights,
                    description="NIQE (pyiqa defaults) on the whole SR image"))
