"""Synthetic test sets from any HR folder, built once by an exact recipe and cached.

``dataset=synthetic dataset.hr_dir=<folder> dataset.recipe=bicubic|realesrgan|bsrgan`` degrades
every HR image with its own random generator, seeded from ``(dataset.seed, file stem)`` by
SHA-256 (:func:`image_seed`), so an image's LR does not depend on the other files, on their
order, or on the machine. The set is written to
``<cache>/synthetic/<name>-<recipe>-x<scale>-<key>/{HR,LR}/<stem>.png`` with a ``manifest.json``
(recipe, every parameter, per-image seed and sampled degradation parameters, SHA-256 of every HR
and LR file, library versions). ``key`` hashes the recipe, its parameters, the recipe version,
the seed, the crop options and the SHA-256 of every HR file: any change gives a new folder, so
a stale set is never reused. The folder is built under a hidden name and renamed when complete.

HR preparation (before degradation): ``crop=center`` / ``crop=random`` cut a
``crop_size`` square (512 as StableSR's test sets; the random offset comes from the image's own
generator); ``crop=null`` keeps the whole image, trimmed at the bottom/right to a multiple of the
scale ("modcrop", as the SR benchmarks); ``crop=adm`` is guided-diffusion's ``center_crop_arr``
(box-downsample while the short side is at least twice ``crop_size``, bicubic-resize the short
side to ``crop_size``, centre crop), the ImageNet preprocessing of DDRM/DDNM.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from benchmark import degradations as D
from benchmark import fetch as F
from benchmark.data import DATASETS, DatasetError, FolderDataset, list_images
from benchmark.errors import MissingFilesError
from benchmark.files import building_folder
from benchmark.images import read_image, write_png_atomic
from benchmark.store import atomic_write_json

log = logging.getLogger("srbench")

RECIPES = ("bicubic", "realesrgan", "bsrgan")
# Bumped whenever a recipe's code changes its output, so caches built by older code are not reused.
RECIPE_VERSION = {"bicubic": 1, "realesrgan": 1, "bsrgan": 1}
CROPS = (None, "center", "random", "adm")
MANIFEST = "manifest.json"


def image_seed(seed: int, stem: str) -> int:
    """64-bit seed of one image: the first 8 bytes (little endian) of SHA-256(``"<seed>:<stem>"``)."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}:{stem}".encode()).digest()[:8], "little")


def image_rng(seed: int, stem: str, stream: int) -> np.random.Generator:
    """PCG64 generator of one image; stream 0 draws the crop, stream 1 the degradation."""
    return np.random.default_rng([image_seed(seed, stem), stream])


