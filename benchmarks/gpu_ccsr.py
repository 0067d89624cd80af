"""CCSR-v2 on one GPU: eager vs each fast-path switch, batch 1 vs 10, and a metrics=paper scoring pass.

    python benchmarks/gpu_ccsr.py            # one CUDA GPU: fp16, 512x512, random weights (target < 5 min)
    python benchmarks/gpu_ccsr.py --smoke    # CPU, tiny models, seconds: checks the script itself (no figures)

Part 1, generation. Builds Stable Diffusion 2.1-base's UNet, the CCSR-v2 ControlNet at the same
size (VAE-latent condition) and the SD VAE with random weights (speed does not depend on the
weights), then runs the adapter's own sampler (methods/ccsr_sampler.py) and colour fix
(methods/ccsr.py:finish) on one 512x512 image (128x128 LR x4) for the chosen preset
(``--preset``, default ``paper``: 45 steps, t_max 0.6667, t_min 0.3333, guidance 4.5, i.e. 1 + 15
network evaluations, the guided ones on a batch of 2N) with each configuration of the fast path
(``method.<switch>`` of conf/method/ccsr.yaml, applied by the same ``apply_fast_path``):

    eager            the default path (diffusers' SDPA attention, guidance halves fused)
    channels_last    channels_last=true
    plain_attention  attention=plain: no fused attention kernel (what SDPA buys)
    split_guidance   guidance_batch=split: the two guidance halves as two batches (what fusing buys)
    vae_bf16         vae_dtype=bf16
    compile          compile=true (torch.compile, inductor, mode default)
    all              compile + channels_last + vae_dtype=bf16 (SDPA and fused guidance are the defaults)
    all_cudagraphs   all with compile_mode=reduce-overhead (CUDA graphs); not in the default list

For every (configuration, batch): seconds of the first call (compilation included), seconds per
call and per image-run (best of ``--repeats`` later calls, synchronised), peak GPU memory
(torch.cuda.max_memory_allocated during the timed calls, weights included), and the largest and
mean difference of the finished 8-bit images from the eager path with the same generators, in
grey levels. Compiled configurations are skipped (and say so) once ``--budget`` seconds have gone.

Part 2, scoring (``--no-scoring`` leaves it out). ``python run_bench.py method=noise_control
metrics=paper`` on synthetic 512x512 photographs (benchmarks/synthetic_pairs.py), 10 runs, on the
GPU, with random-weight metric networks in the real architectures and file formats
(tests/random_weights.py: LPIPS, DISTS, MUSIQ, CLIPIQA, FID's Inception) and a random NIQE model,
once with 2 and once with 10 images: the difference gives the harness + scoring time per
image-run without process start and model loading, compared with the generation time per
image-run of part 1.

Output: Markdown tables ready for docs/benchmarks.md. Exit status 2 without CUDA (unless
``--smoke``), 1 when the scoring pass failed.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_tiny_ccsr import FROM_UNET, SD21_SCHEDULER, TINY_UNET, TINY_VAE  # noqa: E402

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

#: configuration name -> FastPath switches (the keys of conf/method/ccsr.yaml)
CONFIGS = {
    "eager": {},
    "channels_last": dict(channels_last=True),
    "plain_attention": dict(attention="plain"),
    "split_guidance": dict(guidance_batch="split"),
    "vae_bf16": dict(vae_dtype="bf16"),
    "compile": dict(compile=True),
    "all": dict(compile=True, channels_last=True, vae_dtype="bf16"),
    "all_cudagraphs": dict(compile=True, compile_mode="reduce-overhead", channels_last=True, vae_dtype="bf16"),
}
DEFAULT_CONFIGS = ["eager", "channels_last", "plain_attention", "split_guidance", "vae_bf16", "compile", "all"]
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def fail(message: str, status: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(status)


def build(unet_cfg: dict, vae_cfg: dict, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """UNet, CCSR-v2 ControlNet, VAE with random weights from ``seed``, and SD-2.1's scheduler."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    from methods.ccsr_controlnet import CCSRControlNetModel

    torch.manual_seed(seed)
    with torch.device(device):  # initialise on the device: much faster than on the CPU at this size
        unet = UNet2DConditionModel(**unet_cfg)
        controlnet = CCSRControlNetModel(**{k: unet_cfg[k] for k in FROM_UNET}, use_vae_encode_condition=True)
        vae = AutoencoderKL(**vae_cfg)
        # the released ControlNet's output convolutions are trained, not zero: random ones keep its
        # residuals in the UNet's arithmetic (zero ones would make them exact no-ops)
        for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            for p in module.parameters():
                p.data.normal_(0.0, 0.02)
    for m in (unet, controlnet, vae):
        m.requires_grad_(False).eval().to(device, dtype)
    scheduler = DDPMScheduler.from_config(SD21_SCHEDULER)
    return unet, controlnet, vae, scheduler


