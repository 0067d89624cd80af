"""DASR (Liang, Zeng and Zhang, "Efficient and Degradation-Adaptive Network for Real-World
Image Super-Resolution", ECCV 2022; github.com/csjliang/DASR at commit c667910).

spandrel 0.4 has no DASR architecture, so this module re-implements the two networks of the
official test configuration (``options/test/DASR/test_DASR.yml``) in plain PyTorch, with the
same module and parameter names, so the released ``net_g.pth`` and ``net_p.pth`` load with
``strict=True``:

* ``Degradation_Predictor`` (``net_p``): six 5x5 convolutions (the fourth with stride 2),
  LeakyReLU(0.2), global average pooling and two linear layers that map the degradation
  parameters to ``K`` mixing weights (no softmax);
* ``MSRResNetDynamic`` (``net_g``): an MSRResNet whose every convolution holds ``K`` kernels
  mixed per image by those weights, plus a bilinear skip connection.

The hyper-parameters (features, blocks, K, scale, number of degradation parameters) are read
from the tensor shapes of the two files. The predictor sees the whole LR image (it pools
globally), so tiled inference reuses its weights for every tile of the generator.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.sources import weight_files as weight_files_from_sources
from benchmark.weights import WeightFile
from methods.base import SRMethod
from methods.gan import _missing, _source_url, checkpoint_path, count_parameters
from methods.tiling import tiled_upscale

RELEASE_URL = "https://github.com/csjliang/DASR#testing (Google Drive links to net_g.pth and net_p.pth)"


class DynamicConv2d(nn.Module):
    """``K`` convolution kernels mixed per image: ``sum_k mix[b, k] * W_k`` applied to image ``b``."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, num_models: int = 5) -> None:
        super().__init__()
        self.in_ch, self.out_ch, self.kernel, self.num_models = in_ch, out_ch, kernel, num_models
        self.weight = nn.Parameter(torch.zeros(num_models, out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(num_models, out_ch))

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        weight = (mix @ self.weight.view(self.num_models, -1)).view(b * self.out_ch, self.in_ch, self.kernel,
                                                                       self.kernel)
        bias = (mix @ self.bias).view(-1)
        # one group per image: each image is convolved with its own mixed kernel
        out = F.conv2d(x.reshape(1, b * self.in_ch, h, w), weight, bias, padding=self.kernel // 2, groups=b)
        return out.view(b, self.out_ch, out.shape[-2], out.shape[-1])


class DynamicResBlock(nn.Module):
    def __init__(self, num_feat: int, num_models: int) -> None:
        super().__init__()
        self.conv1 = DynamicConv2d(num_feat, num_feat, 3, num_models)
        self.conv2 = DynamicConv2d(num_feat, num_feat, 3, num_models)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x, mix)), mix)


class MSRResNetDynamic(nn.Module):
    """DASR's generator (``network_g`` of the official test options)."""

    def __init__(self, num_feat: int = 64, num_block: int = 16, num_models: int = 5, upscale: int = 4) -> None:
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f"DASR supports scales 2, 3 and 4, got {upscale}")
        self.upscale, self.num_models = upscale, num_models
        self.conv_first = DynamicConv2d(3, num_feat, 3, num_models)
        self.body = nn.ModuleList(DynamicResBlock(num_feat, num_models) for _ in range(num_block))
        if upscale == 4:
            self.upconv1 = DynamicConv2d(num_feat, num_feat * 4, 3, num_models)
            self.upconv2 = DynamicConv2d(num_feat, num_feat * 4, 3, num_models)
        else:
            self.upconv1 = DynamicConv2d(num_feat, num_feat * upscale * upscale, 3, num_models)
        self.conv_hr = DynamicConv2d(num_feat, num_feat, 3, num_models)
        self.conv_last = DynamicConv2d(num_feat, 3, 3, num_models)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        act = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
        feat = act(self.conv_first(x, mix))
        for block in self.body:
            feat = block(feat, mix)
        if self.upscale == 4:
            feat = act(F.pixel_shuffle(self.upconv1(feat, mix), 2))
            feat = act(F.pixel_shuffle(self.upconv2(feat, mix), 2))
        else:
            feat = act(F.pixel_shuffle(self.upconv1(feat, mix), self.upscale))
        out = self.conv_last(act(self.conv_hr(feat, mix)), mix)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)


