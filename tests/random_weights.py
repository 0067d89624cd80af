"""Random-weight files in the real on-disk formats, under a temporary TORCH_HOME.

The metric wrappers then run their real loading code (pyiqa, torchvision, OpenAI CLIP) on
these files. Architectures come from the libraries themselves, built on the ``meta`` device
(shapes only) and filled with random tensors from an explicit generator; weights that the
metrics never use (the ImageNet classifiers of AlexNet/VGG16, Inception's 1008-way fc) are
stored as stride-0 views of one number so the files stay small.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

SEED = 1234


def _random_state_dict(module: torch.nn.Module, gen: torch.Generator, unused: tuple[str, ...] = (),
                       dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Keys and shapes of ``module`` (may live on ``meta``), random values with sane scales."""
    out: dict[str, torch.Tensor] = {}
    for key, t in module.state_dict().items():
        shape = tuple(t.shape)
        if key.startswith(unused):
            out[key] = torch.zeros(1, dtype=dtype).expand(shape) if shape else torch.zeros((), dtype=dtype)
        elif key.endswith("num_batches_tracked"):
            out[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var"):
            out[key] = (1 + 0.1 * torch.rand(shape, generator=gen)).to(dtype)
        elif key.endswith("running_mean") or key.endswith("bias") or len(shape) <= 1:
            base = 1.0 if key.endswith(("weight", "scale")) and len(shape) == 1 else 0.0
            out[key] = (base + 0.05 * torch.randn(shape, generator=gen)).to(dtype)
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            out[key] = (torch.randn(shape, generator=gen) * math.sqrt(2.0 / max(fan_in, 1))).to(dtype)
    return out


def _meta(builder, *args, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return builder(*args, **kwargs)


def tiny_clip(gen: torch.Generator) -> torch.nn.Module:
    """A small CLIP with the ResNet image tower of RN50 (ModifiedResNet + attention pool).

    pyiqa's loader infers every size from the state dict, so depth and width can be tiny;
    vocabulary and context length must stay CLIP's (49408, 77) for the tokenizer.
    """
    from pyiqa.archs.clip_model import CLIP

    model = CLIP(embed_dim=32, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=8,
                 vision_patch_size=None, context_length=77, vocab_size=49408, transformer_width=64,
                 transformer_heads=1, transformer_layers=1)
    model.load_state_dict(_random_state_dict(model, gen))
    return model.eval()


def write_clip_jit(path: Path, gen: torch.Generator) -> None:
    """Save a TorchScript archive, the format of OpenAI's RN50.pt (pyiqa reads its state_dict)."""
    model = tiny_clip(gen)
    img = torch.rand(1, 3, 64, 64, generator=gen)
    scripted = torch.jit.trace_module(model, {"encode_image": (img, torch.tensor(False))}, check_trace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted, str(path))


def write_all(torch_home: Path) -> dict[str, Path]:
    """Write every file of the paper's deep metrics into ``torch_home``; return their paths."""
    import torchvision.models as tvm
    from pyiqa.archs.musiq_arch import MUSIQ

    from benchmark.metrics import METRICS

    hub = torch_home / "hub"
    gen = torch.Generator().manual_seed(SEED)
    files: dict[str, Path] = {}

    def save(sd: dict, rel: str) -> None:
        p = hub / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save(sd, p)
        files[rel] = p

    save(_random_state_dict(_meta(tvm.alexnet), gen, unused=("classifier.",)), "checkpoints/alexnet-owt-7be5be79.pth")
    save(_random_state_dict(_meta(tvm.vgg16, init_weights=False), gen, unused=("classifier.",), dtype=torch.float16),
         "checkpoints/vgg16-397923af.pth")
    # LPIPS v0.1 linear heads: one 1x1 conv per AlexNet stage, non-negative as the trained ones
    save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for k, c in
          enumerate([64, 192, 384, 256, 256])}, "pyiqa/LPIPS_v0.1_alex-df73285e.pth")
    save({"alpha": 0.1 + 0.01 * torch.randn(1, 1475, 1, 1, generator=gen),
          "beta": 0.1 + 0.01 * torch.randn(1, 1475, 1, 1, generator=gen)}, "pyiqa/DISTS_weights-f5e65c96.pth")
    save(_random_state_dict(_meta(MUSIQ, pretrained=False), gen, dtype=torch.float16),
         "pyiqa/musiq_koniq_ckpt-e95806b9.pth")
    inception = _meta(tvm.inception_v3, weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    save(_random_state_dict(inception, gen, unused=("fc.",), dtype=torch.float16),
         "pyiqa/pt_inception-2015-12-05-6726825d.pth")
    write_clip_jit(hub / "clip" / "RN50.pt", gen)
    files["clip/RN50.pt"] = hub / "clip" / "RN50.pt"

    # the file names above must be the ones the metric specs ask for
    import os

    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(torch_home)
    try:
        wanted = {str(w.path) for m in ("lpips", "dists", "musiq", "clipiqa", "fid")
                  for w in METRICS.get(m).weights({})}
    finally:
        if old is None:
            del os.environ["TORCH_HOME"]
        else:
            os.environ["TORCH_HOME"] = old
    written = {str(p) for p in files.values()}
    if wanted != written:
        raise RuntimeError(f"random weights do not match the specs: wanted {sorted(wanted - written)}, "
                           f"extra {sorted(written - wanted)}")
    return files
