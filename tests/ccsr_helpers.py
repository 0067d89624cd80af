"""Helpers shared by the CCSR-v2 tests: a loaded adapter on the tiny random models of
benchmarks/make_tiny_ccsr.py, an 8-bit LR image and seeded generators (CPU)."""

from __future__ import annotations

import torch

from methods.ccsr import CCSR

SMALL = dict(process_size=64)  # 16x16 LR -> 64x64 SR, 8x8 latent: the tiny models run in milliseconds


def make(tiny, **kw) -> CCSR:
    """A CCSR adapter on ``tiny`` = (sd_path, ccsr_path), loaded on the CPU; ``kw`` override :data:`SMALL`."""
    m = CCSR(str(tiny[0]), str(tiny[1]), **{**SMALL, **kw})
    m.load(torch.device("cpu"))
    return m


def lr_image(seed: int = 0, size: int = 16) -> torch.Tensor:
    """A (1, 3, size, size) LR image in [0, 1] on the 8-bit grid, as decoded from a PNG."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, size, size, generator=g).mul(255).round().div(255)


def gens(*seeds: int) -> list[torch.Generator]:
    """One CPU generator per seed."""
    return [torch.Generator().manual_seed(s) for s in seeds]
