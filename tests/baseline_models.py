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
