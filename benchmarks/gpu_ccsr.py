"""Seconds per image-run of the CCSR-v2 sampler at SD-2.1-base size, batch 1 vs batch 10, and peak memory.

    python benchmarks/gpu_ccsr.py                 # one GPU: fp16, 512x512, random weights (< 3 minutes on an H100)
    python benchmarks/gpu_ccsr.py --tiny          # CPU check of the script itself with the tiny test models

Builds Stable Diffusion 2.1-base's UNet, the CCSR-v2 ControlNet at the same size (with the
VAE-latent condition) and the SD VAE with random weights (the speed of a network does not depend
on its weights), then runs the adapter's own sampler (methods/ccsr_sampler.py) and
post-processing (colour fix) on one 512x512 image (128x128 LR x4) for each preset:

    paper      45 steps, t_max 0.6667, t_min 0.3333, guidance 4.5: 1 + 15 network evaluations
    ccsr       6 steps, t_max 0.6667, t_min 0.5, guidance 4.5:      1 + 1
    onestep    1 step, no guidance:                                  1

The text encoder is not timed: the adapter encodes the fixed prompts once at load time.
The CCSR paper reports 2.22 s per image for CCSR (15 steps) on a V100.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_tiny_ccsr import FROM_UNET, SD21_SCHEDULER, TINY_UNET, TINY_VAE

#: unet/config.json of stabilityai/stable-diffusion-2-1-base (the keys that shape the network)
SD21_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280),
                 down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                   "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                 cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), norm_num_groups=32,
                 use_linear_projection=True)
#: vae/config.json of Stable Diffusion (the CCSR-v2 VAE is a fine-tuned copy of it)
SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
              block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=512)

PRESETS = {
    "paper": dict(steps=45, t_max=0.6667, t_min=0.3333, guidance_scale=4.5),
    "ccsr": dict(steps=6, t_max=0.6667, t_min=0.5, guidance_scale=4.5),
    "onestep": dict(steps=1, t_max=0.6666, t_min=0.0, guidance_scale=1.0),
}


def build(unet_cfg: dict, vae_cfg: dict, device: torch.device, dtype: torch.dtype):
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from methods.ccsr_controlnet import CCSRControlNetModel

    with torch.device(device):  # initialise on the device: much faster than on the CPU at this size
        unet = UNet2DConditionModel(**unet_cfg)
        controlnet = CCSRControlNetModel(**{k: unet_cfg[k] for k in FROM_UNET}, use_vae_encode_condition=True)
        vae = AutoencoderKL(**vae_cfg)
    for m in (unet, controlnet, vae):
        m.requires_grad_(False).eval().to(device, dtype)
    scheduler = DDPMScheduler.from_config(SD21_SCHEDULER)
    return unet, controlnet, vae, scheduler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny random models on the CPU (checks the script)")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    ap.add_argument("--dtype", default=None, choices=["fp16", "bf16", "fp32"], help="default: fp16 (fp32 on CPU)")
    ap.add_argument("--size", type=int, default=None, help="SR side in pixels (default 512; 128 with --tiny)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--repeats", type=int, default=2, help="timed calls per (preset, batch); the best is kept")
    args = ap.parse_args()

    from diffusers.utils import logging as diffusers_logging

    from methods.ccsr import finish
    from methods.ccsr_sampler import CCSRSampler, SamplerSettings

    diffusers_logging.set_verbosity_error()  # casting random models to fp16 is what we mean to do

    device = torch.device(args.device or ("cpu" if args.tiny else "cuda"))
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[
        args.dtype or ("fp16" if device.type == "cuda" else "fp32")]
    size = args.size or (128 if args.tiny else 512)
    t0 = time.perf_counter()
    unet, controlnet, vae, scheduler = build(TINY_UNET if args.tiny else SD21_UNET, TINY_VAE if args.tiny else SD_VAE,
                                             device, dtype)
    n_params = sum(p.numel() for m in (unet, controlnet, vae) for p in m.parameters())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}; dtype {dtype}; {size}x{size}; UNet+ControlNet+VAE {n_params / 1e6:.0f}M parameters "
          f"(built in {time.perf_counter() - t0:.1f} s); torch {torch.__version__}")
    g = torch.Generator(device="cpu").manual_seed(0)
    dim = unet.config.cross_attention_dim
    pos, neg = torch.randn(1, 77, dim, generator=g).to(device), torch.randn(1, 77, dim, generator=g).to(device)
    image = torch.rand(1, 3, size, size, generator=g).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    print(f"{'preset':<9} {'evals':>5} {'batch':>5} {'s/call':>8} {'s/image-run':>12} {'peak GiB':>9}")
    for preset in args.presets:
        sampler = CCSRSampler(unet, controlnet, vae, scheduler, pos, neg, SamplerSettings(**PRESETS[preset]), dtype)
        evals = len(sampler.schedule().visited)
        for batch in args.batches:
            gens = [torch.Generator(device=device).manual_seed(s) for s in range(batch)]
            with torch.inference_mode():
                finish(sampler.sample(image, gens), image, "adain", (size, size))  # warm-up (kernels, allocator)
                sync()
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                best = float("inf")
                for _ in range(args.repeats):
                    sync()
                    t = time.perf_counter()
                    finish(sampler.sample(image, gens), image, "adain", (size, size))
                    sync()
                    best = min(best, time.perf_counter() - t)
            peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else float("nan")
            print(f"{preset:<9} {evals:>5} {batch:>5} {best:>8.3f} {best / batch:>12.3f} {peak:>9.2f}", flush=True)
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
