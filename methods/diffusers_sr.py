"""Diffusion SR baselines that diffusers ships as pipelines.

* ``ldm_sr``: LDM-SR (Rombach et al. 2022), ``LDMSuperResolutionPipeline``
  (``CompVis/ldm-super-resolution-4x-openimages``); the CCSR paper ran it with 200 steps.
* ``sd_upscaler``: Stable Diffusion x4 upscaler, ``StableDiffusionUpscalePipeline``
  (``stabilityai/stable-diffusion-x4-upscaler``).

``model_path`` is a local folder written by ``save_pretrained`` or a hub id (then the files come
from the Hugging Face cache, or are downloaded where there is network). Run ``r`` of an image
uses its own ``torch.Generator``, so the N runs of one image go through the pipeline as one batch
and a single run can be reproduced alone. LR sizes that the networks cannot take (not a multiple
of their downsampling factor) are reflect-padded and the output is cropped back.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from benchmark.sources import weight_files as weight_files_from_sources
from benchmark.weights import WeightFile
from methods.base import SRMethod

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _missing(value: Any) -> bool:
    return value in (None, "", "???")


def _hub_file(model_path: str, filename: str = "model_index.json") -> Path:
    """Where ``filename`` of a hub model lives in the local Hugging Face cache (present or not)."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    cached = try_to_load_from_cache(model_path, filename)
    if isinstance(cached, str):
        return Path(cached)
    return Path(HF_HUB_CACHE) / f"models--{model_path.replace('/', '--')}" / "snapshots" / "<revision>" / filename