def grey_levels(a: torch.Tensor, b: torch.Tensor) -> tuple[int, float]:
    """(max, mean) absolute difference of two [0,1] 8-bit image batches, in grey levels."""
    d = (a.float() - b.float()).abs().mul(255).round()
    return int(d.max()), float(d.mean())


# ----------------------------------------------------------------------------- part 1: generation


def generation(args: argparse.Namespace, device: torch.device, dtype: torch.dtype, size: int,
               t_start: float) -> list[dict]:
    from diffusers.utils import logging as diffusers_logging

    from methods.ccsr import finish
    from methods.ccsr_sampler import CCSRSampler, FastPath, SamplerSettings, apply_fast_path, inductor_problem

    diffusers_logging.set_verbosity_error()  # casting random models to fp16 is what we mean to do
    t0 = time.perf_counter()
    base = build(TINY_UNET if args.smoke else SD21_UNET, TINY_VAE if args.smoke else SD_VAE, device, dtype)
    unet0, cn0, vae0, scheduler = base
    n_params = sum(p.numel() for m in (unet0, cn0, vae0) for p in m.parameters())
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}; {dtype}; {size}x{size}; preset {args.preset} "
          f"({PRESETS[args.preset]}); UNet+ControlNet+VAE {n_params / 1e6:.0f}M parameters, random weights "
          f"(built in {time.perf_counter() - t0:.1f} s)", flush=True)
    g = torch.Generator(device="cpu").manual_seed(0)
    dim = unet0.config.cross_attention_dim
    pos, neg = torch.randn(1, 77, dim, generator=g).to(device), torch.randn(1, 77, dim, generator=g).to(device)
    image = torch.rand(1, 3, size, size, generator=g).to(device)
    settings = SamplerSettings(**PRESETS[args.preset])

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rows: list[dict] = []
    reference: dict[int, torch.Tensor] = {}
    for cfg_name in args.configs:
        fast = FastPath(**CONFIGS[cfg_name])
        if fast.compile:
            why = inductor_problem(device)
            if why or time.perf_counter() - t_start > args.budget:
                reason = why or f"time budget of {args.budget:.0f} s spent"
                print(f"{cfg_name}: skipped ({reason})", flush=True)
                rows.append(dict(config=cfg_name, switches=", ".join(fast.changes()), skipped=reason))
                continue
        if cfg_name == "eager":
            unet, cn, vae = unet0, cn0, vae0
        else:
            unet, cn, vae = (copy.deepcopy(m) for m in (unet0, cn0, vae0))
        vae_dtype = DTYPES[fast.vae_dtype] if fast.vae_dtype else dtype
        vae.to(vae_dtype)
        apply_fast_path(fast, unet, cn, vae)
        sampler = CCSRSampler(unet, cn, vae, scheduler, pos, neg, settings, dtype, fast=fast, vae_dtype=vae_dtype)
        evals = len(sampler.schedule().visited)
        for batch in args.batches:
            def gens() -> list[torch.Generator]:
                return [torch.Generator(device=device).manual_seed(s) for s in range(batch)]

            with torch.inference_mode():
                sync()
                t = time.perf_counter()
                first = finish(sampler.sample(image, gens()), image, "adain", (size, size))
                sync()
                first_s = time.perf_counter() - t
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                best = float("inf")
                for _ in range(args.repeats):
                    sync()
                    t = time.perf_counter()
                    finish(sampler.sample(image, gens()), image, "adain", (size, size))
                    sync()
                    best = min(best, time.perf_counter() - t)
            peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else float("nan")
            if cfg_name == "eager":
                reference[batch] = first.cpu()
            mx, mean = grey_levels(first.cpu(), reference[batch]) if batch in reference else (None, None)
            row = dict(config=cfg_name, switches=", ".join(fast.changes()) or "(defaults)", batch=batch, evals=evals,
                       first_s=first_s, call_s=best, per_run_s=best / batch, peak_gib=peak, max_grey=mx,
                       mean_grey=mean)
            rows.append(row)
            print(f"{cfg_name:<16} batch {batch:>3}: first call {first_s:8.3f} s, {best:8.3f} s/call, "
                  f"{best / batch:8.4f} s/image-run, peak {peak:6.2f} GiB, vs eager max {mx} / mean "
                  f"{mean if mean is None else round(mean, 4)} grey levels", flush=True)
        del sampler, unet, cn, vae
        gc.collect()
        if fast.compile:
            torch._dynamo.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def generation_table(rows: list[dict], device_name: str, preset: str) -> str:
    eager = {r["batch"]: r["per_run_s"] for r in rows if r["config"] == "eager" and "batch" in r}
    lines = [f"CCSR-v2 `{preset}` preset, {device_name}:", "",
             "| configuration | switches | batch | first call s | s per call | s per image-run | vs eager | "
             "peak GiB | max / mean grey-level diff vs eager |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['config']} | {r['switches']} | - | skipped: {r['skipped']} | | | | | |")
            continue
        ratio = eager.get(r["batch"], float("nan")) / r["per_run_s"]
        diff = "-" if r["max_grey"] is None else f"{r['max_grey']} / {r['mean_grey']:.3f}"
        lines.append(f"| {r['config']} | {r['switches']} | {r['batch']} | {r['first_s']:.2f} | {r['call_s']:.3f} | "
                     f"{r['per_run_s']:.4f} | {ratio:.2f}x | {r['peak_gib']:.2f} | {diff} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- part 2: scoring


def random_niqe(path: Path) -> Path:
    """A NIQE pristine model with the real shapes (36 features) and a positive definite covariance."""
    g = np.random.default_rng(0)
    a = g.normal(size=(36, 36))
    np.savez(path, mu_pris_param=g.normal(size=(1, 36)), cov_pris_param=a @ a.T / 36 + np.eye(36))
    return path


def scoring(args: argparse.Namespace, device: torch.device, work: Path) -> dict:
    """Two runs of run_bench.py (few and more images); returns the marginal time per image-run."""
    sys.path.insert(0, str(ROOT / "tests"))
    import random_weights
    from synthetic_pairs import write_pairs

    home = work / "torch_home"
    t = time.perf_counter()
    random_weights.write_all(home)
    niqe = random_niqe(work / "niqe_random.npz")
    print(f"scoring: random metric weights written in {time.perf_counter() - t:.1f} s", flush=True)
    hr_size = 128 if args.smoke else 512
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR",)}
    env.update(TORCH_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), SRBENCH_CACHE=str(work / "cache"))
    wall = {}
    for n in args.scoring_images:
        lr, hr = write_pairs(work / f"data{n}", n, hr_size)
        cmd = [sys.executable, str(ROOT / "run_bench.py"), "method=noise_control", "dataset=folder",
               f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"dataset.name=synthetic{n}",
               f"runs={args.scoring_runs}", "metrics=paper", f"metrics.niqe.params_path={niqe}",
               f"device={device}", f"output_dir={work / 'out'}", "stats.enabled=false",
               "strict=false"]  # values a metric cannot give (FID of 1-2 images) are listed, not fatal
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work)
        wall[n] = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"run_bench.py exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        res = json.loads((work / "out" / f"synthetic{n}" / "noise_control" / "results.json").read_text())
        got = sorted(res["metrics"])
        excluded = {k: len(v.get("excluded") or []) for k, v in res["metrics"].items() if v.get("excluded")}
        print(f"scoring: {n} images x {args.scoring_runs} runs, metrics {', '.join(got)}: {wall[n]:.1f} s "
              f"(whole process); skipped {res.get('skipped') or 'none'}; excluded values {excluded or 'none'}",
              flush=True)
        if res.get("skipped"):
            raise RuntimeError(f"metrics skipped: {res['skipped']} (the random weights should cover every one)")
    lo, hi = min(args.scoring_images), max(args.scoring_images)
    marginal = (wall[hi] - wall[lo]) / ((hi - lo) * args.scoring_runs)
    return dict(images=(lo, hi), runs=args.scoring_runs, wall=wall, per_run_s=marginal, metrics=got,
                size=hr_size)


