"""LPIPS, DISTS, CLIPIQA and MUSIQ through pyiqa (licensed by its authors for non-commercial use).

Each wrapper hands pyiqa the explicit path of every file it loads, computed from torch's hub
folder at call time (``$TORCH_HOME/hub``), so TORCH_HOME and ``weights_dir`` are honoured even
though pyiqa fixes its own cache folder when it is imported, and nothing is downloaded behind
the harness's back (the runner fetches or reports missing files before any generation).

Conventions (DESIGN.md): LPIPS and DISTS on RGB in [0, 1] after the runner's border crop;
CLIPIQA and MUSIQ on the whole SR image. The models run on the run's device and score the N
runs of an image as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmark.metrics import MetricSpec, WeightFile, register
from benchmark.metrics.options import MetricOptions, option
from benchmark.metrics.pyiqa_metrics import _create, _PyiqaScorer
from benchmark.weights import hub_file

# pyiqa's LPIPS trunks (``LPIPS(net=...)``) -> the torchvision weights each loads
LPIPS_NETS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}
LPIPS_VERSIONS = ("0.0", "0.1")
MUSIQ_CHECKPOINTS = ("koniq10k", "spaq", "paq2piq", "ava")


@dataclass(frozen=True)
class LPIPSOptions(MetricOptions):
    """pyiqa ``lpips``: ``net`` and ``version``."""

    net: str = option("alex", "trunk network (alex: pyiqa's default and the official CCSR evaluation)",
                      choices=tuple(LPIPS_NETS))
    version: str = option("0.1", "LPIPS linear-head version", choices=LPIPS_VERSIONS)


@dataclass(frozen=True)
class MUSIQOptions(MetricOptions):
    """pyiqa ``musiq``: the training set of the checkpoint (``musiq``, ``musiq-spaq``, ...)."""

    pretrained: str = option("koniq10k", "checkpoint (KonIQ-10k is pyiqa's default)", choices=MUSIQ_CHECKPOINTS)


def _torchvision(weights_enum: str, needed_by: str) -> WeightFile:
    """An ImageNet backbone torchvision loads from ``$TORCH_HOME/hub/checkpoints``."""
    import torchvision.models as tvm

    return hub_file("checkpoints", getattr(tvm, weights_enum).IMAGENET1K_V1.url, needed_by)


def require(files: list[WeightFile], metric: str) -> None:
    """Raise FileNotFoundError naming every missing file of ``metric`` and how to get it."""
    missing = [w for w in files if not w.present]
    if missing:
        raise FileNotFoundError(
            f"metric {metric} needs " + "; ".join(f"{w.path} (from {w.url})" for w in missing)
            + f": fetch with `python -m benchmark weights metrics=[{metric}] --download`, "
              "or set TORCH_HOME / weights_dir=<dir> to where the files are")


# ----------------------------------------------------------------------------- LPIPS


def _lpips_weights(options: LPIPSOptions) -> list[WeightFile]:
    from pyiqa.archs.lpips_arch import default_model_urls

    return [hub_file("pyiqa", default_model_urls[f"{options.version}_{options.net}"], "lpips"),
            _torchvision(LPIPS_NETS[options.net], "lpips")]


def _lpips(options: LPIPSOptions, device: torch.device) -> _PyiqaScorer:
    net, version = options.net, options.version
    files = _lpips_weights(options)
    require(files, "lpips")
    return _PyiqaScorer(_create("lpips", device, net=net, version=version,
                                pretrained_model_path=str(files[0].path)), True)


# ----------------------------------------------------------------------------- DISTS


def _dists_weights(options: MetricOptions) -> list[WeightFile]:
    from pyiqa.archs.dists_arch import default_model_urls

    return [hub_file("pyiqa", default_model_urls["url"], "dists"), _torchvision("VGG16_Weights", "dists")]


def _dists(options: MetricOptions, device: torch.device) -> _PyiqaScorer:
    files = _dists_weights(options)
    require(files, "dists")
    return _PyiqaScorer(_create("dists", device, pretrained_model_path=str(files[0].path)), True)


# ----------------------------------------------------------------------------- MUSIQ


def _musiq_weights(options: MUSIQOptions) -> list[WeightFile]:
    from pyiqa.archs.musiq_arch import default_model_urls

    return [hub_file("pyiqa", default_model_urls[options.pretrained], "musiq")]


def _musiq(options: MUSIQOptions, device: torch.device) -> _PyiqaScorer:
    files = _musiq_weights(options)
    require(files, "musiq")
    # pyiqa picks the 10-class head only when it resolves the URL itself; with an explicit
    # path the head size must be given (AVA predicts a 10-bin score distribution)
    num_class = 10 if options.pretrained == "ava" else 1
    return _PyiqaScorer(_create("musiq", device, pretrained_model_path=str(files[0].path),
                                num_class=num_class), False)


# ----------------------------------------------------------------------------- CLIPIQA


def _clipiqa_weights(options: MetricOptions) -> list[WeightFile]:
    from pyiqa.archs.clip_model import _MODELS

    # pyiqa's CLIP loader downloads into <hub>/clip, not ~/.cache/clip as openai-clip does
    return [hub_file("clip", _MODELS["RN50"], "clipiqa")]


def _clipiqa(options: MetricOptions, device: torch.device) -> _PyiqaScorer:
    files = _clipiqa_weights(options)
    require(files, "clipiqa")
    # pyiqa's CLIP loader accepts a file path as the backbone name; given the name "RN50" it
    # would re-download the file whenever its SHA-256 differs (e.g. a repacked copy)
    return _PyiqaScorer(_create("clipiqa", device, backbone=str(files[0].path)), False)


register(MetricSpec("lpips", "FR", False, True, "pyiqa", _lpips, _lpips_weights, options=LPIPSOptions,
                    label="LPIPS", decimals=4, table_row=3, pyiqa_name="lpips",
                    description="LPIPS v0.1, AlexNet (pyiqa default, as the official CCSR evaluation), RGB, "
                                "border crop"))
register(MetricSpec("dists", "FR", False, True, "pyiqa", _dists, _dists_weights, label="DISTS", decimals=4,
                    table_row=4, pyiqa_name="dists", description="DISTS (VGG16), RGB, border crop"))
# MUSIQ resizes every input to its scales (224 and 384 px on the longer side) and pads its
# 32x32 patches: pyiqa 0.1.16 scores inputs down to 4x4 px (measured), so no minimum size.
register(MetricSpec("musiq", "NR", True, False, "pyiqa", _musiq, _musiq_weights, options=MUSIQOptions,
                    label="MUSIQ", decimals=2, table_row=7, pyiqa_name="musiq",
                    description="MUSIQ, KonIQ-10k checkpoint (pyiqa default), whole SR image"))
register(MetricSpec("clipiqa", "NR", True, False, "pyiqa", _clipiqa, _clipiqa_weights, label="CLIPIQA",
                    decimals=4, table_row=6, pyiqa_name="clipiqa",
                    description="CLIP-IQA (pyiqa: CLIP RN50, prompt ensemble), whole SR image"))
