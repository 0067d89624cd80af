"""srbench's separable SSIM and NIQE give pyiqa's numbers (to 1e-6).

pyiqa is the reference: every value here is computed by pyiqa itself on the same input.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmark.images import read_image, to_tensor
from benchmark.metrics import METRICS
from benchmark.metrics.fast_exact import FastNIQE, FastSSIM, gaussian_1d_for, separable_terms, separable_valid
from conftest import CALIBRA_IDS, NIQE_NPZ, REALSR, calibra, requires

IDS = CALIBRA_IDS
TOL = 1e-6



def load(path: Path) -> torch.Tensor:
    return to_tensor(read_image(path)).unsqueeze(0)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """What the harness feeds metrics: 8-bit values scaled to [0, 1]."""
    return (x.clamp(0, 1) * 255).round() / 255


def pyiqa_ssim(sr: torch.Tensor, hr: torch.Tensor, color_space: str = "ycbcr") -> torch.Tensor:
    import pyiqa

    m = pyiqa.create_metric("ssim", test_y_channel=True, color_space=color_space, device="cpu")
    return m(sr, hr.expand(sr.shape[0], -1, -1, -1)).to(torch.float64).reshape(-1)


def pyiqa_niqe_metric():
    import pyiqa

    from benchmark.metrics.pyiqa_metrics import _niqe_mat

    return pyiqa.create_metric("niqe", pretrained_model_path=str(_niqe_mat(NIQE_NPZ)), device="cpu")


def test_separable_pass_equals_2d_convolution():
    from pyiqa.matlab_utils import fspecial

    w = fspecial(11, 1.5, 1).to(torch.float64)
    g = gaussian_1d_for(w)
    assert float(torch.outer(g, g).sum()) == pytest.approx(float(w.sum()), abs=1e-15)  # the scaled sum
    assert torch.allclose(torch.outer(g, g), w[0, 0], atol=1e-9, rtol=0)  # float32 rounding only
    x = torch.rand(2, 1, 40, 33, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 255
    ref = F.conv2d(x, torch.outer(g, g)[None, None])
    assert separable_valid(x, g).shape == ref.shape == (2, 1, 30, 23)
    assert torch.allclose(separable_valid(x, g), ref, atol=1e-10, rtol=0)


def test_separable_pass_with_two_kernels_filters_h_then_w():
    """``separable_valid(x, a, b)`` = 'valid' correlation with ``outer(a, b)``: ``a`` along H."""
    gen = torch.Generator().manual_seed(1)
    a, b = torch.rand(5, dtype=torch.float64, generator=gen), torch.rand(5, dtype=torch.float64, generator=gen)
    x = torch.rand(2, 1, 17, 12, dtype=torch.float64, generator=gen)
    ref = F.conv2d(x, torch.outer(a, b)[None, None])  # conv2d correlates: weight[i, j] meets x[h + i, w + j]
    assert separable_valid(x, a, b).shape == ref.shape == (2, 1, 13, 8)
    assert torch.allclose(separable_valid(x, a, b), ref, atol=1e-12, rtol=0)
    assert not torch.allclose(separable_valid(x, b, a), ref, atol=1e-3, rtol=0)  # the axes matter
    with pytest.raises(ValueError, match="different lengths"):
        separable_valid(x, a, b[:3])


def test_niqe_window_remainder_is_four_separable_terms_that_filter_like_its_2d_convolution():
    """pyiqa's float32 7x7 NIQE window minus ``outer(g, g)`` is symmetric under both flips, so of
    rank 4; its separable terms rebuild it to float64 rounding, and filtering with them in float32
    equals the float64 2-D convolution with the remainder (what pyiqa's window adds to ``outer(g, g)``)."""
    from pyiqa.matlab_utils import fspecial

    w = fspecial(7, 7.0 / 6, 1).to(torch.float64)[0, 0]
    g = gaussian_1d_for(w)
    rem = w - torch.outer(g, g)
    terms = separable_terms(rem)
    assert len(terms) == 4
    rebuilt = sum(torch.outer(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)) for a, b in terms)
    assert torch.allclose(rebuilt, rem, atol=1e-19, rtol=0)  # entries ~1e-9: to 1e-10 of their size
    x = torch.rand(2, 1, 40, 33, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 255
    x = x * x  # the second-moment plane, the larger of the two NIQE filters
    ref = F.conv2d(x, rem[None, None])
    ours = sum(separable_valid(x.to(torch.float32), a, b).to(torch.float64) for a, b in terms)
    assert float(ref.abs().max()) > 1e-5  # the remainder is not negligible on this plane
    assert torch.allclose(ours, ref, atol=1e-9, rtol=0)
    assert separable_terms(torch.zeros(3, 3)) == []


@pytest.mark.parametrize("color_space", ["ycbcr", "yiq"])
@pytest.mark.parametrize("i", IDS)
def test_ssim_equals_pyiqa_on_calibration_pairs(i, color_space):
    x, y = load(calibra() / "dist_dir" / f"{i}.bmp"), load(calibra() / "ref_dir" / f"{i}.bmp")
    batch = torch.cat([x, x.flip(-1), y])  # distorted, mirrored, identical (SSIM 1)
    ours = FastSSIM(color_space)(batch, y)
    assert torch.allclose(ours, pyiqa_ssim(batch, y, color_space), atol=TOL, rtol=0)
    assert float(ours[2]) == pytest.approx(1.0, abs=1e-12)


def _edge_cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    checker = ((torch.arange(24)[:, None] + torch.arange(24)[None, :]) % 2).float().expand(1, 3, 24, 24)
    return [
        ("random 37x53", quantize(torch.rand(3, 3, 37, 53, generator=g)), quantize(torch.rand(1, 3, 37, 53, generator=g))),
        ("smallest 11x11", quantize(torch.rand(2, 3, 11, 11, generator=g)), quantize(torch.rand(1, 3, 11, 11, generator=g))),
        ("white vs white", torch.ones(2, 3, 16, 16), torch.ones(1, 3, 16, 16)),
        ("black vs white", torch.zeros(2, 3, 16, 16), torch.ones(1, 3, 16, 16)),
        ("white vs black", torch.ones(2, 3, 16, 16), torch.zeros(1, 3, 16, 16)),
        ("checker vs inverse", checker.clone(), 1 - checker),
        # dark means: the luminance term's constant C1 = (0.01 * 255)^2 moves SSIM by ~1e-5 here
        ("dark grey 20/255 vs black", quantize(torch.full((2, 3, 16, 16), 20 / 255)), torch.zeros(1, 3, 16, 16)),
        ("noise around flat 250/255", quantize(250 / 255 + 0.004 * torch.randn(4, 3, 30, 30, generator=g)),
         torch.full((1, 3, 30, 30), 250 / 255)),
        ("negative structure (ReLU)", quantize(torch.rand(1, 3, 20, 20, generator=g)),
         quantize(1 - torch.rand(1, 3, 20, 20, generator=g))),
    ]


@pytest.mark.parametrize("name, sr, hr", _edge_cases(), ids=[c[0] for c in _edge_cases()])
def test_ssim_equals_pyiqa_on_random_and_edge_cases(name, sr, hr):
    assert torch.allclose(FastSSIM()(sr, hr), pyiqa_ssim(sr, hr), atol=TOL, rtol=0)


def test_ssim_smaller_than_window_is_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the 11x11"):
        FastSSIM()(torch.rand(1, 3, 10, 12), torch.rand(1, 3, 10, 12))


@requires(REALSR)
def test_ssim_equals_pyiqa_on_realsr_with_noise():
    hr = load(sorted((REALSR / "test_HR").glob("*.png"))[0])[..., 4:-4, 4:-4]
    sr = quantize(hr + 0.05 * torch.randn(3, *hr.shape[1:], generator=torch.Generator().manual_seed(2)))
    assert torch.allclose(FastSSIM()(sr, hr), pyiqa_ssim(sr, hr), atol=TOL, rtol=0)


@requires(NIQE_NPZ)
def test_niqe_equals_pyiqa_on_calibration_and_random_images():
    metric = pyiqa_niqe_metric()
    fast = FastNIQE(metric)
    images = [load(calibra() / "dist_dir" / f"{i}.bmp") for i in IDS] + [load(calibra() / "ref_dir" / "I03.bmp")]
    g = torch.Generator().manual_seed(3)
    images.append(quantize(torch.rand(2, 3, 200, 291, generator=g)))  # two blocks by three, odd sizes
    images.append(quantize(0.5 + 0.1 * torch.randn(1, 3, 96, 96, generator=g)))  # exactly one block
    for img in images:
        ref = metric(img).to(torch.float64).reshape(-1)
        assert torch.allclose(fast(img), ref, atol=TOL, rtol=0), (img.shape, fast(img), ref)


@requires(NIQE_NPZ)
@requires(REALSR)
def test_niqe_equals_pyiqa_on_realsr_noise_control_runs():
    """Nikon_001 x noise_control seeds 0..9: an AGGD fit there sits near a step of pyiqa's 0.001
    grid, so a separable filter without the float32 remainder moved NIQE by 1.2e-5."""
    from benchmark.images import to_uint8
    from methods.noise_control import NoiseControl

    metric = pyiqa_niqe_metric()
    lr = load(REALSR / "test_LR" / "Nikon_001_LR4.png").expand(10, -1, -1, -1).contiguous()
    out = NoiseControl().upscale(lr, [torch.Generator().manual_seed(r) for r in range(10)])
    sr = torch.stack([torch.from_numpy(to_uint8(o).copy()).permute(2, 0, 1).float() / 255 for o in out])
    ours = FastNIQE(metric)(sr)
    one_by_one = torch.cat([metric(s[None]).reshape(-1) for s in sr]).to(torch.float64)  # as the CCSR scripts
    assert torch.allclose(ours, one_by_one, atol=TOL, rtol=0)
    assert torch.allclose(ours, torch.cat([FastNIQE(metric)(s[None]) for s in sr]), atol=1e-10, rtol=0)


@requires(NIQE_NPZ)
def test_niqe_too_small_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 96x96"):
        FastNIQE(pyiqa_niqe_metric())(torch.rand(1, 3, 95, 200))


def test_registry_uses_fast_backend_by_default_and_pyiqa_on_request():
    from benchmark.metrics.pyiqa_metrics import _PyiqaScorer

    cpu = torch.device("cpu")
    assert isinstance(METRICS.get("ssim").factory({}, cpu), FastSSIM)
    assert isinstance(METRICS.get("ssim").factory({"backend": "pyiqa"}, cpu), _PyiqaScorer)
    with pytest.raises(ValueError, match="backend='gpu'"):
        METRICS.get("ssim").factory({"backend": "gpu"}, cpu)
    if NIQE_NPZ.exists():
        assert isinstance(METRICS.get("niqe").factory({"params_path": str(NIQE_NPZ)}, cpu), FastNIQE)


# ----------------------------------------------------------------------------- units (mutation run, 2026-11-30)


def test_gaussian_1d_for_refuses_a_window_that_is_not_square():
    with pytest.raises(ValueError, match="square"):
        gaussian_1d_for(torch.ones(1, 1, 7, 5))


def test_reference_window_sum_is_the_float32_gaussian_summed_in_float64():
    """MATLAB's ``fspecial('gaussian', n, sigma)`` (pyiqa's ``fspecial``): exp(-(x^2 + y^2) / (2 sigma^2))
    on the centred grid, normalised in float64 and stored in float32; its sum differs from 1 by ~1e-8."""
    import numpy as np

    from benchmark.metrics.fast_exact import reference_window_sum

    for size, sigma in ((11, 1.5), (7, 7.0 / 6)):
        r = np.arange(size) - (size - 1) / 2
        w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
        by_hand = float((w / w.sum()).astype(np.float32).astype(np.float64).sum())
        assert reference_window_sum(size, sigma) == pytest.approx(by_hand, abs=1e-15)
        assert reference_window_sum(size, sigma) != 1.0  # float32 storage leaves a remainder


def test_ssim_is_pyiqas_ssim_function_in_float64_for_a_batch_of_pairs():
    """HR given per run ([N,3,H,W]) and float64 output: pyiqa's own ``ssim()`` on the rounded Y planes
    in float64 (data range 255) agrees to 1e-9, far below float32 resolution."""
    from pyiqa.archs.ssim_arch import ssim
    from pyiqa.utils.color_util import to_y_channel

    g = torch.Generator().manual_seed(11)
    sr, hr = quantize(torch.rand(3, 3, 30, 41, generator=g)), quantize(torch.rand(3, 3, 30, 41, generator=g))
    ours = FastSSIM()(sr, hr)
    y = [to_y_channel(t, 255, "ycbcr").round().to(torch.float64) for t in (sr, hr)]
    ref = ssim(y[0], y[1], data_range=255.0).reshape(-1)
    assert ours.dtype == torch.float64 and ours.shape == (3,)
    assert torch.allclose(ours, ref, atol=1e-9, rtol=0)
    assert len({round(float(v), 6) for v in ours}) == 3  # each run against its own HR


@pytest.mark.parametrize("h, w", [(30, 40), (383, 390), (384, 390), (390, 384)])
def test_ssim_downsample_factor_equals_pyiqa_at_the_rounding_boundaries(h, w):
    """pyiqa pools by ``max(1, round(min(H, W) / 256))``: 1 below 384 px (383 / 256 = 1.496), 2 from 384
    (Python's round(1.5) = 2); an image of 30 px is not pooled."""
    import pyiqa

    g = torch.Generator().manual_seed(h + w)
    hr = quantize(torch.rand(1, 3, h, w, generator=g))
    sr = quantize(F.avg_pool2d(hr, 3, stride=1, padding=1) + 0.05 * torch.randn(hr.shape, generator=g))
    ref = pyiqa.create_metric("ssim", test_y_channel=True, color_space="ycbcr", downsample=True, device="cpu")
    assert float(FastSSIM(downsample=True)(sr, hr)[0]) == pytest.approx(float(ref(sr, hr)), abs=1e-6)


def test_ssim_refuses_sr_and_hr_of_different_shapes():
    for sr, hr in ((torch.rand(1, 3, 20, 24), torch.rand(1, 3, 22, 24)),
                   (torch.rand(1, 3, 20, 24), torch.rand(1, 3, 20, 26)),
                   (torch.rand(2, 1, 20, 24), torch.rand(1, 3, 20, 24))):
        with pytest.raises(ValueError, match="same shape"):
            FastSSIM()(sr, hr)


def test_normalize_without_remainder_terms_is_the_local_gauss_normalisation_by_hand():
    """(img - mu) / (sqrt(|E[x^2] - mu^2| + eps) + C) with mu, E[x^2] the 'same' correlation of the
    replicate-padded image with ``outer(g, g)`` (pyiqa's ``normalize_img_with_gauss``), C = 1."""
    from benchmark.metrics.fast_exact import _normalize_with_gauss_separable

    g = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1], dtype=torch.float64)
    img = torch.rand(1, 1, 12, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 255
    img[..., :6, :5] = 17.0  # a flat patch: variance 0 there, eps keeps the root real
    padded = F.pad(img, (2, 2, 2, 2), mode="replicate")
    w = torch.outer(g, g)[None, None]
    mu, second = F.conv2d(padded, w), F.conv2d(padded * padded, w)
    ref = (img - mu) / (torch.sqrt((second - mu ** 2).abs() + torch.finfo(torch.float64).eps) + 1.0)
    out = _normalize_with_gauss_separable(img, g, [])
    assert out.shape == img.shape and torch.isfinite(out).all()
    assert torch.allclose(out, ref, atol=1e-10, rtol=0)


def test_niqe_normalisation_equals_pyiqas_normalize_img_with_gauss_in_float64():
    """NIQE's local normalisation against pyiqa's ``normalize_img_with_gauss(img, padding='replicate')``
    on a smooth ramp with mild noise (small local variance, where the window's float32 remainder shows):
    equal to 1e-10, while leaving the remainder out of either moment is off by ~1e-9 to ~1e-7."""
    from pyiqa.archs.func_util import normalize_img_with_gauss
    from pyiqa.matlab_utils import fspecial

    from benchmark.metrics.fast_exact import _normalize_with_gauss_separable

    w = fspecial(7, 7.0 / 6, 1).to(torch.float64)[0, 0]
    g = gaussian_1d_for(w)
    terms = separable_terms(w - torch.outer(g, g))
    yy, xx = torch.meshgrid(torch.arange(60.0), torch.arange(70.0), indexing="ij")
    noise = torch.randn(60, 70, generator=torch.Generator().manual_seed(0))
    img = (40 + 2 * xx + 1.5 * yy + 0.7 * noise).round().to(torch.float64)[None, None]
    ref = normalize_img_with_gauss(img, padding="replicate")
    assert torch.allclose(_normalize_with_gauss_separable(img, g, terms), ref, atol=1e-10, rtol=0)
    assert not torch.allclose(_normalize_with_gauss_separable(img, g, []), ref, atol=1e-10, rtol=0)


def test_separable_terms_of_a_float32_matrix_are_computed_in_float64():
    """The SVD is taken in float64 whatever the input's dtype: the 4 terms of the NIQE window's remainder
    stored in float32 rebuild it to 5e-20 (the terms below 1e-6 of the largest dropped; a float32 SVD leaves ~7e-16)."""
    from pyiqa.matlab_utils import fspecial

    w = fspecial(7, 7.0 / 6, 1).to(torch.float64)[0, 0]
    g = gaussian_1d_for(w)
    rem32 = (w - torch.outer(g, g)).to(torch.float32)
    terms = separable_terms(rem32)
    rebuilt = sum(torch.outer(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
                  for a, b in terms)
    assert len(terms) == 4
    assert torch.allclose(rebuilt, rem32.to(torch.float64), atol=1e-18, rtol=0)


def test_separable_terms_drop_singular_values_up_to_rel_times_the_largest():
    """diag(1, 1e-3, 1e-8): two terms (1e-8 <= 1e-6); diag(1, 1e-6): one (the boundary is dropped);
    a rank-1 matrix with an exactly zero second singular value: its one term; the zero matrix: none."""
    def rebuilt(terms):
        return sum(torch.outer(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
                   for a, b in terms)

    d = torch.diag(torch.tensor([1.0, 1e-3, 1e-8], dtype=torch.float64))
    assert len(separable_terms(d)) == 2
    assert torch.allclose(rebuilt(separable_terms(d)), torch.diag(torch.tensor([1.0, 1e-3, 0.0], dtype=torch.float64)),
                          atol=1e-15, rtol=0)
    assert len(separable_terms(torch.diag(torch.tensor([1.0, 1e-6], dtype=torch.float64)))) == 1
    e = torch.tensor([[2.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    assert len(separable_terms(e)) == 1 and torch.allclose(rebuilt(separable_terms(e)), e, atol=1e-15, rtol=0)
    assert separable_terms(torch.zeros(4, 4, dtype=torch.float64)) == []


@requires(NIQE_NPZ)
def test_niqe_equals_pyiqa_with_its_crop_border_and_when_given_the_network():
    """pyiqa's ``crop_border`` option (srbench never sets it; a metric built by hand may) and a flat
    quadrant (zero local variance): FastNIQE follows the pyiqa metric it is given, or its ``net``."""
    import pyiqa

    from benchmark.metrics.pyiqa_metrics import _niqe_mat

    g = torch.Generator().manual_seed(0)
    x = quantize(torch.rand(1, 3, 202, 204, generator=g))
    x[..., :110, :110] = 0.5
    for crop in (0, 5):
        metric = pyiqa.create_metric("niqe", pretrained_model_path=str(_niqe_mat(NIQE_NPZ)), device="cpu",
                                     crop_border=crop)
        ref = metric(x).to(torch.float64).reshape(-1)
        assert torch.allclose(FastNIQE(metric)(x), ref, atol=TOL, rtol=0), crop
        assert torch.allclose(FastNIQE(metric.net)(x), ref, atol=TOL, rtol=0), crop
    assert abs(float(FastNIQE(metric)(x)) - float(pyiqa_niqe_metric()(x))) > 1  # the crop matters here
