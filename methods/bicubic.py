"""Bicubic interpolation: the deterministic reference."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from methods.base import SRMethod


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """PyTorch bicubic (a = -0.75, align_corners=False), clamped to [0, 1]."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp_(0.0, 1.0)


class Bicubic(SRMethod):
    """Bicubic upsampling. Deterministic: runs once."""

    stochastic = False

    def __init__(self, scale: int = 4, name: str = "bicubic") -> None:
        self.scale = int(scale)
        self.name = name

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return bicubic_upscale(lr, self.scale)
