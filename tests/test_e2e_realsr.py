"""End to end on the 20 real RealSR pairs in ../shared (skipped when ../shared is absent)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.images import read_image, to_tensor
from conftest import NIQE_NPZ, REALSR, requires, run_bench


@requires(REALSR)
def test_realsr_bicubic_and_noise_control(tmp_path):
    common = ["dataset=realsr", f"dataset.root={REALSR}", f"output_dir={tmp_path}", "device=cpu"]
    metrics = [f"metrics.niqe.params_path={NIQE_NPZ}"] if NIQE_NPZ.exists() else []
    bic = run_bench(common + ["method=bicubic"] + metrics)
    assert bic["num_images"] == 20 and bic["runs"] == 1 and bic["lstd"] is None
    # bicubic PSNR recomputed here with pyiqa on torch's bicubic upsampling of the same files
    import pyiqa
    import torch.nn.functional as F

    psnr = pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr", device="cpu")
    values = []
    for lr_path in sorted((REALSR / "test_LR").glob("*.png"))[:3]:
        lr = to_tensor(read_image(lr_path))[None]
        hr = to_tensor(read_image(REALSR / "test_HR" / lr_path.name))[None]
        sr = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
        sr = torch.round(sr * 255) / 255
        values.append(float(psnr(sr[..., 4:-4, 4:-4], hr[..., 4:-4, 4:-4])))
    import pandas as pd

    scores = pd.read_csv(tmp_path / "realsr" / "bicubic" / "scores.csv")
    ours = scores[(scores.metric == "psnr")].set_index("image").value
    ids = [p.stem for p in sorted((REALSR / "test_LR").glob("*.png"))[:3]]
    assert [ours[i] for i in ids] == pytest.approx(values, abs=1e-4)

    sigma, n = 0.03, 4
    noisy = run_bench(common + ["method=noise_control", f"method.sigma={sigma}", f"runs={n}"] + metrics)
    assert noisy["runs"] == n and all(noisy["metrics"][m]["gstd"] > 0 for m in noisy["metrics"])
    c4 = math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    # clipping at black/white pixels can only lower it
    assert 0.8 * sigma * math.sqrt((n - 1) / n) * c4 < noisy["lstd"] <= 1.01 * sigma * math.sqrt((n - 1) / n) * c4
    assert noisy["metrics"]["psnr"]["mean"] < bic["metrics"]["psnr"]["mean"]
    if NIQE_NPZ.exists():
        assert "niqe" in noisy["metrics"] and not noisy["skipped"]
