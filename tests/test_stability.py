"""G-STD and L-STD against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark import stability


def tidy(values: dict[str, list[float]], metric: str = "psnr") -> pd.DataFrame:
    rows = [(img, r, r, metric, v) for img, vs in values.items() for r, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=["image", "run", "seed", "metric", "value"])


def test_gstd_is_mean_over_images_of_population_std():
    # image a: [1, 2, 3] -> population std sqrt(2/3); image b: constant -> 0
    g = stability.gstd(tidy({"a": [1.0, 2.0, 3.0], "b": [2.0, 2.0, 2.0]}))
    assert g["psnr"] == pytest.approx(math.sqrt(2 / 3) / 2, abs=1e-12)  # 0.408248...
    # What the usual mistakes would give, so the test tells them apart:
    assert g["psnr"] != pytest.approx(0.5)  # ddof=1: (1 + 0) / 2
    assert g["psnr"] != pytest.approx(1 / 3)  # std over images per run, then mean over runs


def test_gstd_per_metric_and_single_run_is_undefined():
    df = pd.concat([tidy({"a": [0.0, 4.0]}, "psnr"), tidy({"a": [0.5, 0.5]}, "ssim"), tidy({"a": [7.0]}, "niqe")])
    g = stability.gstd(df)
    assert g == {"psnr": 2.0, "ssim": 0.0, "niqe": None}


def _runs_with_noisy_border() -> list[np.ndarray]:
    """3 runs of a 10x10 image: interior (crop 2) takes 0, 51, 102; the border flips 0/255/0."""
    runs = []
    for r, (inner, edge) in enumerate([(0, 0), (51, 255), (102, 0)]):
        a = np.full((10, 10, 3), edge, np.uint8)
        a[2:-2, 2:-2] = inner
        runs.append(a)
    return runs


def test_lstd_by_hand_with_border_crop():
    # interior per-pixel values 0, 0.2, 0.4: population std = sqrt(((0.2)^2 + 0 + 0.2^2) / 3)
    expected = math.sqrt(0.08 / 3)  # 0.163299...
    assert stability.lstd_image(_runs_with_noisy_border(), crop_border=2) == pytest.approx(expected, abs=1e-12)
    # Without the crop the flipping border dominates: numpy's own value over the whole image.
    whole = np.stack(_runs_with_noisy_border()).astype(np.float64) / 255.0
    assert stability.lstd_image(_runs_with_noisy_border(), crop_border=0) == pytest.approx(
        float(whole.std(axis=0, ddof=0).mean()), abs=1e-12)
    # The usual mistakes give other numbers than the implementation's: ddof=1 (sample std) and
    # a crop of one pixel fewer, both computed here by numpy.
    interior = whole[:, 2:-2, 2:-2]
    assert float(interior.std(axis=0, ddof=1).mean()) == pytest.approx(0.2, abs=1e-12)
    assert stability.lstd_image(_runs_with_noisy_border(), crop_border=2) != pytest.approx(
        float(interior.std(axis=0, ddof=1).mean()))
    assert stability.lstd_image(_runs_with_noisy_border(), crop_border=2) != pytest.approx(
        float(whole[:, 1:-1, 1:-1].std(axis=0, ddof=0).mean()))


def test_lstd_averages_over_runs_axis_not_pixels():
    # two runs; every pixel differs by 1/255 * 10 between runs but the image is spatially constant
    a, b = np.full((6, 6, 3), 100, np.uint8), np.full((6, 6, 3), 110, np.uint8)
    assert stability.lstd_image([a, b], 0) == pytest.approx(5 / 255, abs=1e-12)  # std of {100,110}/255
    # a spatially varying but run-constant image has L-STD 0 (std over pixels would not)
    ramp = np.arange(36 * 3, dtype=np.uint8).reshape(6, 6, 3)
    assert stability.lstd_image([ramp, ramp.copy()], 0) == 0.0


def test_lstd_of_dataset_weights_each_image_once_with_its_own_size():
    # Two images of different sizes: 4x4 with per-pixel std 0.5 and 20x20 with std 0.
    small = [np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)]  # L-STD 0.5
    big = [np.zeros((20, 20, 3), np.uint8)] * 2  # L-STD 0
    values = [stability.lstd_image(small, 0), stability.lstd_image(big, 0)]
    assert values == [pytest.approx(0.5, abs=1e-12), 0.0]
    # Mean over images (the paper's definition, DESIGN.md): (0.5 + 0) / 2.
    assert stability.lstd(values) == pytest.approx(0.25, abs=1e-12)
    # A pixel-weighted mean over the data set would give 0.5 * 16 / (16 + 400) instead.
    pixel_weighted = 0.5 * 16 / (16 + 400)
    assert stability.lstd(values) != pytest.approx(pixel_weighted)
    assert stability.lstd_image(small[:1], 0) is None
    assert stability.lstd([0.1, None]) is None


def test_lstd_crop_of_one_pixel_is_applied():
    """crop_border=1 removes exactly one pixel per side (a ``border <= 1`` slip would skip it)."""
    runs = _runs_with_noisy_border()
    whole = np.stack(runs).astype(np.float64) / 255.0
    want = float(whole[:, 1:-1, 1:-1].std(axis=0, ddof=0).mean())
    assert stability.lstd_image(runs, crop_border=1) == pytest.approx(want, abs=1e-12)
    assert want != pytest.approx(float(whole.std(axis=0, ddof=0).mean()))


def test_streamed_lstd_is_the_one_pass_lstd_whatever_the_chunks():
    """L-STD from running moments (the pipelined run feeds a few runs at a time) equals lstd_image
    over all runs at once, for any chunking, empty chunks and a border crop included; by hand, two
    runs 0 and 255 everywhere have a per-pixel std of 0.5 (population std, ddof=0: CCSR's L-STD)."""
    from benchmark.stability import RunningMoments, crop, lstd_image, lstd_streamed

    def streamed(runs, border, chunks):
        m, i = RunningMoments(), 0
        for k in chunks:
            m.update(crop(np.stack(runs[i:i + k]).astype(np.float64) / 255.0, border) if k else
                     np.empty((0, 1, 1, 3)))
            i += k
        return lstd_streamed(m, border)

    rng = np.random.default_rng(3)
    runs = [rng.integers(0, 256, (9, 7, 3), dtype=np.uint8) for _ in range(5)]
    for border in (0, 2):
        expect = lstd_image(runs, border)
        for chunks in ([5], [1] * 5, [2, 0, 3], [0, 4, 1]):
            assert streamed(runs, border, chunks) == pytest.approx(expect, rel=1e-12, abs=0), (border, chunks)
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    assert streamed([black, white], 0, [1, 1]) == pytest.approx(0.5, abs=1e-15)
    assert streamed([black, white, white, white], 1, [3, 1]) == pytest.approx(np.sqrt(3) / 4, abs=1e-15)
    assert streamed([white], 0, [1]) is None  # one run: L-STD undefined
    one = RunningMoments()
    one.update(np.stack([black]).astype(np.float64) + 0.25)
    assert np.array_equal(one.std(), np.zeros((4, 4, 3)))  # one run: every pixel's spread is 0
    # the moments are float64 whatever the runs are given in (float32 sums would drift by ~1e-7)
    stack32 = (rng.integers(0, 256, (6, 5, 5, 3)) / 255.0 + 100.0).astype(np.float32)
    m32 = RunningMoments()
    m32.update(stack32[:4])
    m32.update(stack32[4:])
    np.testing.assert_allclose(m32.std(), np.std(stack32.astype(np.float64), axis=0), rtol=1e-12, atol=1e-14)
    empty = RunningMoments()
    empty.update(np.empty((0, 4, 4, 3)))
    assert empty.n == 0
    with pytest.raises(ValueError, match="no runs"):
        empty.std()
