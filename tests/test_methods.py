"""Method contract: generators only, batching invariance, the noise control's known L-STD."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark import stability
from benchmark.images import to_uint8
from methods import METHODS
from methods.bicubic import Bicubic
from methods.noise_control import NoiseControl


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def lr_batch(n: int = 1, size: int = 12) -> torch.Tensor:
    torch.manual_seed(123)
    return torch.rand(1, 3, size, size).expand(n, -1, -1, -1).contiguous()


def test_registry_lists_names_on_unknown():
    assert {"bicubic", "noise_control", "precomputed"} <= set(METHODS.names())
    with pytest.raises(ValueError, match="available methods: .*bicubic.*noise_control"):
        METHODS.get("nope")


def test_bicubic_matches_torch_and_is_deterministic():
    x = lr_batch(2)
    out = Bicubic(scale=4).upscale(x, gens([0, 1]))
    ref = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    assert torch.equal(out, ref) and out.shape == (2, 3, 48, 48)
    assert torch.equal(out[0], out[1])


def test_noise_control_batch_equals_one_by_one_and_seeds():
    m = NoiseControl(sigma=0.1)
    seeds = [5, 6, 7, 8]
    batch = m.upscale(lr_batch(4), gens(seeds))
    alone = torch.cat([m.upscale(lr_batch(1), gens([s])) for s in seeds])
    assert torch.equal(batch, alone)
    again = m.upscale(lr_batch(4), gens(seeds))
    assert torch.equal(batch, again)  # same seed reproduces
    assert not torch.equal(batch[0], batch[1])  # different seeds differ
    # the global RNG is not touched
    state = torch.get_rng_state()
    m.upscale(lr_batch(2), gens([1, 2]))
    assert torch.equal(state, torch.get_rng_state())


def c4(n: int) -> float:
    return math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


def test_noise_control_lstd_matches_closed_form():
    """On a mid-grey image (no clamping) the expected L-STD is sigma*sqrt((N-1)/N)*c4(N)."""
    n, sigma = 10, 0.1
    m = NoiseControl(sigma=sigma)
    lr = torch.full((n, 3, 32, 32), 0.5)
    out = m.upscale(lr, gens(range(n)))
    arrays = [to_uint8(o) for o in out]
    # quantisation to 8 bits adds ~1/(12*255^2) to the variance: negligible next to sigma^2
    sigma_q = math.sqrt(sigma**2 + 1 / (12 * 255**2))
    expected = sigma_q * math.sqrt((n - 1) / n) * c4(n)
    got = stability.lstd_image(arrays, crop_border=4)
    # 112*112*3 pixels: the standard error of the mean std is far below 0.5 %
    assert got == pytest.approx(expected, rel=0.005)
    assert got != pytest.approx(sigma_q * c4(n), rel=0.005)  # what ddof=1 would give


def test_noise_control_rejects_negative_sigma():
    with pytest.raises(ValueError, match="sigma"):
        NoiseControl(sigma=-1)
