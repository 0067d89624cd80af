"""Methods used by tests through ``method._target_=srb_helpers.<Class>``."""

from __future__ import annotations

from typing import Sequence

import torch

from methods.base import SRMethod
from methods.bicubic import bicubic_upscale


class Broken(SRMethod):
    """Returns a chosen kind of wrong output for the run whose seed is ``bad_seed``."""

    def __init__(self, fault: str, bad_seed: int = 1, scale: int = 4, name: str = "broken") -> None:
        self.fault, self.bad_seed, self.scale, self.name = fault, bad_seed, scale, name

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        out = bicubic_upscale(lr, self.scale)
        seeds = [g.initial_seed() for g in generators]
        if self.bad_seed not in seeds:
            return out
        i = seeds.index(self.bad_seed)
        if self.fault == "has_nan":
            out[i, 0, 0, 0] = float("nan")
        elif self.fault == "has_inf":
            out[i, 1, 2, 2] = float("inf")
        elif self.fault == "range":
            out[i] = out[i] * 2 + 0.5
        elif self.fault == "shape":
            return out[:, :, :-1]
        elif self.fault == "channels":
            return out[:, :1]
        elif self.fault == "dtype":
            return (out * 255).to(torch.uint8)
        return out
