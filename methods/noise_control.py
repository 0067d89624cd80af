"""A stochastic control for the stability metrics. It is NOT a super-resolution method."""

from __future__ import annotations

from typing import Sequence

import torch

from methods.base import SRMethod
from methods.bicubic import bicubic_upscale


class NoiseControl(SRMethod):
    """Control, not an SR method: bicubic upsampling plus i.i.d. Gaussian noise of std ``sigma``.

    The noise of run ``r`` is drawn from that run's generator only, so the output of one
    (image, seed) pair does not depend on batching. Where the bicubic image is away from 0
    and 1 (no clamping), each pixel's values over N runs are ``b + sigma * z`` quantised to
    8 bits, so the expected L-STD is known in closed form: ``sigma * sqrt((N-1)/N) * c4(N)``
    (population std of N normal draws; quantisation adds about ``1/(12*255^2)`` to the
    variance). That makes it the harness's calibration source for G-STD and L-STD.
    """

    stochastic = True

    def __init__(self, sigma: float = 0.05, scale: int = 4, name: str = "noise_control") -> None:
        if not sigma >= 0:
            raise ValueError(f"method.sigma must be >= 0, got {sigma!r}")
        self.sigma = float(sigma)
        self.scale = int(scale)
        self.name = name

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        if len(generators) != lr.shape[0]:
            raise ValueError(f"noise_control needs one generator per image, got {len(generators)} for {lr.shape[0]}")
        base = bicubic_upscale(lr, self.scale)
        noise = torch.stack([
            torch.randn(base.shape[1:], generator=g, device=g.device, dtype=torch.float32)
            for g in generators
        ]).to(base.device, base.dtype)
        return (base + self.sigma * noise).clamp_(0.0, 1.0)
