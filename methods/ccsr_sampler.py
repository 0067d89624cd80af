"""The CCSR-v2 sampler (``pipelines/pipeline_ccsr.py`` of the official code), batched over runs.

What the official ``__call__`` does for one image, and what this module does for N runs of it:

1. ``start_point='lr'``: the start latent is the LR latent noised to ``start_steps`` (999):
   ``z = add_noise(z_lr, noise, start_steps)``; ``'noise'``: pure noise.
2. If ``t_max != 1``: one network evaluation at ``start_steps`` predicts x0 (``x0_T``), which is
   noised again to ``t_tao``, the first timestep of the truncated schedule. Under classifier-free
   guidance the official code evaluates this step with the NEGATIVE prompt (it takes
   ``prompt_embeds.chunk(2)[0]``); we keep that.
3. The schedule of ``steps`` scheduler steps is truncated to its last ``round(steps * t_max)``
   timesteps, minus the last ``round(steps * t_min)`` when ``t_min > 0``; one step (one
   ControlNet + UNet evaluation, twice the batch under guidance) per remaining timestep.
4. If ``t_min > 0``: the output is the x0 prediction of the last loop step, not the scheduler's
   next latent. ``steps == 1`` is the one-step mode: the output is ``x0_T``.
5. VAE decode; colour fix (adain / wavelet) against the upscaled LR image.

Randomness: the official code draws from the global RNG. Here every run draws from its own
generator in a fixed order (start noise, the VAE posterior sample(s) of the LR latent, the
re-noising noise of step 2, then the scheduler's noise per step), so a run's output does not
depend on which other runs share its batch. The VAE encoder runs once per image; each run draws
its own latent sample from that posterior, as the official code does for its single run. Under
guidance the official batch encodes the image twice (unconditional and conditional halves) and so
draws two independent posterior samples; so do we (``z_a`` for the start latent, the initial
step and the unconditional branch, ``z_b`` for the conditional branch).

Numerics: networks run in ``dtype`` (fp16/bf16 on CUDA, fp32 on CPU); the sampler arithmetic
(x0 prediction, guidance, scheduler step, tile blending) stays in fp32.

Fast path (:class:`FastPath`, all off by default): switches that change how the networks run,
not what they compute: torch.compile, channels_last, the attention processor, whether the two
guidance halves share one batch, the VAE's dtype. Each is checked against the default path in
``tests/test_ccsr_fast.py`` (8-bit grey levels) and timed by ``benchmarks/gpu_ccsr.py``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: sample_method names of the official test script -> diffusers scheduler class names
SCHEDULERS = {"ddpm": "DDPMScheduler", "unipcmultistep": "UniPCMultistepScheduler",
              "dpmmultistep": "DPMSolverMultistepScheduler"}
COLOR_FIXES = ("adain", "wavelet", "nofix")
START_POINTS = ("lr", "noise")
#: torch.compile modes (``torch.compile(mode=...)``); ``reduce-overhead`` adds CUDA graphs
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: attention processors: keep diffusers' choice, or set one explicitly
ATTENTION = ("default", "sdpa", "plain")
#: the two classifier-free-guidance halves: one batch of 2N (the official code) or two batches of N
GUIDANCE_BATCH = ("fused", "split")
VAE_DTYPES = ("fp16", "bf16", "fp32")


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


@dataclass(frozen=True)
class FastPath:
    """Opt-in speed switches of the CCSR-v2 sampler; the defaults are the eager path.

    - ``compile``: ``torch.compile`` (``compile_mode``) the UNet, the ControlNet and the VAE
      decoder in place (``nn.Module.compile``); needs a working inductor backend (Triton on
      CUDA, a C++ compiler on CPU). The first call of each new batch shape compiles (minutes
      at SD size), so it pays off on long runs only.
    - ``channels_last``: UNet, ControlNet and VAE weights in NHWC memory format (convolutions pick
      NHWC kernels; on tensor cores usually faster).
    - ``attention``: ``default`` leaves diffusers' processor (``AttnProcessor2_0``, i.e.
      ``F.scaled_dot_product_attention``, on torch >= 2); ``sdpa`` sets ``AttnProcessor2_0``
      explicitly; ``plain`` sets ``AttnProcessor`` (baddbmm + softmax, no fused kernel), for comparison.
    - ``guidance_batch``: ``fused`` (default; the official pipeline's ``torch.cat([latents] * 2)``)
      evaluates the unconditional and conditional halves as one batch of 2N; ``split`` as two
      batches of N (lower peak memory, more kernel launches).
    - ``vae_dtype``: dtype of the VAE (encode and decode), ``None`` = the networks' dtype; e.g.
      ``bf16`` avoids the fp16 overflow of the SD VAE at large sizes at fp16's speed.
    """

    compile: bool = False
    compile_mode: str = "default"
    channels_last: bool = False
    attention: str = "default"
    guidance_batch: str = "fused"
    vae_dtype: str | None = None

    @staticmethod
    def problems(compile: Any = False, compile_mode: Any = "default", channels_last: Any = False,
                 attention: Any = "default", guidance_batch: Any = "fused", vae_dtype: Any = None) -> list[str]:
        """Every invalid value, as ``key=value: what is allowed`` (keys as in ``conf/method/ccsr.yaml``)."""
        bad = []
        for key, v in (("compile", compile), ("channels_last", channels_last)):
            if not _is_bool(v):
                bad.append(f"{key}={v!r}: expected true or false")
        for key, v, allowed in (("compile_mode", compile_mode, COMPILE_MODES), ("attention", attention, ATTENTION),
                                ("guidance_batch", guidance_batch, GUIDANCE_BATCH)):
            if v not in allowed:
                bad.append(f"{key}={v!r}: choose one of {', '.join(allowed)}")
        if vae_dtype is not None and vae_dtype not in VAE_DTYPES:
            bad.append(f"vae_dtype={vae_dtype!r}: choose null (the networks' dtype) or one of {', '.join(VAE_DTYPES)}")
        return bad

    def check(self) -> None:
        """Raise ValueError listing every invalid switch."""
        bad = self.problems(self.compile, self.compile_mode, self.channels_last, self.attention,
                            self.guidance_batch, self.vae_dtype)
        if bad:
            raise ValueError("invalid CCSR fast-path settings:\n  - " + "\n  - ".join(bad))

    @property
    def is_default(self) -> bool:
        return self == FastPath()

    def changes(self) -> list[str]:
        """The switches that differ from the eager path, as ``key=value`` (for logs and tables)."""
        ref = FastPath()
        return [f"{k}={getattr(self, k)}" for k in self.__dataclass_fields__ if getattr(self, k) != getattr(ref, k)]


def inductor_problem(device: torch.device) -> str | None:
    """Why ``torch.compile``'s inductor backend cannot run on ``device`` here, or None."""
    import shutil

    try:
        import torch._inductor  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means the backend is unusable
        return f"torch.compile's inductor backend does not import ({type(err).__name__}: {err})"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return "torch.compile on CUDA needs Triton (pip install triton), which is not installed or not usable"
        return None
    import os

    cxx = os.environ.get("CXX") or "g++"
    if shutil.which(cxx) is None and shutil.which("c++") is None and shutil.which("clang++") is None:
        return f"torch.compile on {device.type} needs a C++ compiler ({cxx}, c++ or clang++ on PATH); none was found"
    return None


def apply_fast_path(fast: FastPath, unet: Any, controlnet: Any, vae: Any) -> None:
    """Apply ``fast``'s module-level switches in place (memory format, attention processor,
    compilation); ``guidance_batch`` and ``vae_dtype`` are read by the sampler and the loader."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    fast.check()
    if fast.attention != "default":
        proc = AttnProcessor2_0 if fast.attention == "sdpa" else AttnProcessor
        for m in (unet, controlnet, vae):
            m.set_attn_processor(proc())
    if fast.channels_last:
        for m in (unet, controlnet, vae):
            m.to(memory_format=torch.channels_last)
    if fast.compile:
        # in place, so hooks, .config and the sampler's references keep working
        for m in (unet, controlnet, vae.decoder):
            m.compile(mode=fast.compile_mode)


@dataclass(frozen=True)
class SamplerSettings:
    """The knobs of the official test script that change the output (same names, same defaults
    where the official CLI has them: see ``conf/method/ccsr*.yaml`` for the presets)."""

    steps: int = 6                  # --num_inference_steps
    t_max: float = 0.6667           # --t_max
    t_min: float = 0.5              # --t_min
    guidance_scale: float = 4.5     # --guidance_scale (> 1 turns on classifier-free guidance)
    start_point: str = "lr"         # --start_point
    start_steps: int = 999          # --start_steps
    tile_diffusion: bool = False    # --tile_diffusion
    tile_size: int = 512            # --tile_diffusion_size (pixels)
    tile_stride: int = 256          # --tile_diffusion_stride (pixels)
    color_fix: str = "adain"        # --align_method

    def check(self, num_train_timesteps: int = 1000) -> None:
        """Reject settings the official sampler cannot run, naming the key and the fix."""
        bad = []
        if self.steps < 1:
            bad.append(f"steps={self.steps}: must be >= 1")
        if not 0 < self.t_max <= 1:
            bad.append(f"t_max={self.t_max}: must be in (0, 1]")
        if not 0 <= self.t_min < self.t_max:
            bad.append(f"t_min={self.t_min}: must be in [0, t_max)")
        if self.steps >= 1 and 0 < self.t_max <= 1 and round(self.steps * self.t_max) < 1:
            bad.append(f"t_max={self.t_max} with steps={self.steps} keeps no timestep (round(steps*t_max) = 0)")
        if self.steps == 1 and self.t_min != 0:
            bad.append("steps=1 (one-step mode) needs t_min=0: the output is the x0 prediction at t_max")
        if self.steps == 1 and self.t_max == 1:
            bad.append("steps=1 with t_max=1 runs no network: use t_max < 1 (the official one-step uses 0.6666)")
        if self.steps > 1 and self.t_min > 0 and 0 < self.t_max <= 1:
            n_max, n_min = round(self.steps * self.t_max), round(self.steps * self.t_min)
            if n_min == 0:
                bad.append(f"t_min={self.t_min} with steps={self.steps}: round(steps*t_min) = 0 truncates the whole "
                           "schedule in the official code; use t_min=0 or more steps")
            elif n_max - n_min < 1:
                bad.append(f"t_max={self.t_max}, t_min={self.t_min}, steps={self.steps} leave no denoising step")
        if not 0 <= self.start_steps < num_train_timesteps:
            bad.append(f"start_steps={self.start_steps}: must be in [0, {num_train_timesteps})")
        if self.start_point not in START_POINTS:
            bad.append(f"start_point={self.start_point!r}: choose one of {', '.join(START_POINTS)}")
        if self.color_fix not in COLOR_FIXES:
            bad.append(f"color_fix={self.color_fix!r}: choose one of {', '.join(COLOR_FIXES)}")
        if self.tile_size < 8 or self.tile_stride < 8 or self.tile_stride > self.tile_size:
            bad.append(f"tile_size={self.tile_size}, tile_stride={self.tile_stride}: need 8 <= stride <= size (pixels)")
        if self.guidance_scale < 0:
            bad.append(f"guidance_scale={self.guidance_scale}: must be >= 0 (> 1 enables guidance)")
        if bad:
            raise ValueError("invalid CCSR sampler settings:\n  - " + "\n  - ".join(bad))

    @property
    def guided(self) -> bool:
        return self.guidance_scale > 1.0


@dataclass(frozen=True)
class Schedule:
    """Timesteps one sample visits: the network runs at ``initial`` (if any) and at each of ``loop``."""

    initial: int | None       # start_steps, where x0_T is predicted (None when t_max == 1)
    t_tao: int | None         # x0_T is noised again to this timestep (the first of the truncated schedule)
    loop: tuple[int, ...]     # denoising steps
    final_x0: int | None      # the output is the x0 prediction at this timestep (t_min > 0)

    @property
    def visited(self) -> list[int]:
        """Every timestep at which the networks run, in order."""
        return ([self.initial] if self.initial is not None else []) + list(self.loop)


def truncate(timesteps: Sequence[int], settings: SamplerSettings) -> Schedule:
    """The official truncation of a scheduler's timesteps by (t_max, t_min), with its rounding."""
    ts = [int(t) for t in timesteps]
    total = len(ts)
    n_max = round(total * settings.t_max)  # Python round, as the official code (ties to even)
    t_tao = ts[-n_max]
    loop = ts[-n_max:]
    if settings.t_min > 0:
        loop = loop[:-round(total * settings.t_min)]
    if settings.steps == 1:  # one-step mode: the loop is skipped, the output is x0_T
        loop = []
    initial = settings.start_steps if settings.t_max != 1 else None
    final_x0 = loop[-1] if settings.t_min > 0 and loop else None
    return Schedule(initial, t_tao if initial is not None else None, tuple(loop), final_x0)


def sliding_windows(h: int, w: int, tile: int, stride: int) -> list[tuple[int, int, int, int]]:
    """Tile corners (h0, h1, w0, w1) as the official ``_sliding_windows``: a regular grid plus a
    last tile flush with the border. Tiles larger than the latent are clipped to it (the official
    code would index with a negative start there)."""
    th, tw = min(tile, h), min(tile, w)

    def starts(n: int, t: int) -> list[int]:
        out = list(range(0, n - t + 1, stride))
        if (n - t) % stride != 0:
            out.append(n - t)
        return out

    return [(hi, hi + th, wi, wi + tw) for hi in starts(h, th) for wi in starts(w, tw)]


def gaussian_weights(tile_h: int, tile_w: int) -> torch.Tensor:
    """Tile blending weights of the official ``gaussian_weights`` (variance 0.01 of the tile size).

    Kept exactly, including its asymmetry: the x midpoint is ``(w - 1) / 2`` but the y midpoint
    ``h / 2``.
    """
    var = 0.01
    xm = (tile_w - 1) / 2
    ym = tile_h / 2
    xs = [math.exp(-(x - xm) * (x - xm) / (tile_w * tile_w) / (2 * var)) / math.sqrt(2 * math.pi * var)
          for x in range(tile_w)]
    ys = [math.exp(-(y - ym) * (y - ym) / (tile_h * tile_h) / (2 * var)) / math.sqrt(2 * math.pi * var)
          for y in range(tile_h)]
    return torch.tensor(np.outer(ys, xs), dtype=torch.float32)


def draw_normal(shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    """One standard normal tensor of ``shape`` per generator, stacked: ``[len(generators), *shape]``.

    Drawn on each generator's device in fp32, so a run's draw is the same alone or in a batch.
    """
    return torch.stack([torch.randn(tuple(shape), generator=g, device=g.device, dtype=torch.float32)
                        for g in generators]).to(device)


# ----------------------------------------------------------------------------- colour fix


def _mean_std(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    b, c = x.shape[:2]
    flat = x.reshape(b, c, -1)
    return flat.mean(dim=2).reshape(b, c, 1, 1), (flat.var(dim=2) + eps).sqrt().reshape(b, c, 1, 1)


def adain_color_fix(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Per-channel mean/std of ``target`` [B,3,H,W] matched to ``source`` (unbiased variance + 1e-5),
    as the official ``adain_color_fix``; not clamped."""
    sm, ss = _mean_std(source)
    tm, ts = _mean_std(target)
    return (target - tm) / ts * ss + sm


def _wavelet_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    k = torch.tensor([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]],
                     dtype=x.dtype, device=x.device)
    k = k[None, None].repeat(x.shape[1], 1, 1, 1)
    x = F.pad(x, (radius,) * 4, mode="replicate")
    return F.conv2d(x, k, groups=x.shape[1], dilation=radius)


def _wavelet_split(x: torch.Tensor, levels: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    high = torch.zeros_like(x)
    for i in range(levels):
        low = _wavelet_blur(x, 2 ** i)
        high += x - low
        x = low
    return high, low


def wavelet_color_fix(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """High frequencies of ``target`` plus the low frequencies of ``source`` (5-level a trous
    wavelet, dilated 3x3 binomial kernel, replicate padding), as the official ``wavelet_color_fix``."""
    high, _ = _wavelet_split(target)
    _, low = _wavelet_split(source)
    return high + low


# ----------------------------------------------------------------------------- sampler


class CCSRSampler:
    """The official CCSR-v2 sampling loop over diffusers components, batched over runs.

    Components: ``unet`` (UNet2DConditionModel), ``controlnet`` (:class:`CCSRControlNetModel`),
    ``vae`` (AutoencoderKL), ``scheduler`` (a diffusers scheduler) and the text embeddings of the
    prompt and negative prompt (``[1, L, D]``), computed once by the caller.
    """

    def __init__(self, unet: Any, controlnet: Any, vae: Any, scheduler: Any, prompt_embeds: torch.Tensor,
                 negative_embeds: torch.Tensor, settings: SamplerSettings, dtype: torch.dtype,
                 fast: FastPath | None = None, vae_dtype: torch.dtype | None = None) -> None:
        """``dtype``: the UNet's and ControlNet's; ``vae_dtype``: the VAE's (default ``dtype``).
        ``fast.guidance_batch`` is read here; apply the module switches with :func:`apply_fast_path`."""
        self.unet, self.controlnet, self.vae, self.scheduler = unet, controlnet, vae, scheduler
        self.prompt_embeds, self.negative_embeds = prompt_embeds, negative_embeds
        self.settings = settings
        self.dtype = dtype
        self.vae_dtype = vae_dtype or dtype
        self.fast = fast or FastPath()
        self.fast.check()
        self.tile_diffusion = settings.tile_diffusion
        self.vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.use_vae_condition = bool(getattr(controlnet.config, "use_vae_encode_condition", False))
        # as the official prepare_extra_step_kwargs: only schedulers whose step takes a generator get one
        self._step_takes_generator = "generator" in inspect.signature(scheduler.step).parameters
        settings.check(scheduler.config.num_train_timesteps)

    # -- schedule

    def schedule(self, device: torch.device | str = "cpu") -> Schedule:
        self.scheduler.set_timesteps(self.settings.steps, device=device)
        return truncate(self.scheduler.timesteps.tolist(), self.settings)

    def x0_from_model(self, x: torch.Tensor, t: int, out: torch.Tensor) -> torch.Tensor:
        """x0 predicted from the network output at timestep ``t`` (official ``predict_start_from_noise``)."""
        a = self.scheduler.alphas_cumprod[int(t)].to(device=x.device, dtype=torch.float32)
        kind = self.scheduler.config.prediction_type
        if kind == "epsilon":
            return (x - (1 - a).sqrt() * out) / a.sqrt()
        if kind == "sample":
            return out
        if kind == "v_prediction":
            return a.sqrt() * x - (1 - a).sqrt() * out
        raise ValueError(f"scheduler prediction_type {kind!r} is not supported (epsilon, sample, v_prediction)")

    def _add_noise(self, x: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
        ts = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
        return self.scheduler.add_noise(x, noise, ts)

    # -- networks

    def _net(self, x: torch.Tensor, t: int, embeds: torch.Tensor, cond: torch.Tensor | None,
             image: torch.Tensor | None) -> torch.Tensor:
        """ControlNet + UNet output for latents ``x`` (fp32 in, fp32 out)."""
        tt = torch.tensor(int(t), device=x.device)
        extra = ({"vae_encode_condition_hidden_states": cond.to(self.dtype)} if self.use_vae_condition
                 else {"controlnet_cond": image.to(self.dtype)})
        xd = x.to(self.dtype)
        down, mid = self.controlnet(xd, tt, encoder_hidden_states=embeds, return_dict=False, **extra)
        out = self.unet(xd, tt, encoder_hidden_states=embeds, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid, return_dict=False)[0]
        return out.float()

    def _predict(self, x: torch.Tensor, t: int, embeds: torch.Tensor, cond: torch.Tensor | None,
                 image: torch.Tensor | None) -> torch.Tensor:
        if not self.tile_diffusion:
            return self._net(x, t, embeds, cond, image)
        f = self.vae_factor
        h, w = x.shape[-2:]
        out = torch.zeros_like(x, dtype=torch.float32)
        count = torch.zeros_like(x, dtype=torch.float32)
        for h0, h1, w0, w1 in sliding_windows(h, w, self.settings.tile_size // f, self.settings.tile_stride // f):
            wt = gaussian_weights(h1 - h0, w1 - w0).to(x.device)
            tile_cond = cond[..., h0:h1, w0:w1] if cond is not None else None
            tile_img = image[..., h0 * f:h1 * f, w0 * f:w1 * f] if image is not None else None
            out[..., h0:h1, w0:w1] += self._net(x[..., h0:h1, w0:w1], t, embeds, tile_cond, tile_img) * wt
            count[..., h0:h1, w0:w1] += wt
        return out / count

    # -- one image, N runs

    @torch.no_grad()
    def sample(self, image: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """Sample ``len(generators)`` runs for one image.

        ``image``: ``[1, 3, H, W]`` in [0, 1] with H, W multiples of the VAE factor (the upscaled
        LR image). Returns the decoded SR images ``[N, 3, H, W]`` in [0, 1], fp32, before colour fix.
        """
        s = self.settings
        device = image.device
        n = len(generators)
        sched = self.schedule(device)
        scaling = self.vae.config.scaling_factor

        # The VAE encoder runs once; each run draws its own sample of the posterior.
        posterior = self.vae.encode((image * 2 - 1).to(self.vae_dtype)).latent_dist
        mean, std = posterior.mean.float(), posterior.std.float()
        shape = tuple(mean.shape[1:])
        noise = draw_normal(shape, generators, device)                       # start noise
        z_a = (mean + std * draw_normal(shape, generators, device)) * scaling  # LR latent sample(s)
        z_b = (mean + std * draw_normal(shape, generators, device)) * scaling if s.guided else None
        noise_tao = draw_normal(shape, generators, device) if sched.initial is not None else None

        pos = self.prompt_embeds.to(device, self.dtype)
        neg = self.negative_embeds.to(device, self.dtype)
        img = image.expand(n, -1, -1, -1)

        if s.start_point == "lr":
            latents = self._add_noise(z_a, noise, s.start_steps)
        else:
            latents = noise * self.scheduler.init_noise_sigma

        if sched.initial is not None:
            t0 = sched.initial
            x_in = self.scheduler.scale_model_input(latents, t0)
            # Official quirk kept: under guidance this step uses the negative prompt (chunk(2)[0]).
            embeds = (neg if s.guided else pos).expand(n, -1, -1)
            x0_t = self.x0_from_model(x_in, t0, self._predict(x_in, t0, embeds, z_a, img))
            latents = x0_t if s.steps == 1 else self._add_noise(x0_t, noise_tao, sched.t_tao)

        if sched.loop:
            embeds = torch.cat([neg.expand(n, -1, -1), pos.expand(n, -1, -1)]) if s.guided else pos.expand(n, -1, -1)
            cond = torch.cat([z_a, z_b]) if s.guided else z_a
            cimg = torch.cat([img, img]) if s.guided else img
            split = s.guided and self.fast.guidance_batch == "split"
            for i, t in enumerate(sched.loop):
                if split:  # the same two halves as below, as two batches of n (unconditional first)
                    x_in = self.scheduler.scale_model_input(latents, t)
                    uncond = self._predict(x_in, t, embeds[:n], cond[:n], cimg[:n])
                    text = self._predict(x_in, t, embeds[n:], cond[n:], cimg[n:])
                    out = uncond + s.guidance_scale * (text - uncond)
                else:
                    x_in = torch.cat([latents, latents]) if s.guided else latents
                    x_in = self.scheduler.scale_model_input(x_in, t)
                    out = self._predict(x_in, t, embeds, cond, cimg)
                    if s.guided:  # official order: [negative prompt + z_a | prompt + z_b]
                        uncond, text = out.chunk(2)
                        out = uncond + s.guidance_scale * (text - uncond)
                if i == len(sched.loop) - 1 and sched.final_x0 is not None:
                    # The official code takes one more scheduler step and discards it; its
                    # noise would be the last draw of each generator, so skipping it changes nothing.
                    latents = self.x0_from_model(latents, t, out)
                else:
                    kw = {"generator": list(generators)} if self._step_takes_generator else {}
                    latents = self.scheduler.step(out, t, latents, return_dict=False, **kw)[0]

        decoded = self.vae.decode((latents / scaling).to(self.vae_dtype), return_dict=False)[0]
        return (decoded.float() / 2 + 0.5).clamp(0, 1)