def scoring_table(sc: dict, device_name: str, gen_rows: list[dict]) -> str:
    lo, hi = sc["images"]
    rate = 1 / sc["per_run_s"] if sc["per_run_s"] > 0 else float("inf")
    lines = [f"Harness + scoring, `method=noise_control metrics=paper` ({', '.join(sc['metrics'])}), "
             f"{sc['size']}x{sc['size']}, {sc['runs']} runs, {device_name}:", "",
             "| images | whole process s |", "|---|---|"]
    lines += [f"| {n} | {sc['wall'][n]:.1f} |" for n in (lo, hi)]
    if sc["per_run_s"] <= 0:  # the larger run was not slower: the difference is below the timing noise
        lines += ["", f"Marginal harness + scoring time: not resolved ({hi} images took {sc['wall'][hi]:.1f} s, "
                      f"{lo} images {sc['wall'][lo]:.1f} s: within the noise of process start-up); "
                      f"rerun with more --scoring-images."]
        return "\n".join(lines)
    lines += ["", f"Marginal harness + scoring time: {sc['per_run_s'] * 1000:.1f} ms per image-run "
                  f"({rate:.3g} image-runs/s)."]
    best = [r for r in gen_rows if "per_run_s" in r]
    if best:
        for label, r in (("eager", min((r for r in best if r["config"] == "eager"), key=lambda r: r["per_run_s"],
                                       default=None)),
                         ("fastest", min(best, key=lambda r: r["per_run_s"]))):
            if r is not None:
                lines.append(f"Against generation ({label}: {r['config']}, batch {r['batch']}, "
                             f"{r['per_run_s']:.4f} s per image-run): harness + scoring = "
                             f"{100 * sc['per_run_s'] / r['per_run_s']:.1f} % of generation time.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", "--tiny", action="store_true",
                    help="tiny random models on the CPU, 64x64, seconds (checks the script; no figures)")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --smoke")
    ap.add_argument("--dtype", default=None, choices=list(DTYPES), help="default: fp16 (fp32 on CPU)")
    ap.add_argument("--size", type=int, default=None, help="SR side in pixels (default 512; 64 with --smoke)")
    ap.add_argument("--batches", type=int, nargs="+", default=None, help="default: 1 10 (1 2 with --smoke)")
    ap.add_argument("--preset", default=None, choices=list(PRESETS), help="default: paper (ccsr with --smoke)")
    ap.add_argument("--configs", nargs="+", default=None, choices=list(CONFIGS),
                    help=f"default: {' '.join(DEFAULT_CONFIGS)} (without the compiled ones with --smoke)")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls after the first (default 2; 1 with --smoke)")
    ap.add_argument("--budget", type=float, default=200.0,
                    help="seconds after which compiled configurations are skipped (default 200)")
    ap.add_argument("--no-scoring", action="store_true", help="leave out part 2 (the scoring pass)")
    ap.add_argument("--scoring-images", type=int, nargs=2, default=None, help="default: 2 10 (2 3 with --smoke)")
    ap.add_argument("--scoring-runs", type=int, default=None, help="default: 10 (2 with --smoke)")
    args = ap.parse_args()
    t_start = time.perf_counter()

    device = torch.device(args.device or ("cpu" if args.smoke else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        fail("no CUDA device here (torch.cuda.is_available() is False): this benchmark measures a GPU. "
             "Run it on a machine with one, or check the script on the CPU with --smoke (its figures mean nothing)")
    if device.type != "cuda" and not args.smoke:
        fail(f"--device {device} without --smoke: the figures of this script are GPU figures; use --smoke to "
             "check the script on the CPU")
    dtype = DTYPES[args.dtype or ("fp16" if device.type == "cuda" else "fp32")]
    size = args.size or (64 if args.smoke else 512)
    args.batches = args.batches or ([1, 2] if args.smoke else [1, 10])
    args.preset = args.preset or ("ccsr" if args.smoke else "paper")
    args.configs = args.configs or [c for c in DEFAULT_CONFIGS if not (args.smoke and CONFIGS[c].get("compile"))]
    if "eager" not in args.configs:
        args.configs = ["eager", *args.configs]  # the reference of every difference
    args.repeats = args.repeats or (1 if args.smoke else 2)
    args.scoring_images = args.scoring_images or ([2, 3] if args.smoke else [2, 10])
    args.scoring_runs = args.scoring_runs or (2 if args.smoke else 10)
    if args.scoring_images[0] == args.scoring_images[1]:
        fail("--scoring-images needs two different numbers of images (the difference gives the per-image-run time)")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke: not a speed figure)"
    if args.smoke:
        torch.set_num_threads(1)  # tiny models: threads only contend with whatever else the machine runs

    rows = generation(args, device, dtype, size, t_start)
    print()
    print(generation_table(rows, device_name, args.preset))
    status = 0
    if not args.no_scoring:
        with tempfile.TemporaryDirectory(prefix="srbench-gpu-scoring-") as tmp:
            try:
                sc = scoring(args, device, Path(tmp))
            except Exception as err:  # noqa: BLE001 - part 1's figures are printed already; say why part 2 failed
                print(f"scoring pass failed: {type(err).__name__}: {err}", file=sys.stderr)
                status = 1
            else:
                print()
                print(scoring_table(sc, device_name, rows))
    print(f"\ntotal {time.perf_counter() - t_start:.1f} s")
    raise SystemExit(status)


if __name__ == "__main__":
    main()
