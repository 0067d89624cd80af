"""Tiny random models saved in the on-disk formats of the released baselines (no download)."""

from __future__ import annotations

import re
from pathlib import Path

import torch


def rrdb_new_arch_keys(old: dict[str, torch.Tensor], num_blocks: int) -> dict[str, torch.Tensor]:
    """spandrel's old-arch RRDB keys (``model.N...``) -> the keys of the released Real-ESRGAN/BSRGAN files."""
    ups = max(int(m.group(1)) for k in old if (m := re.match(r"model\.(\d+)\.", k))) // 3 - 1  # log2(scale)
    fixed = {"model.0": "conv_first", f"model.1.sub.{num_blocks}": "conv_body",
             f"model.{3 * ups + 2}": "conv_hr", f"model.{3 * ups + 4}": "conv_last"}
    fixed.update({f"model.{3 * i}": f"conv_up{i}" for i in range(1, ups + 1)})
    new = {}
    for k, v in old.items():
        m = re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$", k)
        if m:
            i, j, c, t = m.groups()
            new[f"body.{i}.rdb{j}.conv{c}.{t}"] = v
            continue
        prefix, t = k.rsplit(".", 1)
        if prefix not in fixed:
            raise KeyError(f"unexpected RRDB key {k}")
        new[f"{fixed[prefix]}.{t}"] = v
    return new


def make_rrdb(path: Path, scale: int = 4, seed: int = 0, num_blocks: int = 1) -> torch.nn.Module:
    """A random RRDB (ESRGAN family) saved as ``{'params_ema': state_dict}`` in the Real-ESRGAN key layout."""
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    net = ESRGAN(num_filters=8, num_blocks=num_blocks, scale=scale).eval()
    with torch.no_grad():  # small weights keep the random output inside [0, 1] most of the time
        for p in net.parameters():
            p.mul_(0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": rrdb_new_arch_keys(net.state_dict(), num_blocks)}, path)
    return net


def make_swinir(path: Path, seed: int = 0) -> torch.nn.Module:
    """A random real-world-style SwinIR x4 (nearest+conv upsampler), saved as ``{'params_ema': ...}``."""
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(seed)
    net = SwinIR(img_size=32, embed_dim=12, depths=[1], num_heads=[2], window_size=8, mlp_ratio=2.0,
                 upsampler="nearest+conv", upscale=4, resi_connection="1conv").eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": net.state_dict()}, path)
    return net


def make_dasr(folder: Path, seed: int = 0, num_feat: int = 8, num_block: int = 2) -> tuple[Path, Path]:
    """Random DASR ``net_g.pth`` (``{'params': ...}``) and ``net_p.pth`` (raw state dict), as BasicSR saves them."""
    from methods.dasr import DegradationPredictor, MSRResNetDynamic

    torch.manual_seed(seed)
    g = MSRResNetDynamic(num_feat=num_feat, num_block=num_block, num_models=5, upscale=4)
    p = DegradationPredictor(nf=num_feat, num_params=33, num_networks=5)
    with torch.no_grad():
        for prm in g.parameters():
            prm.normal_(0, 0.02)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"params": g.state_dict()}, folder / "net_g.pth")
    torch.save(p.state_dict(), folder / "net_p.pth")
    return folder / "net_g.pth", folder / "net_p.pth"


def make_ldm_sr(folder: Path, seed: int = 0) -> Path:
    """A tiny random ``LDMSuperResolutionPipeline`` (x4 VQ autoencoder) saved with save_pretrained."""
    from diffusers import DDIMScheduler, LDMSuperResolutionPipeline, UNet2DModel, VQModel

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=16, in_channels=6, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=4, attention_head_dim=4)
    vq = VQModel(in_channels=3, out_channels=3, latent_channels=3, block_out_channels=(8, 8, 8), layers_per_block=1,
                 down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                 norm_num_groups=4, num_vq_embeddings=16, sample_size=16)
    pipe = LDMSuperResolutionPipeline(vqvae=vq, unet=unet, scheduler=DDIMScheduler(num_train_timesteps=100))
    pipe.save_pretrained(folder)
    return folder


def write_tiny_clip_tokenizer(folder: Path) -> Path:
    """vocab.json + merges.txt of a minimal CLIP BPE tokenizer (letters and end-of-word letters)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in "abcdefghijklmnopqrstuvwxyz":
            vocab[c + suffix] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder


def make_sd_upscaler(folder: Path, seed: int = 0) -> Path:
    """A tiny random ``StableDiffusionUpscalePipeline`` (x4 VAE, CLIP text encoder) saved with save_pretrained."""
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=16, in_channels=7, out_channels=4, block_out_channels=(8, 16),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=4, norm_num_groups=4, num_class_embeds=400)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8),
                        layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=4, scaling_factor=0.08333)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=16, bos_token_id=0,
                                        eos_token_id=1, pad_token_id=1))
    tok_dir = write_tiny_clip_tokenizer(folder.parent / (folder.name + "_tok"))
    tok = CLIPTokenizer(vocab_file=str(tok_dir / "vocab.json"), merges_file=str(tok_dir / "merges.txt"),
                        model_max_length=16)
    pipe = StableDiffusionUpscalePipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                          low_res_scheduler=DDPMScheduler(num_train_timesteps=400),
                                          scheduler=DDIMScheduler(num_train_timesteps=400,
                                                                  prediction_type="v_prediction"),
                                          max_noise_level=350)
    pipe.save_pretrained(folder)
    return folder
