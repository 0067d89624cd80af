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


# ----------------------------------------------------------------------------- reliability (issue 7)

def pause_here(reason: str) -> None:
    """Tell the test (through the file ``$SRB_PAUSE_MARKER``) that we reached a kill point, then wait.

    The test SIGKILLs the process while it waits; if it never does, exit after two minutes so
    that a failed test leaves no process behind.
    """
    import os
    import time
    from pathlib import Path

    Path(os.environ["SRB_PAUSE_MARKER"]).write_text(f"{os.getpid()} {reason}\n")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.05)
    os._exit(3)


class Pausing(SRMethod):
    """noise_control's computation that stops at its ``$SRB_PAUSE_AT``-th ``upscale`` call (1-based).

    The pause point is read from the environment, not the config, so a paused run and an
    uninterrupted one have the same config (and so the same results.json).
    """

    def __init__(self, sigma: float = 0.05, scale: int = 4, name: str = "pausing") -> None:
        from methods.noise_control import NoiseControl

        self.inner = NoiseControl(sigma, scale, name)
        self.scale, self.name, self.calls = scale, name, 0

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        import os

        self.calls += 1
        if os.environ.get("SRB_PAUSE_AT") and self.calls == int(os.environ["SRB_PAUSE_AT"]):
            pause_here(f"upscale call {self.calls}")
        return self.inner.upscale(lr, generators)


class Flaky(SRMethod):
    """Declared deterministic, but adds noise from the global RNG: the determinism check must catch it."""

    stochastic = False

    def __init__(self, scale: int = 4, name: str = "flaky", amount: float = 0.05) -> None:
        self.scale, self.name, self.amount = scale, name, amount

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        out = bicubic_upscale(lr, self.scale)
        return (out + self.amount * torch.rand(out.shape)).clamp_(0, 1)  # global RNG on purpose


class Sized(SRMethod):
    """Bicubic with a minimum LR size."""

    stochastic = False

    def __init__(self, min_size: int, scale: int = 4, name: str = "sized") -> None:
        self.min_size, self.scale, self.name = min_size, scale, name

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        return bicubic_upscale(lr, self.scale)


class Square(SRMethod):
    """Stochastic with outputs known exactly: black, plus a white ``side`` x ``side`` square at
    (``at``, ``at``) for odd seeds. Over seeds 0 and 1 every pixel of the square has std 0.5 and
    every other pixel 0, so an image's L-STD is ``0.5 * side**2 / (cropped area)``."""

    def __init__(self, side: int = 8, at: int = 4, scale: int = 4, name: str = "square") -> None:
        self.side, self.at, self.scale, self.name = side, at, scale, name

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        b, _, h, w = lr.shape
        out = torch.zeros(b, 3, h * self.scale, w * self.scale)
        for i, g in enumerate(generators):
            if g.initial_seed() % 2 == 1:
                out[i, :, self.at:self.at + self.side, self.at:self.at + self.side] = 1.0
        return out


class FlatOnSeed(SRMethod):
    """noise_control, but the run with seed ``bad_seed`` of the image ``image`` is all black (as a
    diffusion model after an fp16 overflow): NIQE is undefined on it (issue 12)."""

    def __init__(self, image: str, bad_seed: int = 1, sigma: float = 0.05, scale: int = 4,
                 name: str = "flat_on_seed") -> None:
        from methods.noise_control import NoiseControl

        self.inner = NoiseControl(sigma, scale, name)
        self.image, self.bad_seed, self.scale, self.name = image, bad_seed, scale, name
        self.calls = 0

    def upscale(self, lr: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        out = self.inner.upscale(lr, generators)
        # images come in data-set order, one upscale call per image (batch_size >= runs)
        self.calls += 1
        if self.calls == int(self.image):
            for i, g in enumerate(generators):
                if g.initial_seed() == self.bad_seed:
                    out[i] = 0
        return out
