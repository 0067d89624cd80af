"""Generation speed: seed batching (one call with N runs) versus N calls of one run.

srbench hands a method the N runs of one image as one batch with one ``torch.Generator`` per
run (``batch_size``), instead of calling it N times. This script measures what that buys
with a diffusers denoising loop (DDIM scheduler; each run's starting noise drawn from its own
generator with diffusers' ``randn_tensor``, so a batched run equals the same run alone):

* CPU (default): a tiny ``UNet2DModel`` conditioned on the bicubic-upsampled LR image
  (concatenated channels), 64x64 pixels, random weights;
* ``--gpu``: the Stable Diffusion 2.1 UNet architecture (``UNet2DConditionModel``, 865M
  parameters, random weights) in fp16 at 512x512 output size (64x64x4 latents, 77x1024 text
  embeddings), on one CUDA device.

It prints the throughput (image-runs per second) of both ways, their ratio, and the largest
difference between a batched run and the same run alone.

    python benchmarks/generation.py                 # CPU, tiny model
    python benchmarks/generation.py --gpu           # one GPU, SD-2.1-size UNet, < 3 min on an H100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_model  # noqa: E402


def tiny_unet():
    from diffusers import UNet2DModel

    return UNet2DModel(sample_size=64, in_channels=6, out_channels=3, layers_per_block=1,
                       block_out_channels=(32, 64), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8)


def sd21_unet():
    """The UNet of stabilityai/stable-diffusion-2-1(-base), from its published config, random weights."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
    )


def make_sampler(unet, steps: int, device: torch.device, dtype: torch.dtype, conditional_image: bool,
                 latent_shape: tuple[int, int, int]) -> Callable[[torch.Tensor, list[torch.Generator]], torch.Tensor]:
    """A DDIM sampling loop: ``sample(cond, generators)`` -> one output per generator."""
    from diffusers import DDIMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    scheduler = DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(steps)

    @torch.inference_mode()
    def sample(cond: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        b = len(generators)
        x = randn_tensor((b, *latent_shape), generator=generators, device=device, dtype=dtype)
        x = x * scheduler.init_noise_sigma
        c = cond.expand(b, *cond.shape[1:])
        for t in scheduler.timesteps:
            if conditional_image:  # SR-style: LR image concatenated with the noisy sample
                eps = unet(torch.cat([x, c], 1), t).sample
            else:  # text-style: cross-attention on embeddings
                eps = unet(x, t, encoder_hidden_states=c).sample
            x = scheduler.step(eps, t, x).prev_sample  # eta = 0: no extra noise
        return x

    return sample


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(sample, cond: torch.Tensor, runs: int, repeats: int, device: torch.device, gen_device: str) -> dict:
    def gens(seeds):
        return [torch.Generator(device=gen_device).manual_seed(s) for s in seeds]

    seeds = list(range(runs))
    sample(cond, gens(seeds[:1]))  # warm-up (kernels, allocator, cuDNN autotune)
    sample(cond, gens(seeds))
    _sync(device)
    t_batch, t_single = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        batched = sample(cond, gens(seeds))
        _sync(device)
        t_batch.append(time.perf_counter() - t)
        t = time.perf_counter()
        single = torch.cat([sample(cond, gens([s])) for s in seeds])
        _sync(device)
        t_single.append(time.perf_counter() - t)
    diff = float((batched.float() - single.float()).abs().max())
    tb, ts = min(t_batch), min(t_single)
    return {"batched_s": tb, "single_s": ts, "batched_ips": runs / tb, "single_ips": runs / ts,
            "ratio": ts / tb, "max_diff": diff}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpu", action="store_true", help="SD-2.1-size UNet in fp16 on CUDA")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=None, help="DDIM steps (default 10 on CPU, 20 on GPU)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats, best kept (default 2 CPU, 3 GPU)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)  # random weights only; sampling uses the per-run generators
    if args.gpu:
        if not torch.cuda.is_available():
            print("error: --gpu needs a CUDA device", file=sys.stderr)
            return 2
        device, dtype = torch.device("cuda"), torch.float16
        steps, repeats = args.steps or 20, args.repeats or 3
        torch.backends.cuda.matmul.allow_tf32 = True
        with torch.device(device):
            unet = sd21_unet()
        unet = unet.to(dtype).eval()
        cond = torch.randn(1, 77, 1024, device=device, dtype=dtype)
        sample = make_sampler(unet, steps, device, dtype, False, (4, 64, 64))
        machine = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
        what = "SD-2.1 UNet (865M params, random weights), fp16, 64x64x4 latents (512x512 output)"
        gen_device = "cuda"
    else:
        device, dtype = torch.device("cpu"), torch.float32
        steps, repeats = args.steps or 10, args.repeats or 2
        unet = tiny_unet().eval()
        lr = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
        cond = torch.nn.functional.interpolate(lr, scale_factor=4, mode="bicubic")
        sample = make_sampler(unet, steps, device, dtype, True, (3, 64, 64))
        machine = f"{cpu_model()}, {os.cpu_count()} CPU(s), torch threads {torch.get_num_threads()}"
        what = "tiny UNet2DModel (random weights), fp32, 64x64 pixels, LR concatenated"
        gen_device = "cpu"
    params = sum(p.numel() for p in unet.parameters())
    print(f"machine: {machine}")
    print(f"model: {what}; {params / 1e6:.1f}M parameters; DDIM {steps} steps; {args.runs} runs per image")
    r = measure(sample, cond, args.runs, repeats, device, gen_device)
    print(f"one call with {args.runs} runs : {r['batched_s']:8.3f} s  {r['batched_ips']:8.2f} image-runs/s")
    print(f"{args.runs} calls of one run   : {r['single_s']:8.3f} s  {r['single_ips']:8.2f} image-runs/s")
    print(f"ratio (batched / one-by-one throughput): {r['ratio']:.2f}x")
    print(f"max |batched - one-by-one| over all outputs: {r['max_diff']:.2e} "
          f"(same seeds: differences are floating-point reduction order only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