class DiffusersSR(SRMethod):
    """Shared part of the diffusers adapters: loading, dtype, padding, parameter count."""

    stochastic = True
    pipeline_class = ""  # name in ``diffusers``
    components: tuple[str, ...] = ()  # modules counted by :meth:`num_parameters`

    def __init__(self, model_path: str, name: str, scale: int = 4, steps: int = 50, dtype: str = "float32",
                 sources: Sequence[Mapping[str, Any]] | None = None) -> None:
        if _missing(model_path):
            raise ValueError(f"method {name!r} needs method.model_path: a local diffusers folder (save_pretrained) "
                             f"or a hub id")
        if dtype not in DTYPES:
            raise ValueError(f"method.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if int(steps) < 1:
            raise ValueError(f"method.steps must be >= 1, got {steps}")
        self.model_path, self.name, self.scale = str(model_path), name, int(scale)
        self.steps, self.dtype = int(steps), DTYPES[dtype]
        self.pipe: Any = None

    @classmethod
    def weight_files(cls, **config: Any) -> list[WeightFile]:
        name, path = config.get("name", cls.__name__), config.get("model_path")
        local = None if _missing(path) else Path(str(path)).expanduser()
        if config.get("sources") and (local is None or local.is_absolute() or local.exists()):
            return weight_files_from_sources(config)  # a local folder: the preset's files, fetched by srbench
        if _missing(path):
            return [WeightFile(f"{name} pipeline", "", Path("<method.model_path>") / "model_index.json",
                               f"method {name}")]
        local = Path(str(path)).expanduser()
        if local.exists() or str(path).startswith((".", "/", "~")):
            return [WeightFile(f"{name} pipeline", "", local / "model_index.json", f"method {name}")]
        return [WeightFile(f"{name} pipeline", f"https://huggingface.co/{path}", _hub_file(str(path)),
                           f"method {name}")]

    def load(self, device: torch.device) -> None:
        import diffusers

        cls = getattr(diffusers, self.pipeline_class)
        local = Path(self.model_path).expanduser()
        source = str(local) if local.exists() else self.model_path
        if local.exists() and not (local / "model_index.json").is_file():
            raise FileNotFoundError(f"method.model_path={local} of {self.name!r} has no model_index.json: point it at "
                                    f"a folder written by {self.pipeline_class}.save_pretrained")
        try:
            pipe = cls.from_pretrained(source, dtype=self.dtype)
        except OSError as err:
            raise FileNotFoundError(
                f"cannot load {self.pipeline_class} for method {self.name!r} from {self.model_path!r}: it is not a "
                f"local folder and is not in the Hugging Face cache ({err}); download it on a machine with network "
                f"(huggingface-cli download {self.model_path}) or pass a local folder") from err
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(device)
        self.device = device

    def num_parameters(self) -> int | None:
        if self.pipe is None:
            return None
        return sum(p.numel() for c in self.components if (m := getattr(self.pipe, c, None)) is not None
                   for p in m.parameters())

    def _multiple(self) -> int:
        """LR sizes must be a multiple of this (UNet downsampling at LR resolution, VAE factor)."""
        unet = self.pipe.unet
        return 2 ** (len(unet.config.block_out_channels) - 1)

    def _padded(self, lr: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = lr.shape[-2:]
        m = self._multiple()
        ph, pw = (math.ceil(h / m) * m - h), (math.ceil(w / m) * m - w)
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            lr = F.pad(lr, (0, pw, 0, ph), mode=mode)
        return lr, h, w

    def _check(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> None:
        if self.pipe is None:
            raise RuntimeError(f"method {self.name!r}: load(device) must run before upscale")
        if len(generators) != lr.shape[0]:
            raise ValueError(f"method {self.name!r} needs one generator per image, got {len(generators)} "
                             f"for {lr.shape[0]}")


class LDMSR(DiffusersSR):
    """LDM-SR through diffusers' ``LDMSuperResolutionPipeline`` components.

    The sampling loop is the pipeline's own, written out here for one reason: the pipeline does
    not pass its generator to ``scheduler.step``, so with ``eta > 0`` (DDIM with fresh noise, as
    in the diffusers example, ``eta=1``) the step noise would come from the global RNG. Here every
    step draws from the runs' generators. With ``eta = 0`` the result equals the pipeline's call.
    """

    pipeline_class = "LDMSuperResolutionPipeline"
    components = ("unet", "vqvae")

    def __init__(self, model_path: str, name: str = "ldm_sr", scale: int = 4, steps: int = 200, eta: float = 1.0,
                 dtype: str = "float32", sources: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(model_path, name, scale, steps, dtype, sources)
        if not eta >= 0:
            raise ValueError(f"method.eta must be >= 0, got {eta}")
        self.eta = float(eta)

    @torch.no_grad()
    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        self._check(lr, generators)
        pipe = self.pipe
        x, h, w = self._padded(lr)
        cond = (2.0 * x - 1.0).to(pipe.device, self.dtype)
        b, _, hh, ww = cond.shape
        latents = randn_tensor((b, pipe.unet.config.in_channels // 2, hh, ww), generator=list(generators),
                               device=pipe.device, dtype=self.dtype)
        sched = pipe.scheduler
        sched.set_timesteps(self.steps, device=pipe.device)
        latents = latents * sched.init_noise_sigma
        params = set(inspect.signature(sched.step).parameters)
        extra = {k: v for k, v in (("eta", self.eta), ("generator", list(generators))) if k in params}
        for t in sched.timesteps:
            inp = sched.scale_model_input(torch.cat([latents, cond], dim=1), t)
            noise_pred = pipe.unet(inp, t).sample
            latents = sched.step(noise_pred, t, latents, **extra).prev_sample
        out = pipe.vqvae.decode(latents).sample
        out = (out.clamp(-1.0, 1.0) / 2 + 0.5).float()
        return out[..., : h * self.scale, : w * self.scale]


class SDUpscaler(DiffusersSR):
    """Stable Diffusion x4 upscaler through diffusers' ``StableDiffusionUpscalePipeline`` call."""

    pipeline_class = "StableDiffusionUpscalePipeline"
    components = ("unet", "vae", "text_encoder")

    def __init__(self, model_path: str, name: str = "sd_upscaler", scale: int = 4, steps: int = 75,
                 guidance_scale: float = 9.0, noise_level: int = 20, prompt: str = "", negative_prompt: str = "",
                 eta: float = 0.0, dtype: str = "float32", sources: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(model_path, name, scale, steps, dtype, sources)
        self.guidance_scale, self.noise_level = float(guidance_scale), int(noise_level)
        self.prompt, self.negative_prompt, self.eta = str(prompt), str(negative_prompt), float(eta)

    def _multiple(self) -> int:
        return max(super()._multiple(), int(getattr(self.pipe, "vae_scale_factor", 1)))

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        self._check(lr, generators)
        x, h, w = self._padded(lr)
        b = x.shape[0]
        # a tensor in [0, 1] (min >= 0) is mapped to [-1, 1] by the pipeline's image processor
        out = self.pipe(prompt=[self.prompt] * b, image=x.to(self.pipe.device, self.dtype),
                        num_inference_steps=self.steps, guidance_scale=self.guidance_scale,
                        noise_level=self.noise_level, negative_prompt=[self.negative_prompt] * b
                        if self.guidance_scale > 1 else None, eta=self.eta, generator=list(generators),
                        output_type="pt").images
        return out.float()[..., : h * self.scale, : w * self.scale].clamp(0.0, 1.0)
