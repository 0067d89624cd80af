"""FID and KID: set-level metrics, one value per run (SR images of run r against the HR images).

Backend: pyiqa's FID pipeline (clean-fid's "clean" mode), the one used by the published
evaluation scripts of OSEDiff and others: each whole image is resized to 299x299 with PIL's
bicubic filter per channel in float (antialiased), scaled by (x - 128) / 128, and passed
through pyiqa's ``InceptionV3`` (the TF-FID Inception, ``pt_inception-2015-12-05``, 2048-d pool
features); FID is pyiqa's ``frechet_distance`` of the feature means and covariances. srbench
calls these pieces itself, image by image, so that

* images are read with srbench's one conversion rule (``read_image``), and
* the reference (HR) features are computed once per data set and cached on disk, keyed by a
  hash of the HR files' contents and by the feature extractor (weights hash, mode).

KID uses the same features and torch-fidelity's ``kid_features_to_metric`` (polynomial
kernel of degree 3, unbiased MMD^2 over random subsets), because pyiqa's KID draws its
subsets from NumPy's global RNG; torch-fidelity takes an explicit seed. docs/metrics.md
explains why torchmetrics / torch-fidelity's FID was not chosen (different resizing).
"""

from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from benchmark.files import default_cache_dir, file_sha256
from benchmark.images import read_image
from benchmark.metrics import GateTolerance, MetricSpec, WeightFile, register
from benchmark.metrics.deep import require
from benchmark.metrics.options import MetricOptions, option
from benchmark.weights import hub_file

log = logging.getLogger("srbench")

MODES = ("clean", "legacy_tensorflow")
SIZE = (299, 299)
FEW_IMAGES = 1000  # below this FID is strongly biased (Chong & Forsyth 2020; clean-fid docs)


@dataclass(frozen=True)
class FIDOptions(MetricOptions):
    """Resizing mode and Inception batch size (they change speed, and the mode changes values)."""

    mode: str = option("clean", "clean: PIL bicubic resize to 299 (pyiqa / clean-fid); legacy_tensorflow: "
                                "torch-fidelity's TF1 bilinear resize", choices=MODES)
    # not ``batch_size``: the top-level ``batch_size`` is runs per method call (issue 11)
    inception_batch_size: int = option(16, "images per Inception forward pass", minimum=1)


@dataclass(frozen=True)
class KIDOptions(FIDOptions):
    """KID on the FID features: torch-fidelity's estimator with seeded subsets."""

    subsets: int = option(100, "random subsets (pyiqa and torch-fidelity: 100)", minimum=1)
    subset_size: int = option(1000, "images per subset, capped at the number of images", minimum=2)
    seed: int = option(0, "seed of the subset draws (explicit RNG)", minimum=0)


def inception_file(needed_by: str = "fid") -> WeightFile:
    """pyiqa's FID Inception weights, in ``$TORCH_HOME/hub/pyiqa``."""
    from pyiqa.archs.inception import FID_WEIGHTS_URL

    return hub_file("pyiqa", FID_WEIGHTS_URL, needed_by)


@contextmanager
def _inception_weights_at(path: Path) -> Iterator[None]:
    """Point pyiqa's Inception loader at a local file for the duration of one construction.

    pyiqa's ``fid_inception_v3`` always loads ``FID_WEIGHTS_URL`` through its own cache folder,
    fixed when pyiqa is imported; ``load_pretrained_network`` also accepts a plain path.
    """
    import pyiqa.archs.inception as inc

    old = inc.FID_WEIGHTS_URL
    inc.FID_WEIGHTS_URL = str(path)
    try:
        yield
    finally:
        inc.FID_WEIGHTS_URL = old