class DegradationPredictor(nn.Module):
    """DASR's degradation predictor (``network_p``): LR image -> ``K`` mixing weights."""

    def __init__(self, nf: int = 64, num_params: int = 33, num_networks: int = 5) -> None:
        super().__init__()
        chans = [3, nf, nf, nf, nf, nf, num_params]
        layers: list[nn.Module] = []
        for i in range(6):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 5, stride=2 if i == 3 else 1, padding=2),
                       nn.LeakyReLU(0.2)]
        self.ConvNet = nn.Sequential(*layers)
        self.MappingNet = nn.Sequential(nn.Linear(num_params, 15), nn.Linear(15, num_networks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.MappingNet(self.ConvNet(x).mean(dim=(2, 3)))


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A BasicSR checkpoint's state dict: raw, or under ``params_ema``/``params``; ``module.`` stripped."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read DASR checkpoint {path}: {err}") from err
    for key in ("params_ema", "params"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path} is not a state dict of tensors (a BasicSR .pth was expected)")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def build_generator(sd: dict[str, torch.Tensor], path: Path) -> MSRResNetDynamic:
    if "conv_first.weight" not in sd or sd["conv_first.weight"].dim() != 5:
        raise ValueError(f"{path} is not a DASR generator (net_g.pth): no 5-D conv_first.weight; "
                         f"pass net_g.pth as method.model_path and net_p.pth as method.predictor_path")
    k, nf = sd["conv_first.weight"].shape[:2]
    blocks = 1 + max((int(m.group(1)) for key in sd if (m := re.match(r"body\.(\d+)\.", key))), default=-1)
    if "upconv2.weight" in sd:
        scale = 4
    else:
        ratio = sd["upconv1.weight"].shape[1] // nf
        scale = {4: 2, 9: 3}.get(ratio, 0)
    net = MSRResNetDynamic(nf, blocks, k, scale)
    net.load_state_dict(sd, strict=True)
    return net


def build_predictor(sd: dict[str, torch.Tensor], path: Path) -> DegradationPredictor:
    if "ConvNet.0.weight" not in sd or "MappingNet.1.weight" not in sd:
        raise ValueError(f"{path} is not a DASR degradation predictor (net_p.pth): no ConvNet/MappingNet keys")
    net = DegradationPredictor(sd["ConvNet.0.weight"].shape[0], sd["ConvNet.10.weight"].shape[0],
                               sd["MappingNet.1.weight"].shape[0])
    net.load_state_dict(sd, strict=True)
    return net


class DASR(SRMethod):
    """DASR from its two released files (``net_g.pth``, ``net_p.pth``). Deterministic: runs once."""

    stochastic = False

    def __init__(self, model_path: str, predictor_path: str, name: str = "dasr", expected_scale: int | None = None,
                 tile: int = 512, tile_overlap: int = 32, sources: Sequence[Mapping[str, Any]] | None = None) -> None:
        self.name = name
        g_path = checkpoint_path(model_path, name, _source_url(sources, name, "model_path") or RELEASE_URL)
        p_path = checkpoint_path(predictor_path, name, _source_url(sources, name, "predictor_path") or RELEASE_URL)
        self.generator = build_generator(_state_dict(g_path), g_path).eval()
        self.predictor = build_predictor(_state_dict(p_path), p_path).eval()
        if self.generator.num_models != self.predictor.MappingNet[1].out_features:
            raise ValueError(f"DASR files disagree: {g_path} mixes {self.generator.num_models} kernels but "
                             f"{p_path} predicts {self.predictor.MappingNet[1].out_features} weights")
        if expected_scale is not None and int(expected_scale) != self.generator.upscale:
            raise ValueError(f"DASR checkpoint {g_path} upscales x{self.generator.upscale} but the data set is "
                             f"x{expected_scale}: set dataset.scale={self.generator.upscale} or use a matching checkpoint")
        self.tile, self.tile_overlap = int(tile), int(tile_overlap)
        self.min_size = 2

    @property
    def scale(self) -> int:  # type: ignore[override]
        return self.generator.upscale

    @classmethod
    def weight_files(cls, **config: Any) -> list[WeightFile]:
        if config.get("sources"):
            return weight_files_from_sources(config)
        name = config.get("name", "dasr")
        out = []
        for key, what in (("model_path", "net_g.pth"), ("predictor_path", "net_p.pth")):
            p = config.get(key)
            out.append(WeightFile(name=f"{name} {what}", url=RELEASE_URL,
                                  path=Path(f"<method.{key}>" if _missing(p) else str(p)).expanduser(),
                                  needed_by=f"method {name}"))
        return out

    def load(self, device: torch.device) -> None:
        self.generator.to(device)
        self.predictor.to(device)

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        outs = []
        for i in range(lr.shape[0]):
            x = lr[i:i + 1]
            mix = self.predictor(x)
            outs.append(tiled_upscale(lambda t: self.generator(t, mix), x, self.scale, self.tile, self.tile_overlap))
        return torch.cat(outs).clamp_(0.0, 1.0)

    def num_parameters(self) -> int:
        return count_parameters(self.generator) + count_parameters(self.predictor)
