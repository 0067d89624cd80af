"""Feed-forward SR checkpoints (GAN baselines and SwinIR) loaded with spandrel.

spandrel reads a released ``.pth``/``.safetensors`` file, detects the architecture and its
hyper-parameters (scale included) from the state-dict keys and shapes, and returns an
``ImageModelDescriptor``. One adapter therefore serves Real-ESRGAN, BSRGAN, LDL (all RRDB,
ESRGAN family) and SwinIR: the presets ``conf/method/{realesrgan,bsrgan,ldl,swinir}.yaml``
differ only in their name, expected architecture and download address. DASR is not among
spandrel's architectures; see :mod:`methods.dasr`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from benchmark.sources import parse
from benchmark.sources import weight_files as weight_files_from_sources
from benchmark.weights import WeightFile
from methods.base import SRMethod
from methods.tiling import tiled_upscale

#: preset names served by :class:`GANCheckpoint` (each has conf/method/<name>.yaml)


def _missing(value: Any) -> bool:
    return value in (None, "", "???")


def _source_url(sources: Any, method: str, key: str) -> str:
    """Address of the first origin the preset declares for ``key`` ("" when none)."""
    for e in parse(sources, method):
        if e.key == key:
            return e.origins[0].address(e.origins[0].file if e.single else None)
    return ""


def checkpoint_path(model_path: Any, method: str, url: str = "") -> Path:
    """The checkpoint path of ``method.model_path``, or a FileNotFoundError telling where to get it."""
    where = (f" (download it from {url}, or fetch it with `python -m benchmark weights method={method} --download`)"
             if url else "")
    if _missing(model_path):
        raise ValueError(f"method {method!r} needs method.model_path=<released checkpoint .pth>{where}")
    path = Path(str(model_path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint of method {method!r} not found: method.model_path={path}{where}")
    return path


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class GANCheckpoint(SRMethod):
    """A deterministic feed-forward SR network from a checkpoint file, through spandrel.

    The architecture and :attr:`scale` are read from the checkpoint when the method is built
    (before any image is generated), so a checkpoint of the wrong scale fails at once.
    Inference is tiled (``tile`` LR pixels per side, ``tile_overlap`` pixels of context) so
    large inputs fit in memory; ``tile: 0`` runs whole images.
    """

    stochastic = False

    def __init__(self, model_path: str, name: str = "gan", expected_scale: int | None = None,
                 architecture: str | None = None, tile: int = 512, tile_overlap: int = 32,
                 half: bool = False, url: str = "", sources: Sequence[Mapping[str, Any]] | None = None) -> None:
        from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

        self.name = name
        # the preset's declared source (benchmark/sources.py) names where a missing file comes from
        url = url or _source_url(sources, name, "model_path")
        self.path = checkpoint_path(model_path, name, url)
        if int(tile) < 0 or int(tile_overlap) < 0:
            raise ValueError(f"method {name!r}: tile and tile_overlap must be >= 0, got {tile}, {tile_overlap}")
        self.tile, self.tile_overlap, self.half = int(tile), int(tile_overlap), bool(half)
        try:
            desc = ModelLoader(device="cpu").load_from_file(self.path)
        except UnsupportedModelError:
            raise ValueError(
                f"spandrel cannot detect the architecture of {self.path} (method {name!r}): it is not a checkpoint of "
                f"a supported SR network, or its keys were renamed; pass the released file unchanged "
                f"(supported architectures: https://github.com/chaiNNer-org/spandrel#model-architecture-support)"
            ) from None
        except Exception as err:  # torch.load / safetensors errors on a truncated or foreign file
            raise ValueError(f"cannot read checkpoint {self.path} of method {name!r}: {err}") from err
        if not isinstance(desc, ImageModelDescriptor):
            raise ValueError(f"{self.path} holds a {desc.architecture.name} model ({type(desc).__name__}), "
                             f"not a single-image SR network; method {name!r} needs an SR checkpoint")
        arch = desc.architecture.name
        if architecture and arch.lower() != str(architecture).lower():
            raise ValueError(f"method {name!r} expects a {architecture} checkpoint but {self.path} holds {arch}: "
                             f"check method.model_path" + (f" (the preset's file comes from {url})" if url else ""))
        if desc.input_channels != 3 or desc.output_channels != 3:
            raise ValueError(f"{self.path} is a {desc.input_channels}->{desc.output_channels} channel model; "
                             f"method {name!r} needs an RGB -> RGB network")
        if expected_scale is not None and int(expected_scale) != desc.scale:
            raise ValueError(f"checkpoint {self.path} ({arch}) upscales x{desc.scale} but the data set is "
                             f"x{expected_scale}: use a x{expected_scale} checkpoint or set dataset.scale={desc.scale}")
        self.descriptor = desc
        self.architecture = arch
        # no min_size: the descriptor pads inputs below the architecture's minimum (and crops the output)

    @property
    def scale(self) -> int:  # type: ignore[override]
        """Upscaling factor read from the checkpoint."""
        return int(self.descriptor.scale)

    @classmethod
    def weight_files(cls, **config: Any) -> list[WeightFile]:
        if config.get("sources"):
            return weight_files_from_sources(config)
        name = config.get("name", "gan")
        path = config.get("model_path")
        return [WeightFile(name=f"{name} checkpoint", url=config.get("url") or "",
                           path=Path("<method.model_path>" if _missing(path) else str(path)).expanduser(),
                           needed_by=f"method {name}")]

    def load(self, device: torch.device) -> None:
        self.descriptor.to(device)
        if self.half:
            if not self.descriptor.supports_half:
                raise ValueError(f"{self.architecture} does not support half precision: set method.half=false")
            self.descriptor.half()
        self.descriptor.eval()

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        dtype = next(self.descriptor.model.parameters()).dtype
        outs = []
        for i in range(lr.shape[0]):  # the descriptor takes one image at a time
            x = lr[i:i + 1].to(dtype)
            outs.append(tiled_upscale(self.descriptor, x, self.scale, self.tile, self.tile_overlap).float())
        return torch.cat(outs).clamp_(0.0, 1.0)

    def num_parameters(self) -> int:
        return count_parameters(self.descriptor.model)

    def __repr__(self) -> str:
        return f"GANCheckpoint(name={self.name!r}, architecture={self.architecture!r}, scale={self.scale})"