def adm_center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """guided-diffusion's ``center_crop_arr`` (PIL BOX halving, PIL BICUBIC resize, centre crop)."""
    from PIL import Image

    pil = Image.fromarray(img)
    while min(pil.size) >= 2 * size:
        pil = pil.resize(tuple(x // 2 for x in pil.size), resample=Image.Resampling.BOX)
    s = size / min(pil.size)
    pil = pil.resize(tuple(round(x * s) for x in pil.size), resample=Image.Resampling.BICUBIC)
    arr = np.asarray(pil)
    top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return np.ascontiguousarray(arr[top:top + size, left:left + size])


def prepare_hr(img: np.ndarray, stem: str, crop: str | None, crop_size: int, scale: int,
               rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """The HR image a recipe degrades, and where it came from (``top``, ``left`` of the crop)."""
    h, w = img.shape[:2]
    if crop is None:
        out = img[: h - h % scale, : w - w % scale]
        return np.ascontiguousarray(out), {"top": 0, "left": 0}
    if crop == "adm":
        return adm_center_crop(img, crop_size), {"adm": crop_size}
    if h < crop_size or w < crop_size:
        raise DatasetError(f"HR image {stem!r} is {w}x{h}, smaller than dataset.crop_size={crop_size}: "
                           "use a smaller crop_size or crop=null")
    if crop == "center":
        top, left = (h - crop_size) // 2, (w - crop_size) // 2
    else:
        top, left = int(rng.integers(0, h - crop_size + 1)), int(rng.integers(0, w - crop_size + 1))
    return np.ascontiguousarray(img[top:top + crop_size, left:left + crop_size]), {"top": top, "left": left}


def recipe_params(recipe: str, scale: int, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every parameter of a recipe (defaults merged with ``params``); unknown keys are errors."""
    params = dict(params or {})
    if recipe == "bicubic":
        base: dict[str, Any] = {"kernel": "matlab_bicubic_antialias"}
    elif recipe == "realesrgan":
        base = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(D.RealESRGANParams()).items()}
    elif recipe == "bsrgan":
        base = {"noise_range": [2, 8], "jpeg_range": [30, 95], "jpeg_prob": 0.9, "scale2_prob": 0.25}
    else:
        raise ValueError(f"unknown dataset.recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    unknown = sorted(set(params) - set(base))
    if unknown:
        raise ValueError(f"dataset.params has unknown key(s) {', '.join(unknown)} for recipe {recipe}; "
                         f"known: {', '.join(sorted(base))}")
    base.update({k: list(v) if isinstance(v, (tuple, list)) else v for k, v in params.items()})
    if recipe == "bicubic" and scale not in (2, 3, 4):
        raise ValueError(f"recipe bicubic supports scale 2, 3 or 4 (MATLAB imresize), got {scale}")
    if recipe in ("realesrgan", "bsrgan") and scale != 4:
        raise ValueError(f"recipe {recipe} is defined for x4 only, got dataset.scale={scale}")
    return base


def degrade(recipe: str, hr: np.ndarray, scale: int, params: Mapping[str, Any],
            rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """LR image (uint8, H/scale x W/scale x 3) and the sampled parameters of one HR image."""
    if recipe == "bicubic":
        return D.bicubic_degrade(hr, scale), {}
    if recipe == "realesrgan":
        p = D.RealESRGANParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
        return D.realesrgan_degrade(hr, rng, scale, p)
    return D.bsrgan_degrade(hr, rng, scale, noise_range=tuple(params["noise_range"]),
                            jpeg_range=tuple(params["jpeg_range"]), jpeg_prob=params["jpeg_prob"],
                            scale2_prob=params["scale2_prob"])


def _versions() -> dict[str, str]:
    import cv2
    import PIL
    import scipy
    import torch

    return {"numpy": np.__version__, "scipy": scipy.__version__, "opencv": cv2.__version__,
            "torch": torch.__version__, "pillow": PIL.__version__}


def list_hr(hr_dir: Path, image_list: str | os.PathLike | None = None) -> dict[str, Path]:
    """``{stem: path}`` of the HR images (all images of ``hr_dir``, or those named by ``image_list``:
    one file name per line, first column, e.g. DDRM's ``imagenet_val_1k.txt``)."""
    if not hr_dir.is_dir():
        raise FileNotFoundError(f"HR folder {hr_dir} does not exist: set dataset.hr_dir to a folder of HR images")
    if image_list:
        names = [ln.split()[0] for ln in Path(image_list).read_text().splitlines() if ln.strip()]
        by_name = {p.name: p for p in hr_dir.rglob("*") if p.is_file()}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise DatasetError(f"{len(missing)} image(s) of the list {image_list} are not under {hr_dir}: "
                               + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
        return {Path(n).stem: by_name[n] for n in names}
    problems: list[str] = []
    out = list_images(hr_dir, "HR", problems, skip_other_files=True)
    if problems:
        raise DatasetError("; ".join(problems))
    return out


def build(hr_dir: str | os.PathLike, recipe: str, scale: int = 4, seed: int = 0, crop: str | None = None,
          crop_size: int = 512, params: Mapping[str, Any] | None = None, name: str = "synthetic",
          cache_dir: str | os.PathLike | None = None, image_list: str | os.PathLike | None = None,
          crops_per_image: int = 1) -> Path:
    """Build (or reuse) the synthetic set and return its folder (``HR/``, ``LR/``, ``manifest.json``).

    ``crops_per_image`` > 1 (only with ``crop=random``) makes that many pairs per HR image, named
    ``<stem>_<k>`` (k = 0, 1, ...), each with its own generator (e.g. 10 x 100 DIV2K valid images
    gives 1,000 pairs, the size of the paper's DIV2K-BSRGAN)."""
    if crop not in CROPS:
        raise ValueError(f"dataset.crop must be one of null, center, random, adm; got {crop!r}")
    if not isinstance(crops_per_image, int) or crops_per_image < 1 or (crops_per_image > 1 and crop != "random"):
        raise ValueError(f"dataset.crops_per_image must be a positive integer, and above 1 only with crop=random; "
                         f"got {crops_per_image!r} with crop={crop!r}")
    full = recipe_params(recipe, scale, params)
    hr_files = list_hr(Path(hr_dir).expanduser(), image_list)
    hr_hashes = {stem: F.sha256_file(p) for stem, p in hr_files.items()}
    ident = {"recipe": recipe, "recipe_version": RECIPE_VERSION[recipe], "scale": scale, "seed": int(seed),
             "crop": crop, "crop_size": int(crop_size) if crop else None, "params": full,
             **({"crops_per_image": crops_per_image} if crops_per_image > 1 else {}),
             "hr_sha256": hr_hashes}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cache_dir).expanduser() if cache_dir else F.cache_dir() / "synthetic"
    dest = root / f"{name}-{recipe}-x{scale}-{key}"
    if (dest / MANIFEST).is_file():
        problems = F.check_against_marker(dest) if F.read_marker(dest) else ["no marker"]
        if not problems:
            log.info("reusing synthetic set %s", dest)
            return dest
        log.warning("synthetic set %s was altered (%s); building it again", dest, "; ".join(problems[:5]))
    root.mkdir(parents=True, exist_ok=True)
    with building_folder(root / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}", dest) as tmp:
        images: dict[str, Any] = {}
        jobs = [(src if crops_per_image == 1 else f"{src}_{k}", src, path)
                for src, path in hr_files.items() for k in range(crops_per_image)]
        for stem, src, path in jobs:
            hr, where = prepare_hr(read_image(path), stem, crop, crop_size, scale, image_rng(seed, stem, 0))
            lr, sampled = degrade(recipe, hr, scale, full, image_rng(seed, stem, 1))
            write_png_atomic(tmp / "HR" / f"{stem}.png", hr)
            write_png_atomic(tmp / "LR" / f"{stem}.png", lr)
            images[stem] = {"source": str(path), "source_sha256": hr_hashes[src], "seed": image_seed(seed, stem),
                            "crop": where, "hr_size": [hr.shape[0], hr.shape[1]],
                            "lr_size": [lr.shape[0], lr.shape[1]],
                            "hr_pixels_sha256": hashlib.sha256(hr.tobytes()).hexdigest(),
                            "lr_pixels_sha256": hashlib.sha256(lr.tobytes()).hexdigest(),
                            "degradation": sampled}
        atomic_write_json(tmp / MANIFEST, {**ident, "name": name, "key": key, "versions": _versions(),
                                           "images": images})
        F.write_marker(tmp, {"synthetic": name, "key": key})
    log.info("built synthetic set %s (%d pairs, recipe %s)", dest, len(jobs), recipe)
    return dest


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a built synthetic set."""
    return json.loads((Path(folder) / MANIFEST).read_text())


@DATASETS.register("synthetic")
class SyntheticDataset(FolderDataset):
    """LR images made from ``hr_dir`` by a recipe (bicubic, realesrgan, bsrgan); see the module doc.

    Args:
        hr_dir: folder of HR images (any size; see ``crop``).
        recipe: ``bicubic`` (x2/x3/x4, MATLAB imresize), ``realesrgan`` (x4, StableSR's test recipe),
            ``bsrgan`` (x4).
        scale: the SR factor.
        seed: the recipe seed; each image's generator comes from (seed, file stem).
        crop: null (modcrop), ``center``, ``random`` or ``adm``; ``crop_size``: HR side of the crop.
        params: overrides of the recipe's parameters (names as in the manifest).
        image_list: optional file naming the HR images to use (first column), e.g. an ImageNet list.
        crops_per_image: pairs per HR image with ``crop=random`` (named ``<stem>_<k>``).
        cache_dir: where built sets live (default ``$SRBENCH_CACHE/synthetic``).
    """

    def __init__(self, hr_dir: str, recipe: str = "bicubic", scale: int = 4, seed: int = 0,
                 crop: str | None = None, crop_size: int = 512, params: Mapping[str, Any] | None = None,
                 image_list: str | None = None, cache_dir: str | None = None, name: str = "synthetic",
                 crops_per_image: int = 1) -> None:
        if hr_dir in (None, "", "???"):
            raise ValueError("dataset.hr_dir is required for dataset=synthetic: pass dataset.hr_dir=<folder of HR images>")
        folder = build(hr_dir, recipe, scale, seed, crop, crop_size, params, name, cache_dir, image_list,
                       crops_per_image)
        self.folder = folder
        super().__init__(str(folder / "LR"), str(folder / "HR"), scale, name)


DIV2K_VALID_HR = F.Source(
    "DIV2K_valid_HR.zip", url="https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
    sha256="20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc", size=448993893,
    license="DIV2K: academic research use (https://data.vision.ee.ethz.ch/cvl/DIV2K/)",
    note="SHA-256 and size from tensorflow_datasets' url_checksums/div2k.txt")


def div2k_valid_hr(root: str | None = None) -> Path:
    """The 100 DIV2K validation HR images: ``root`` (or ``$SRBENCH_DIV2K_VALID_HR``) when given,
    else ``<cache>/datasets/div2k_valid_hr`` (fetched and unpacked when missing and online)."""
    given = root if root not in (None, "", "???") else os.environ.get("SRBENCH_DIV2K_VALID_HR")
    if given:
        return Path(given).expanduser()
    dest = F.cache_dir() / "datasets" / "div2k_valid_hr"
    if dest.is_dir() and F.read_marker(dest) is not None:
        problems = F.check_against_marker(dest)
        if problems:
            raise DatasetError(f"DIV2K valid HR at {dest} differs from the verified copy:\n  - " + "\n  - ".join(problems))
        return dest
    reason = F.offline_reason([DIV2K_VALID_HR])
    if reason is not None:
        raise MissingFilesError(
            f"DIV2K valid HR images are not at {dest} and cannot be downloaded ({reason}); nothing was run.\n"
            f"On a machine with network run `python -m benchmark data fetch div2k_bicubic` and copy {dest} here, or "
            f"point at a folder of the 100 images 0801.png ... 0900.png with dataset.hr_dir=<folder> or "
            "SRBENCH_DIV2K_VALID_HR=<folder>.")
    archive = F.fetch(DIV2K_VALID_HR)

    def check(folder: Path) -> dict[str, Any]:
        names = sorted(p.name for p in folder.iterdir())
        want = [f"{i:04d}.png" for i in range(801, 901)]
        if names != want:
            raise ValueError(f"{archive} does not hold DIV2K's 100 validation images 0801.png ... 0900.png "
                             f"(missing: {sorted(set(want) - set(names))[:10]}, odd: {sorted(set(names) - set(want))[:10]})")
        return {}

    return F.unpack(archive, dest, members=lambda n: n.split("/")[-1] if n.lower().endswith(".png") else None,
                    check=check, marker={"set": "div2k_valid_hr", "source": DIV2K_VALID_HR.to_dict()})


@DATASETS.register("div2k_bicubic")
class DIV2KBicubicDataset(SyntheticDataset):
    """DIV2K validation HR (100 images, fetched by URL with SHA-256) with MATLAB-bicubic LR (Table 3)."""

    def __init__(self, hr_dir: str | None = None, scale: int = 4, crop: str | None = None, crop_size: int = 512,
                 cache_dir: str | None = None, name: str = "div2k_bicubic") -> None:
        super().__init__(str(div2k_valid_hr(hr_dir)), "bicubic", scale, 0, crop, crop_size, None, None, cache_dir, name)


@DATASETS.register("imagenet1k_bicubic")
class ImageNet1kBicubicDataset(SyntheticDataset):
    """The 1k-image ImageNet validation subset of DDRM/DDNM: 256 px (``center_crop_arr``), x4 bicubic.

    ImageNet is not freely redistributable: the user provides ``hr_dir`` (the ILSVRC2012 validation
    images, any folder depth) and ``image_list`` (DDRM's ``exp/imagenet_val_1k.txt``, lines
    ``<file name> <class>``); without a list every image of ``hr_dir`` is used.
    """

    def __init__(self, hr_dir: str, image_list: str | None = None, scale: int = 4, crop_size: int = 256,
                 cache_dir: str | None = None, name: str = "imagenet1k_bicubic") -> None:
        if hr_dir in (None, "", "???"):
            raise ValueError("dataset.hr_dir is required for dataset=imagenet1k_bicubic: the ILSVRC2012 validation "
                             "images (ImageNet is not redistributable; see docs/datasets.md), plus "
                             "dataset.image_list=<DDRM's exp/imagenet_val_1k.txt>")
        super().__init__(hr_dir, "bicubic", scale, 0, "adm", crop_size, None, image_list, cache_dir, name)
