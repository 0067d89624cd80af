"""Write tiny random CCSR-v2 weights in the official on-disk layout (for tests and trying the harness).

    python benchmarks/make_tiny_ccsr.py /tmp/tiny_ccsr
    python run_bench.py method=ccsr method.sd_path=/tmp/tiny_ccsr/stable-diffusion-2-1-base \
        method.ccsr_path=/tmp/tiny_ccsr/ccsr-v2 dataset=demo runs=3 metrics=[psnr,ssim] device=cpu

Layout written (the same folders, file names and config keys as Stable Diffusion 2.1-base and
the CCSR-v2 release; only the sizes are tiny and the weights random)::

    <root>/stable-diffusion-2-1-base/scheduler/scheduler_config.json
                                     tokenizer/{vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json}
                                     text_encoder/{config.json, model.safetensors}
                                     unet/{config.json, diffusion_pytorch_model.safetensors}
    <root>/ccsr-v2/controlnet/{config.json, diffusion_pytorch_model.safetensors}
                   vae/{config.json, diffusion_pytorch_model.safetensors}

The outputs of these models are noise-like images: they exercise the code, not the method.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: scheduler/scheduler_config.json of stabilityai/stable-diffusion-2-1-base
SD21_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.10.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

#: a 2-level UNet of SD-2.1's kind (linear projections, cross-attention), 32/64 channels
TINY_UNET = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                 attention_head_dim=(2, 4), norm_num_groups=8, use_linear_projection=True)
#: a 4-level VAE, so the latent is 1/8 of the image as in Stable Diffusion
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8, sample_size=64)
TINY_TEXT = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=77, projection_dim=32, hidden_act="gelu")
#: ControlNet config keys copied from the UNet, as the official ControlNetModel.from_unet does
FROM_UNET = ("in_channels", "down_block_types", "block_out_channels", "layers_per_block", "cross_attention_dim",
             "attention_head_dim", "use_linear_projection", "norm_num_groups")

MERGES = ["c l", "cl e", "cle a", "clea n</w>"]


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins of byte-level BPE (GPT-2 / CLIP), in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def write_tokenizer(folder: Path) -> int:
    """A CLIP BPE tokenizer whose vocabulary is every byte (alone and word-final) plus a few merges."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for c in _byte_chars():
            vocab[c + suffix] = len(vocab)
    for m in MERGES:
        vocab[m.replace(" ", "")] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n", encoding="utf-8")
    specials = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer",
                                                              "model_max_length": 77, **specials}))
    return len(vocab)


def build_tiny_ccsr(root: str | Path, seed: int = 0, unet: dict | None = None, vae: dict | None = None,
                    ) -> tuple[Path, Path]:
    """Write the tiny folders under ``root``; return ``(sd_path, ccsr_path)``.

    The global RNG is forked, so calling this does not change the caller's random state.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from methods.ccsr_controlnet import CCSRControlNetModel

    root = Path(root)
    sd, cc = root / "stable-diffusion-2-1-base", root / "ccsr-v2"
    unet_cfg = dict(TINY_UNET, **(unet or {}))
    vae_cfg = dict(TINY_VAE, **(vae or {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        (sd / "scheduler").mkdir(parents=True, exist_ok=True)
        (sd / "scheduler" / "scheduler_config.json").write_text(json.dumps(SD21_SCHEDULER, indent=2))
        vocab_size = write_tokenizer(sd / "tokenizer")
        text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, bos_token_id=vocab_size - 2,
                                            eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1, **TINY_TEXT))
        text.save_pretrained(sd / "text_encoder")
        UNet2DConditionModel(**unet_cfg).save_pretrained(sd / "unet")
        controlnet = CCSRControlNetModel(**{k: unet_cfg[k] for k in FROM_UNET}, use_vae_encode_condition=True)
        # ControlNet output convolutions start at zero; random ones make the condition matter here
        for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            for p in module.parameters():
                p.data.normal_(0.0, 0.05)
        controlnet.save_pretrained(cc / "controlnet")
        AutoencoderKL(**vae_cfg).save_pretrained(cc / "vae")
    return sd, cc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", help="folder to write stable-diffusion-2-1-base/ and ccsr-v2/ into")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from benchmark import logs

    # srbench's quiet defaults (benchmark/logs.py): no third-party warnings about optional kernels, no bars
    logs.configure(verbose=False)
    logs.quiet_progress_bars()
    sd, cc = build_tiny_ccsr(args.root, args.seed)
    print(f"method.sd_path={sd} method.ccsr_path={cc}")


if __name__ == "__main__":
    main()