def resize_for_inception(arr: np.ndarray, mode: str = "clean") -> torch.Tensor:
    """uint8 HxWx3 -> float32 3x299x299 in [0, 255], as pyiqa's FID ``ResizeDataset``.

    ``clean``: PIL bicubic on each channel as a float image (clean-fid); ``legacy_tensorflow``:
    TF1-style bilinear without antialiasing (what torch-fidelity and torchmetrics do).
    """
    from PIL import Image

    if mode == "clean":
        chans = [np.asarray(Image.fromarray(arr[:, :, c].astype(np.float32))  # mode F
                            .resize(SIZE, resample=Image.BICUBIC)).clip(0, 255) for c in range(3)]
        return torch.from_numpy(np.stack(chans, axis=0).astype(np.float32))
    from pyiqa.archs.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    t = torch.tensor(arr).permute(2, 0, 1).float().unsqueeze(0)
    return interpolate_bilinear_2d_like_tensorflow1x(t, size=SIZE, align_corners=False).squeeze(0)


class InceptionFeatures:
    """pyiqa's FID Inception on one device, with an on-disk cache for reference features."""

    def __init__(self, weights: Path, device: torch.device, mode: str = "clean",
                 inception_batch_size: int = 16) -> None:
        from pyiqa.archs.inception import InceptionV3

        if mode not in MODES:
            raise ValueError(f"metrics.fid.mode={mode!r}; expected one of {', '.join(MODES)}")
        if inception_batch_size < 1:
            raise ValueError(f"metrics.fid.inception_batch_size={inception_batch_size}: must be >= 1")
        with _inception_weights_at(weights):
            self.model = InceptionV3(output_blocks=[InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval().to(device)
        self.device = device
        self.mode = mode
        self.inception_batch_size = inception_batch_size
        # what decides the features: the weights, the resizing, the output layer
        self.key = f"pyiqa-inceptionv3-pool2048-{mode}-{file_sha256(weights).hex()[:16]}"

    @torch.no_grad()
    def __call__(self, paths: Sequence[Path]) -> np.ndarray:
        """Features [len(paths), 2048] (float32, as pyiqa) of the images, in order."""
        feats = []
        for start in range(0, len(paths), self.inception_batch_size):
            batch = torch.stack([resize_for_inception(read_image(p), self.mode)
                                 for p in paths[start:start + self.inception_batch_size]])
            batch = (batch - 128) / 128  # pyiqa: clean / legacy_tensorflow inputs are [-1, 1] this way
            out = self.model(batch.to(self.device), False, False)[0]
            feats.append(out.reshape(out.shape[0], -1).cpu().numpy())
        return np.concatenate(feats)

    def reference(self, paths: Sequence[Path]) -> np.ndarray:
        """Features of the reference (HR) images, from the cache when the same files were seen."""
        h = hashlib.sha256()
        for p in paths:
            h.update(file_sha256(p))
        cache = default_cache_dir() / "fid_features" / self.key / f"{h.hexdigest()[:32]}_{len(paths)}.npy"
        if cache.is_file():
            feats = np.load(cache)
            if feats.shape[0] == len(paths):
                return feats
            log.warning("cached reference features %s have %d rows for %d images; recomputing",
                        cache, feats.shape[0], len(paths))
        feats = self(paths)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, feats)
        tmp.replace(cache)
        return feats


_EXTRACTORS: dict[tuple[str, str, str, int], InceptionFeatures] = {}


def extractor(options: FIDOptions | dict[str, Any], device: torch.device) -> InceptionFeatures:
    """One Inception per (weights, device, mode) per process, shared by FID and KID."""
    if not isinstance(options, FIDOptions):
        options = FID_SPEC.parse(options)
    w = inception_file()
    require([w], "fid")
    mode, bs = options.mode, options.inception_batch_size
    key = (str(w.path), str(device), mode, bs)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = InceptionFeatures(w.path, device, mode, bs)
    return _EXTRACTORS[key]


def _check_sets(name: str, sr_paths: Sequence[Path], hr_paths: Sequence[Path]) -> None:
    if len(sr_paths) < 2 or len(hr_paths) < 2:
        raise ValueError(f"{name} needs at least 2 SR and 2 HR images (a covariance of one image is undefined); "
                         f"got {len(sr_paths)} SR and {len(hr_paths)} HR: remove {name} from metrics or use a "
                         f"larger data set")


class FIDScorer:
    """``score_set(sr_paths, hr_paths)``: FID of one run's SR images against the HR images."""

    def __init__(self, features: InceptionFeatures) -> None:
        self.features = features
        self._warned = False

    def score_set(self, sr_paths: Sequence[Path], hr_paths: Sequence[Path]) -> float:
        from pyiqa.archs.fid_arch import frechet_distance

        _check_sets("fid", sr_paths, hr_paths)
        n = min(len(sr_paths), len(hr_paths))
        if n < FEW_IMAGES and not self._warned:
            log.warning("FID on %d images is biased (it needs about %d or more): compare methods only on the same "
                        "images, and see KID (metrics=[...,kid]), which is unbiased", n, FEW_IMAGES)
            self._warned = True
        f_sr, f_hr = self.features(sr_paths), self.features.reference(hr_paths)
        mu1, sig1 = np.mean(f_sr, axis=0), np.cov(f_sr, rowvar=False)
        mu2, sig2 = np.mean(f_hr, axis=0), np.cov(f_hr, rowvar=False)
        return float(frechet_distance(mu1, sig1, mu2, sig2))


class KIDScorer:
    """``score_set``: KID (polynomial-kernel MMD^2, mean over subsets) of one run against HR."""

    def __init__(self, features: InceptionFeatures, subsets: int, subset_size: int, seed: int) -> None:
        self.features = features
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed

    def score_set(self, sr_paths: Sequence[Path], hr_paths: Sequence[Path]) -> float:
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

        _check_sets("kid", sr_paths, hr_paths)
        f_sr = torch.from_numpy(self.features(sr_paths).astype(np.float64))
        f_hr = torch.from_numpy(self.features.reference(hr_paths).astype(np.float64))
        # as pyiqa: subsets of min(n_sr, n_hr, 1000) images; torch-fidelity takes an explicit seed
        size = min(self.subset_size, len(f_sr), len(f_hr))
        out = kid_features_to_metric(f_sr, f_hr, kid_subsets=self.subsets, kid_subset_size=size,
                                     rng_seed=self.seed, verbose=False)
        return float(out[KEY_METRIC_KID_MEAN])


def _fid_files(options: FIDOptions) -> list[WeightFile]:
    return [inception_file("fid")]


def _kid_files(options: KIDOptions) -> list[WeightFile]:
    return [inception_file("kid")]


def _fid(options: FIDOptions, device: torch.device) -> FIDScorer:
    return FIDScorer(extractor(options, device))


def _kid(options: KIDOptions, device: torch.device) -> KIDScorer:
    return KIDScorer(extractor(options, device), options.subsets, options.subset_size, options.seed)


# pyiqa files FID as metric_mode "NR" (no paired reference); here it is a set metric: one value per run
FID_SPEC = register(MetricSpec("fid", "set", False, False, "pyiqa", _fid, _fid_files, options=FIDOptions,
                               label="FID", decimals=2, table_row=8, pyiqa_name="fid",
                               tolerance_mean=GateTolerance(abs=0.0, rel=0.02),
                               description="FID per run (SR of run r vs HR), pyiqa/clean-fid Inception, whole "
                                           "images resized to 299 (PIL bicubic); mean and std over runs"))
register(MetricSpec("kid", "set", False, False, "pyiqa+torch-fidelity", _kid, _kid_files, options=KIDOptions,
                    label="KID", decimals=4, table_row=9, tolerance_mean=GateTolerance(abs=1e-4, rel=0.05),
                    description="KID per run on the FID features (torch-fidelity estimator, seeded subsets)"))
