"""Synthetic sets: MATLAB bicubic against reference values, degradation sanity, determinism,
manifest, cache invalidation, and a run on a synthetic set."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmark import degradations as D
from benchmark import synthetic as S
from benchmark.imresize import contributions, cubic, imresize
from conftest import make_pairs, run_bench

# BasicSR 1.4.2 ``basicsr.utils.matlab_functions.imresize`` (float32, the MATLAB port the SR papers
# use) on A[i, j] = (37 * (16 i + j)) mod 256, values on the 0-255 scale, rounded to 4 decimals.
PATTERN = ((np.arange(16 * 16).reshape(16, 16) * 37) % 256).astype(np.float64)
BASICSR_X4 = np.array([[114.1772, 124.7508, 124.4887, 119.7864], [132.1807, 132.5474, 122.0934, 128.2411],
                       [125.679, 131.5097, 127.5668, 126.5883], [133.0198, 128.0886, 135.3609, 133.9214]])
BASICSR_X3_ROW0 = np.array([100.216, 130.6799, 108.1864, 130.7706, 119.5172, 99.3479])
BASICSR_X2_ROW0 = np.array([60.8555, 132.1719, 142.875, 89.3594, 98.7813, 150.9961, 125.1211, 76.8399])


def test_imresize_equals_basicsr_reference_values():
    assert np.abs(imresize(PATTERN, 1 / 4) - BASICSR_X4).max() < 2e-3
    assert np.abs(imresize(PATTERN, 1 / 3)[0] - BASICSR_X3_ROW0).max() < 2e-3
    assert np.abs(imresize(PATTERN, 1 / 2)[0] - BASICSR_X2_ROW0).max() < 2e-3
    assert imresize(PATTERN, 1 / 3).shape == (6, 6)  # ceil(16 / 3), as MATLAB


def test_cubic_kernel_and_antialiased_weights_by_hand():
    # Keys a = -0.5: k(0) = 1, k(0.5) = 1.5/8 - 2.5/4 + 1, k(1.5) = -0.5*3.375 + 2.5*2.25 - 6 + 2, k(1) = k(2) = 0
    assert np.allclose(cubic(np.array([0, 0.5, 1, 1.5, 2, 2.5])), [1, 0.5625, 0, -0.0625, 0, 0])
    w, idx = contributions(16, 4, 0.25)  # x4 reduction: kernel stretched to 16 taps wide
    assert np.allclose(w.sum(1), 1)
    # output pixel 2 (1-based) samples u = 2/0.25 + 0.5*(1-4) = 6.5 (1-based), so the weights are
    # 0.25 * k(0.25 * (6.5 - i)) over taps i, normalised; the two nearest taps are i = 6 and 7
    row = dict(zip(idx[1] + 1, w[1]))
    raw = {i: 0.25 * cubic(np.array(0.25 * (6.5 - i))) for i in range(-2, 20)}
    total = sum(raw.values())
    assert math.isclose(row[6], raw[6] / total) and math.isclose(row[7], raw[7] / total)


def test_imresize_reproduces_a_linear_ramp_and_rounds_uint8():
    ramp = np.tile(np.arange(32, dtype=np.float64), (8, 1))
    out = imresize(ramp, 0.5)
    # interior outputs sample the ramp at u - 1 = 2x - 1.5 (0-based): the cubic kernel reproduces linear functions
    assert np.allclose(out[:, 3:13], 2 * np.arange(4, 14) - 1.5)
    # on uint8 the exact halves 2x - 1.5 round away from zero (MATLAB's round), not to even
    u8 = imresize(ramp.astype(np.uint8), 0.5)
    assert u8.dtype == np.uint8 and (u8[:, 3:13] == 2 * np.arange(4, 14) - 1).all()


def test_gaussian_noise_sigma_recovered_from_a_flat_patch():
    rng = np.random.default_rng(0)
    flat = np.full((256, 256, 3), 0.5)
    n = D.gaussian_noise(rng, flat.shape, 10 / 255, gray=False)
    assert abs(n.std() - 10 / 255) < 0.03 * 10 / 255 and abs(n.mean()) < 1e-3
    g = D.gaussian_noise(rng, flat.shape, 5 / 255, gray=True)
    assert np.array_equal(g[:, :, 0], g[:, :, 2]) and abs(g.std() - 5 / 255) < 0.03 * 5 / 255


def test_poisson_noise_variance_follows_the_intensity():
    rng = np.random.default_rng(1)
    img = np.concatenate([np.full((128, 128, 3), 0.2), np.full((128, 128, 3), 0.8)], axis=1)
    n = D.poisson_noise(rng, img, 1.0, gray=False)
    # two distinct values -> vals = 2, noise = Poisson(2x)/2 - x, variance x/2
    assert abs(n[:, :128].var() - 0.2 / 2) < 0.01 and abs(n[:, 128:].var() - 0.8 / 2) < 0.03


def test_jpeg_quality_orders_file_size_and_error():
    import cv2

    rng = np.random.default_rng(2)
    img = D.filter2d(rng.random((64, 64, 3)), D.bivariate_kernel(7, 1.0, 1.0, 0.0))
    u8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    sizes = [len(cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, q])[1]) for q in (30, 60, 95)]
    errors = [np.abs(D.jpeg(img, q) - img).mean() for q in (30, 60, 95)]
    assert sizes[0] < sizes[1] < sizes[2] and errors[0] > errors[1] > errors[2]


def _high_freq_energy(img: np.ndarray) -> float:
    f = np.fft.fftshift(np.fft.fft2(img[:, :, 0]))
    h, w = f.shape
    yy, xx = np.mgrid[:h, :w]
    return float((np.abs(f) ** 2)[np.hypot(yy - h / 2, xx - w / 2) > h / 4].sum())


def test_blur_kernels_lower_high_frequency_energy():
    img = np.random.default_rng(3).random((64, 64, 3))
    e0 = _high_freq_energy(img)
    for k in (D.bivariate_kernel(21, 2.0, 0.7, 0.3), D.circular_lowpass_kernel(math.pi / 3, 13, 21),
              D.fspecial_gaussian(15, 1.5), D.anisotropic_gaussian(15, 0.5, 4.0, 1.0)):
        assert math.isclose(k.sum(), 1.0) and _high_freq_energy(D.filter2d(img, k)) < 0.5 * e0


def test_kernels_by_hand():
    k = D.bivariate_kernel(5, 1.2, 1.2, 0.0)
    x = np.arange(-2, 3)
    ref = np.exp(-(x[None, :] ** 2 + x[:, None] ** 2) / (2 * 1.2 ** 2))
    assert np.allclose(k, ref / ref.sum())
    c = D.circular_lowpass_kernel(math.pi / 2, 7)
    from scipy.special import j1

    r = 1.0  # the pixel right of the centre: cutoff * J1(cutoff * r) / (2 pi r), relative to the centre value
    assert math.isclose(c[3, 4] / c[3, 3], (math.pi / 2 * j1(math.pi / 2) / (2 * math.pi * r)) / ((math.pi / 2) ** 2 / (4 * math.pi)))


def _hr_folder(tmp_path, n: int = 3, side: int = 64):
    _, hr = make_pairs(tmp_path / "src", [f"im{i}" for i in range(n)], lr_size=(side // 4, side // 4))
    return hr


@pytest.mark.parametrize("recipe", ["bicubic", "realesrgan", "bsrgan"])
def test_recipe_is_deterministic_and_seeded(recipe, tmp_path):
    hr = _hr_folder(tmp_path)
    a = S.build(hr, recipe, seed=0, cache_dir=tmp_path / "c1")
    b = S.build(hr, recipe, seed=0, cache_dir=tmp_path / "c2")  # regenerated elsewhere
    c = S.build(hr, recipe, seed=1, cache_dir=tmp_path / "c1")
    for stem in ("im0", "im1", "im2"):
        la, lb, lc = ((d / "LR" / f"{stem}.png").read_bytes() for d in (a, b, c))
        assert la == lb
        assert (la != lc) == (recipe != "bicubic")  # bicubic has nothing random
        from benchmark.images import read_image

        assert read_image(a / "LR" / f"{stem}.png").shape == (16, 16, 3)
    assert a.name == b.name and a != c


def test_image_seed_depends_on_stem_only(tmp_path):
    hr = _hr_folder(tmp_path, n=2)
    a = S.build(hr, "bsrgan", seed=5, cache_dir=tmp_path / "c")
    make_pairs(tmp_path / "src", ["zz_extra"], lr_size=(16, 16), seed=9)  # one more HR image
    b = S.build(hr, "bsrgan", seed=5, cache_dir=tmp_path / "c")
    assert a != b  # another file list: another set
    assert (a / "LR" / "im0.png").read_bytes() == (b / "LR" / "im0.png").read_bytes()
    assert S.image_seed(5, "im0") == int.from_bytes(__import__("hashlib").sha256(b"5:im0").digest()[:8], "little")


def test_manifest_round_trip_and_no_stale_cache(tmp_path, caplog):
    hr = _hr_folder(tmp_path, n=2, side=96)
    folder = S.build(hr, "realesrgan", seed=3, crop="random", crop_size=64, cache_dir=tmp_path / "c")
    m = S.read_manifest(folder)
    assert m["recipe"] == "realesrgan" and m["seed"] == 3 and m["crop"] == "random" and m["crop_size"] == 64
    assert m["params"]["jpeg_range2"] == [60.0, 100.0] and m["params"]["blur_sigma"] == [0.2, 1.5]
    from benchmark.images import read_image
    from benchmark.fetch import sha256_file

    for stem, rec in m["images"].items():
        assert rec["seed"] == S.image_seed(3, stem) and rec["source_sha256"] == m["hr_sha256"][stem]
        assert rec["lr_pixels_sha256"] == __import__("hashlib").sha256(read_image(folder / "LR" / f"{stem}.png").tobytes()).hexdigest()
        assert rec["hr_size"] == [64, 64] and rec["lr_size"] == [16, 16] and "kernel1" in rec["degradation"]
        assert sha256_file(hr / f"{stem}.png") == rec["source_sha256"]
    assert json.loads(json.dumps(m)) == m
    before = (folder / "LR" / "im0.png").stat().st_mtime_ns
    with caplog.at_level("INFO", logger="srbench"):
        assert S.build(hr, "realesrgan", seed=3, crop="random", crop_size=64, cache_dir=tmp_path / "c") == folder
    assert "reusing synthetic set" in caplog.text and (folder / "LR" / "im0.png").stat().st_mtime_ns == before
    other = S.build(hr, "realesrgan", seed=3, crop="random", crop_size=64, cache_dir=tmp_path / "c",
                    params={"jpeg_range2": [90, 100]})
    assert other != folder and S.read_manifest(other)["params"]["jpeg_range2"] == [90, 100]
    with pytest.raises(ValueError, match="unknown key"):
        S.build(hr, "bsrgan", cache_dir=tmp_path / "c", params={"nope": 1})


def test_centre_crop_and_too_small_image(tmp_path):
    hr = _hr_folder(tmp_path, n=1, side=96)
    folder = S.build(hr, "bicubic", scale=2, crop="center", crop_size=64, cache_dir=tmp_path / "c")
    from benchmark.images import read_image

    src = read_image(hr / "im0.png")
    assert np.array_equal(read_image(folder / "HR" / "im0.png"), src[16:80, 16:80])
    assert np.array_equal(read_image(folder / "LR" / "im0.png"), imresize(src[16:80, 16:80], 0.5))
    with pytest.raises(ValueError, match="smaller than dataset.crop_size=128"):
        S.build(hr, "bicubic", crop="center", crop_size=128, cache_dir=tmp_path / "c")


def test_run_on_a_synthetic_bsrgan_set_builds_once(tmp_path, caplog):
    hr = _hr_folder(tmp_path, n=2)
    common = ["dataset=synthetic", f"dataset.hr_dir={hr}", "dataset.recipe=bsrgan", "method=bicubic", "runs=1",
              "metrics=[psnr]", "device=cpu", f"dataset.cache_dir={tmp_path / 'syn'}"]
    run_bench(common + [f"output_dir={tmp_path / 'o1'}"])
    built = [p for p in (tmp_path / "syn").iterdir() if not p.name.startswith(".")]
    assert len(built) == 1 and (built[0] / "manifest.json").is_file()
    with caplog.at_level("INFO", logger="srbench"):
        run_bench(common + [f"output_dir={tmp_path / 'o2'}"])
    assert "reusing synthetic set" in caplog.text
    assert [p for p in (tmp_path / "syn").iterdir() if not p.name.startswith(".")] == built
    assert (tmp_path / "o2" / "synthetic" / "bicubic" / "results.json").is_file()


def test_crops_per_image_gives_named_pairs_with_their_own_crops(tmp_path):
    hr = _hr_folder(tmp_path, n=1, side=96)
    folder = S.build(hr, "bicubic", crop="random", crop_size=32, crops_per_image=3, cache_dir=tmp_path / "c")
    m = S.read_manifest(folder)
    assert sorted(m["images"]) == ["im0_0", "im0_1", "im0_2"]
    assert len({(r["crop"]["top"], r["crop"]["left"]) for r in m["images"].values()}) > 1
    with pytest.raises(ValueError, match="only with crop=random"):
        S.build(hr, "bicubic", crops_per_image=2, cache_dir=tmp_path / "c")
