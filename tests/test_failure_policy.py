"""Per-image failure policy and the PSNR cap (issue 12).

A metric undefined on (or failing on) one (image, run) is recorded as excluded with its reason;
every other value is scored and equals pyiqa called directly; results.json counts the values
averaged and lists the excluded ones; strict=true exits with an error after everything is
written; identical images give pyiqa's 80 dB and are counted.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.images import read_image, to_tensor
from benchmark.metrics import METRICS
from benchmark.results import Excluded, Result
from benchmark.scoring import score_image
from conftest import NIQE_NPZ, folder_dir, requires, run_bench, write_png

CPU = torch.device("cpu")


def _hr(rng: np.random.Generator, side: int) -> np.ndarray:
    return (rng.random((side, side, 3)) * 200 + 28).astype(np.uint8)


def _noisy(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    return np.clip(img.astype(int) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def odd_folder(tmp_path) -> dict[str, Path]:
    """LR/HR pairs (x4) and precomputed SR outputs: 'big' (128 px, ordinary), 'tiny' (64 px SR:
    below NIQE's 96x96), 'black' (a flat SR image, as after an fp16 overflow), 'same' (SR == HR)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    srs = {}
    for name, side in (("big", 128), ("tiny", 64), ("black", 128), ("same", 128)):
        hr = _hr(rng, side)
        write_png(root / "HR" / f"{name}.png", hr)
        write_png(root / "LR" / f"{name}.png",
                  np.asarray(Image.fromarray(hr).resize((side // 4, side // 4), Image.Resampling.BICUBIC)))
        srs[name] = {"big": _noisy(rng, hr), "tiny": _noisy(rng, hr), "black": np.zeros_like(hr), "same": hr}[name]
        write_png(root / "SR" / f"{name}.png", srs[name])
    return {"root": root, "lr": root / "LR", "hr": root / "HR", "sr": root / "SR", "out": tmp_path / "out"}


def _overrides(f: dict[str, Path], *extra: str) -> list[str]:
    return ["method=precomputed", f"method.path={f['sr']}", "dataset=folder", f"dataset.lr_dir={f['lr']}",
            f"dataset.hr_dir={f['hr']}", "metrics=[psnr,ssim,niqe]", f"metrics.niqe.params_path={NIQE_NPZ}",
            f"output_dir={f['out']}", *extra]


def _pyiqa(name: str, **kw):
    import pyiqa

    return pyiqa.create_metric(name, device=CPU, **kw)


@requires(NIQE_NPZ)
def test_tiny_and_flat_images_are_excluded_with_reasons_and_the_rest_is_scored(odd_folder):
    from benchmark.metrics.pyiqa_metrics import _niqe_mat

    f = odd_folder
    res = run_bench(_overrides(f, "strict=false"))
    root = folder_dir(f["out"], f["lr"], f["hr"]) / "precomputed"
    scores = pd.read_csv(root / "scores.csv")
    on_disk = json.loads((root / "results.json").read_text())
    assert on_disk == res

    sr = {n: to_tensor(read_image(f["sr"] / f"{n}.png"))[None] for n in ("big", "tiny", "black", "same")}
    hr = {n: to_tensor(read_image(f["hr"] / f"{n}.png"))[None] for n in sr}
    # PSNR and SSIM: every image, equal to pyiqa with the same convention (Y of YCbCr, crop 4)
    psnr = _pyiqa("psnr", test_y_channel=True, color_space="ycbcr", crop_border=4)
    ssim = _pyiqa("ssim", test_y_channel=True, color_space="ycbcr", crop_border=4)
    for n in sr:
        got = scores[(scores.metric == "psnr") & (scores.image == n)]["value"].tolist()
        assert got == pytest.approx([float(psnr(sr[n], hr[n]))], abs=1e-5), n
        got = scores[(scores.metric == "ssim") & (scores.image == n)]["value"].tolist()
        assert got == pytest.approx([float(ssim(sr[n], hr[n]))], abs=1e-6), n
    # NIQE: only where it is defined, equal to pyiqa; the mean is theirs alone
    niqe = _pyiqa("niqe", pretrained_model_path=str(_niqe_mat(NIQE_NPZ)))
    got = scores[scores.metric == "niqe"].set_index("image")["value"].to_dict()
    want = {n: float(niqe(sr[n])) for n in ("big", "same")}
    assert got == pytest.approx(want, abs=1e-5)
    m = res["metrics"]["niqe"]
    assert m["num_values"] == 2 and m["num_images"] == 2
    assert m["mean"] == pytest.approx(np.mean(list(want.values())), abs=1e-5)
    assert m["excluded"] == [
        {"image": "black", "run": 0, "reason": "niqe: undefined on a flat image (zero variance)"},
        {"image": "tiny", "run": 0,
         "reason": "niqe: undefined below 96x96 px, NIQE's 96x96 blocks (image 'tiny' is 64x64)"}]
    for name in ("psnr", "ssim"):
        assert res["metrics"][name]["num_values"] == 4 and res["metrics"][name]["excluded"] == []
    # identical images: pyiqa's eps convention, recorded
    assert got_same_psnr(scores) == pytest.approx(80.0, abs=1e-4)
    assert res["metrics"]["psnr"]["cap"] == pytest.approx(80.0) and res["metrics"]["psnr"]["num_capped"] == 1
    assert "num_capped" not in res["metrics"]["ssim"]


def got_same_psnr(scores: pd.DataFrame) -> float:
    return float(scores[(scores.metric == "psnr") & (scores.image == "same")]["value"].iloc[0])


@requires(NIQE_NPZ)
def test_the_printed_table_flags_fewer_values_and_names_the_excluded(odd_folder, capsys):
    run_bench(_overrides(odd_folder, "strict=false"))
    out = capsys.readouterr().out
    niqe_row = next(line for line in out.splitlines() if line.startswith("niqe"))
    assert "averaged over 2 of 4 values: 2 excluded" in niqe_row
    psnr_row = next(line for line in out.splitlines() if line.startswith("psnr"))
    assert "1 value(s) at the cap 80" in psnr_row
    assert "excluded image 'tiny' run 0: niqe: undefined below 96x96 px" in out
    assert "excluded image 'black' run 0: niqe: undefined on a flat image (zero variance)" in out


@requires(NIQE_NPZ)
def test_strict_exits_with_an_error_after_everything_is_written(odd_folder):
    from benchmark.runner import ExcludedValues

    with pytest.raises(ExcludedValues, match="2 value"):
        run_bench(_overrides(odd_folder, "strict=true"))
    root = folder_dir(odd_folder["out"], odd_folder["lr"], odd_folder["hr"]) / "precomputed"
    res = json.loads((root / "results.json").read_text())
    assert len(res["metrics"]["niqe"]["excluded"]) == 2
    assert set(pd.read_csv(root / "scores.csv")["metric"]) == {"psnr", "ssim", "niqe"}


@requires(NIQE_NPZ)
def test_strict_exit_code_of_run_bench(odd_folder):
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), *_overrides(odd_folder)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"})  # no --debug
    assert proc.returncode == 2  # the project's exit status of a user error (benchmark.errors)
    assert "error: 2 value(s) excluded" in proc.stderr
    assert (folder_dir(odd_folder["out"], odd_folder["lr"], odd_folder["hr"]) / "precomputed" / "results.json").is_file()


def test_size_limits_are_named_before_generation(tmp_path, caplog):
    """SSIM's 11x11 window after the crop: a 4x4 LR (16 px SR) leaves 8x8 after crop_border=4."""
    from conftest import make_pairs

    lr, hr = make_pairs(tmp_path / "d", ["small"], lr_size=(4, 4))
    make_pairs(tmp_path / "d", ["fine"], lr_size=(8, 8))
    caplog.set_level(logging.INFO, logger="srbench")
    res = run_bench(["method=bicubic", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
                     "metrics=[psnr,ssim]", f"output_dir={tmp_path / 'out'}", "strict=false"])
    messages = [r.getMessage() for r in caplog.records]
    warn = next(i for i, m in enumerate(messages) if "metric ssim is undefined on 1 image(s)" in m)
    gen = next(i for i, m in enumerate(messages) if m.startswith("generating"))
    assert warn < gen
    reason = "ssim: undefined below 11x11 px, SSIM's 11x11 window (image 'small' is 8x8 after crop_border=4)"
    assert reason.split(": ", 1)[1] in messages[warn]
    assert res["metrics"]["ssim"]["excluded"] == [{"image": "small", "run": 0, "reason": reason}]
    assert res["metrics"]["ssim"]["num_values"] == 1 and res["metrics"]["psnr"]["num_values"] == 2


class _FailsOnBright:
    """A scorer that fails on any batch holding an image brighter than 0.6 on average (as a
    library raising on one input), else returns the mean intensity."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if (x.mean(dim=(1, 2, 3)) > 0.6).any():
            raise RuntimeError("boom on a bright image")
        return x.mean(dim=(1, 2, 3)).to(torch.float64)


def test_one_failing_run_is_excluded_and_the_other_runs_keep_their_values():
    spec = METRICS.get("niqe")  # NR, no crop; min size 96, flat undefined
    x = torch.stack([torch.full((3, 100, 100), v) for v in (0.2, 0.7, 0.4)])
    x[:, :, 0, 0] = 0.0  # not flat
    excluded: list[Excluded] = []
    vals = score_image("niqe", spec, _FailsOnBright(), "img", x, None, [0, 1, 2], excluded)
    assert vals == pytest.approx({0: float(x[0].mean()), 2: float(x[2].mean())})
    assert [(e.image, e.run) for e in excluded] == [("img", 1)]
    assert excluded[0].reason == "niqe: failed (RuntimeError: boom on a bright image)"


def test_non_finite_values_are_excluded_not_averaged():
    spec = METRICS.get("niqe")
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    excluded: list[Excluded] = []
    vals = score_image("niqe", spec, lambda t: torch.tensor([1.5, float("nan")], dtype=torch.float64), "img", x,
                       None, [0, 1], excluded)
    assert vals == {0: 1.5}
    assert excluded == [Excluded("niqe", "img", 1, "niqe: undefined (the metric returned nan)")]


def test_means_and_gstd_use_the_values_that_exist():
    """Hand computation: image a has runs 0,1,2; image b lost run 1 and 2 (one value left)."""
    rows = [("a", 0, 0, "m", 1.0), ("a", 1, 1, "m", 2.0), ("a", 2, 2, "m", 4.0), ("b", 0, 0, "m", 10.0)]
    scores = pd.DataFrame(rows, columns=["image", "run", "seed", "metric", "value"])
    ex = [Excluded("m", "b", 1, "m: undefined"), Excluded("m", "b", 2, "m: undefined")]

    class Facts:
        kind, higher_is_better = "NR", True

    r = Result.from_scores(scores, [0.1, 0.2], {"m": Facts()}, method="x", dataset="d", runs=3, seed=0,
                           crop_border=0, stochastic=True, num_images=2, excluded=ex)
    m = r.metrics["m"]
    assert m.mean == pytest.approx((7 / 3 + 10) / 2)
    assert m.gstd == pytest.approx(np.std([1.0, 2.0, 4.0]))  # b has no spread to measure: left out
    assert m.num_values == 4 and m.num_excluded == 2
    back = Result.from_json(json.loads(json.dumps(r.to_json())))
    assert back.metrics["m"].excluded == m.excluded and back.metrics["m"].num_values == 4


def test_regression_gate_refuses_means_over_a_different_number_of_values():
    from benchmark import regression
    from benchmark.report.collect import frame, rows_of

    class Facts:
        kind, higher_is_better = "NR", True

    def result(values: list[float], excluded: list[Excluded]) -> Result:
        rows = [("a", r, r, "m", v) for r, v in enumerate(values)]
        scores = pd.DataFrame(rows, columns=["image", "run", "seed", "metric", "value"])
        return Result.from_scores(scores, [0.1], {"m": Facts()}, method="x", dataset="d", runs=3, seed=0,
                                  crop_border=0, stochastic=True, num_images=1, excluded=excluded)

    full = frame(rows_of(result([1.0, 2.0, 3.0], [])))
    fewer = frame(rows_of(result([1.0, 2.0], [Excluded("m", "a", 2, "m: undefined")])))
    same = regression.compare(full, full)
    assert same.exit_code == regression.EXIT_OK
    comp = regression.compare(fewer, full)
    assert comp.exit_code == regression.EXIT_NOT_COMPARABLE
    assert any("averaged over 3 values in the baseline, 2 now" in (x.message or "") for x in comp.lines)
    # the same through a stored baseline entry
    base = frame(rows_of(Result.from_json(regression.entries(full)[0])))
    assert regression.compare(fewer, base).exit_code == regression.EXIT_NOT_COMPARABLE


@requires(NIQE_NPZ)
def test_one_flat_run_of_a_stochastic_method_keeps_the_other_runs_and_intervals(tmp_path):
    """Run 1 of the second image is black: NIQE excludes just that value; the image's mean is over
    its other runs, its G-STD contribution needs >= 2 runs, and the confidence intervals and the
    report's runs plot cope with the gap."""
    from conftest import make_pairs

    lr, hr = make_pairs(tmp_path / "d", ["a", "b", "c"], lr_size=(26, 26))
    res = run_bench(["method=noise_control", "method._target_=srb_helpers.FlatOnSeed", "+method.image=2",
                     "+method.bad_seed=1", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
                     "runs=3", "metrics=[psnr,niqe]", f"metrics.niqe.params_path={NIQE_NPZ}",
                     f"output_dir={tmp_path / 'out'}", "strict=false"])
    root = folder_dir(tmp_path / "out", lr, hr) / "noise_control"  # the preset name
    scores = pd.read_csv(root / "scores.csv")
    niqe = scores[scores.metric == "niqe"]
    assert len(niqe) == 8 and not ((niqe.image == "b") & (niqe.run == 1)).any()
    m = res["metrics"]["niqe"]
    assert m["excluded"] == [{"image": "b", "run": 1, "reason": "niqe: undefined on a flat image (zero variance)"}]
    per_image = niqe.groupby("image")["value"]
    assert m["mean"] == pytest.approx(per_image.mean().mean())
    assert m["gstd"] == pytest.approx(per_image.apply(lambda v: np.std(v, ddof=0)).mean())
    assert m["mean_ci"] is not None and m["gstd_ci"] is not None
    assert res["metrics"]["psnr"]["num_values"] == 9  # PSNR is defined on the black run
    from benchmark.report import build_report

    build_report(tmp_path / "out", out=tmp_path / "report")  # must not fail on the missing value
    assert (tmp_path / "report" / "table.md").is_file()


def test_the_printed_table_says_when_a_metric_covers_fewer_images():
    """A folder where one LR has no HR: PSNR's mean is over 3 of the 4 images the header counts; the row
    says so (new-user trial). Excluded values are not counted as images without inputs."""
    from benchmark.report.console import format_table
    from benchmark.results import MetricResult, Result

    ex = [{"image": "t", "run": r, "reason": "niqe: undefined"} for r in range(3)]
    res = Result("m", "d", 3, 0, 4, True, 4, {
        "psnr": MetricResult(20.0, 0.1, True, "FR", num_images=3, num_values=9),
        "niqe": MetricResult(5.0, 0.1, False, "NR", num_images=3, num_values=9, excluded=ex),
        "fid": MetricResult(30.0, None, False, "set", num_values=3),
        "ssim": MetricResult(0.5, 0.01, True, "FR", num_images=4, num_values=12)})
    rows = {line.split()[0]: line for line in format_table(res).splitlines()[2:]}
    assert rows["psnr"].endswith("[over 3 of 4 images: 1 without the inputs it needs (an HR for a full-reference "
                                 "metric)]")
    assert "images" not in rows["niqe"] and "[averaged over 9 of 12 values: 3 excluded]" in rows["niqe"]
    assert "[" not in rows["ssim"] and "[" not in rows["fid"]
