"""Runner end to end on tiny synthetic data: layout, resume, stale configs, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import benchmark.sink as sink_mod
from benchmark.images import read_image
from conftest import ROOT, folder_dir, make_pairs, run_bench


def base(lr: Path, hr: Path | None, out: Path, *extra: str) -> list[str]:
    args = ["dataset=folder", f"dataset.lr_dir={lr}", f"output_dir={out}", "metrics=[psnr,ssim]", "device=cpu"]
    if hr is not None:
        args.append(f"dataset.hr_dir={hr}")
    return args + list(extra)


def test_issue_done_when_precomputed(tmp_path, pairs):
    """The command of the issue's 'Done when': sample00..sample02, crop 0, psnr+ssim."""
    lr, hr = pairs
    gen = tmp_path / "gen"
    run_bench(base(lr, hr, gen, "method=noise_control", "runs=3"))
    res = run_bench(["method=precomputed", f"method.path={folder_dir(gen, lr, hr) / 'noise_control' / 'samples'}",
                     "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "crop_border=0",
                     "metrics=[psnr,ssim]", f"output_dir={tmp_path / 'out'}"])
    on_disk = json.loads((folder_dir(tmp_path / "out", lr, hr) / "precomputed" / "results.json").read_text())
    assert on_disk["runs"] == 3 and on_disk == json.loads(json.dumps(res))
    # Means and G-STD follow from the stored per-(image, run) scores by the protocol's definition,
    # computed here with numpy: mean over images of the population (ddof=0) std over the 3 runs.
    scores = pd.read_csv(folder_dir(tmp_path / "out", lr, hr) / "precomputed" / "scores.csv", dtype={"image": str})
    for m in ("psnr", "ssim"):
        df = scores[scores.metric == m]
        assert len(df) == 3 * 3
        by_image = {i: g.sort_values("run").value.to_numpy() for i, g in df.groupby("image")}
        assert on_disk["metrics"][m]["mean"] == pytest.approx(np.mean([v.mean() for v in by_image.values()]),
                                                              abs=1e-12)
        want = float(np.mean([np.std(v, ddof=0) for v in by_image.values()]))
        assert on_disk["metrics"][m]["gstd"] == pytest.approx(want, abs=1e-12)
        assert on_disk["metrics"][m]["gstd"] != pytest.approx(
            float(np.mean([np.std(v, ddof=1) for v in by_image.values()])))
    # L-STD from the imported PNGs, read back here (crop_border=0: whole image)
    stacks = [np.stack([read_image(folder_dir(gen, lr, hr) / "noise_control" / "samples" / f"sample{r:02d}" / f"{i}.png")
                        for r in range(3)]) / 255.0 for i in ("img_a", "img_b", "img_c")]
    assert on_disk["lstd"] == pytest.approx(float(np.mean([s.std(axis=0).mean() for s in stacks])), abs=1e-12)
    for key in ("method", "dataset", "runs", "seed", "crop_border", "metrics", "lstd", "timing", "config", "versions"):
        assert key in on_disk


def test_layout_scores_and_values(tmp_path, pairs):
    lr, hr = pairs
    res = run_bench(base(lr, hr, tmp_path, "method=noise_control", "runs=4", "seed=7", "method.sigma=0.08"))
    root = folder_dir(tmp_path, lr, hr) / "noise_control"
    assert sorted(p.name for p in (root / "samples").iterdir()) == ["sample00", "sample01", "sample02", "sample03"]
    scores = pd.read_csv(root / "scores.csv")
    assert list(scores.columns) == ["image", "run", "seed", "metric", "value"]
    assert len(scores) == 3 * 4 * 2 and set(scores["seed"]) == {7, 8, 9, 10}
    # results.json means and G-STD follow from scores.csv by the protocol's definition
    for m in ("psnr", "ssim"):
        df = scores[scores.metric == m]
        assert res["metrics"][m]["mean"] == pytest.approx(df.value.mean(), abs=1e-12)
        per_image_std = df.groupby("image").value.apply(lambda v: np.std(v.to_numpy(), ddof=0))
        assert res["metrics"][m]["gstd"] == pytest.approx(per_image_std.mean(), abs=1e-12)
    # L-STD recomputed here from the PNGs
    vals = []
    for i in ("img_a", "img_b", "img_c"):
        stack = np.stack([read_image(root / "samples" / f"sample{r:02d}" / f"{i}.png") for r in range(4)]) / 255.0
        vals.append(stack[:, 4:-4, 4:-4].std(axis=0).mean())
    assert res["lstd"] == pytest.approx(float(np.mean(vals)), abs=1e-12)
    manifest = json.loads((root / "manifest.json").read_text())
    assert {"config", "config_hash", "generation_hash", "git_commit", "versions", "device"} <= set(manifest)


def test_deterministic_method_runs_once(tmp_path, pairs, caplog):
    lr, hr = pairs
    with caplog.at_level("INFO", logger="srbench"):
        res = run_bench(base(lr, hr, tmp_path, "method=bicubic", "runs=5"))
    root = folder_dir(tmp_path, lr, hr) / "bicubic" / "samples"
    assert [p.name for p in root.iterdir()] == ["sample00"]
    assert res["runs"] == 1 and res["lstd"] is None and res["metrics"]["psnr"]["gstd"] is None
    assert "method bicubic is deterministic: one run (runs=5 ignored" in caplog.text  # said, not silent


def test_no_hr_skips_fr_metrics_and_reports_it(tmp_path, capsys):
    lr, _ = make_pairs(tmp_path / "d", ["a", "b"], hr=False)
    res = run_bench(base(lr, None, tmp_path / "o", "method=noise_control", "runs=2"))
    assert set(res["skipped"]) == {"psnr", "ssim"} and "no HR" in res["skipped"]["psnr"]
    assert res["metrics"] == {} and res["lstd"] > 0
    assert "skipped psnr" in capsys.readouterr().out


def test_interrupted_run_resumes_to_identical_results(tmp_path, pairs, monkeypatch):
    lr, hr = pairs
    out = tmp_path / "out"
    args = base(lr, hr, out, "method=noise_control", "runs=4", "batch_size=3")
    run_bench(args)
    root = folder_dir(out, lr, hr) / "noise_control"
    ref_scores = (root / "scores.csv").read_bytes()
    ref_results = json.loads((root / "results.json").read_text())
    import shutil

    shutil.rmtree(out)

    real_write = sink_mod.write_png_atomic
    calls = {"n": 0}

    def dying_write(path, arr):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("simulated interruption")
        real_write(path, arr)

    monkeypatch.setattr(sink_mod, "write_png_atomic", dying_write)
    with pytest.raises(KeyboardInterrupt):
        run_bench(args)
    assert not (root / "results.json").exists()
    written = []
    monkeypatch.setattr(sink_mod, "write_png_atomic", lambda path, arr: (written.append(path), real_write(path, arr)))
    res = run_bench(args)
    assert len(written) == 12 - 6  # only what was missing was generated
    # timing.json kept the 6 image-runs timed before the interruption: the totals cover every stored sample
    assert res["timing"]["image_runs_timed"] == 12
    assert (root / "scores.csv").read_bytes() == ref_scores
    resumed = json.loads((root / "results.json").read_text())
    # wall-clock timing is the one field that differs between two runs of anything
    resumed.pop("timing"), ref_results.pop("timing")
    assert resumed == ref_results


def test_different_method_config_never_reuses_samples(tmp_path, pairs, caplog):
    lr, hr = pairs
    first = run_bench(base(lr, hr, tmp_path, "method=noise_control", "runs=2", "method.sigma=0.02"))
    with pytest.raises(ValueError, match=r"different configuration .*sigma: 0.02 -> 0.2.*overwrite=true") as err:
        run_bench(base(lr, hr, tmp_path, "method=noise_control", "runs=2", "method.sigma=0.2"))
    # a sweep over the value is told how to give each value its own folder (Hydra interpolation)
    assert str(err.value).endswith("In a sweep (-m method.sigma=a,b), give each value its own folder: "
                                   "'output_dir=<dir>/sigma${method.sigma}'.")
    with caplog.at_level("WARNING", logger="srbench"):
        second = run_bench(base(lr, hr, tmp_path, "method=noise_control", "runs=2", "method.sigma=0.2",
                                "overwrite=true"))
    assert second["lstd"] > 3 * first["lstd"]
    # what overwrite deletes is said, with why
    (deleted,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("overwrite=true: deleting")]
    assert "samples/ (6 file(s)) and scores.csv, lstd.csv, results.json" in deleted  # 3 images x 2 runs
    assert "method.sigma: 0.02 -> 0.2" in deleted
    # more runs with the same config extend the stored ones
    third = run_bench(base(lr, hr, tmp_path, "method=noise_control", "runs=3", "method.sigma=0.2"))
    assert second["timing"]["image_runs_timed"] == 6
    assert third["timing"]["image_runs_timed"] == 6 + 3  # timing.json kept the 6; only 3 were generated now


@pytest.mark.parametrize("fault, what", [("has_nan", "non-finite"), ("has_inf", "non-finite"), ("range", r"\[0, 1\]"),
                                         ("shape", "shape"), ("channels", "shape"), ("dtype", "dtype")])
def test_bad_method_output_names_method_image_seed(tmp_path, pairs, fault, what):
    lr, hr = pairs
    args = base(lr, hr, tmp_path, "method=bicubic", "method._target_=srb_helpers.Broken", f"+method.fault={fault}",
                "+method.bad_seed=2", "method.name=broken", "runs=3")
    with pytest.raises(ValueError, match=what) as err:
        run_bench(args)
    msg = str(err.value)
    assert "'broken'" in msg and "'img_a'" in msg
    # the seed of the bad run, as a seed (not any '2' in the message, e.g. a shape)
    assert re.search(r"seed[s]? \[?(\d+, )*2\b", msg), msg


def test_scale_and_crop_checks(tmp_path, pairs):
    lr, hr = pairs
    with pytest.raises(ValueError, match="crop_border=40 removes the whole image"):
        run_bench(base(lr, hr, tmp_path, "method=bicubic", "crop_border=40"))
    with pytest.raises(ValueError, match="x2 but dataset"):
        run_bench(base(lr, hr, tmp_path, "method=bicubic", "method.scale=2"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_bench.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_cli_multirun_and_unknown_names(tmp_path, pairs):
    lr, hr = pairs
    p = _cli("-m", "method=bicubic,noise_control", "runs=2", *base(lr, hr, tmp_path / "out"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    for m in ("bicubic", "noise_control"):
        assert (folder_dir(tmp_path / "out", lr, hr) / m / "results.json").is_file()
    p = _cli("method=nope", cwd=tmp_path)
    assert p.returncode != 0 and "unknown method 'nope'" in p.stderr and "noise_control" in p.stderr
    p = _cli("metrics=[psnr,nope]", cwd=tmp_path)
    assert p.returncode != 0 and "unknown metric or metrics preset 'nope'" in p.stderr and "ssim" in p.stderr
    p = _cli("-m", "method=bicubic,nope", cwd=tmp_path)
    assert p.returncode != 0 and "unknown method 'nope'" in p.stderr and "noise_control" in p.stderr
    p = _cli("dataset=nope", cwd=tmp_path)
    assert p.returncode != 0 and "unknown dataset 'nope'" in p.stderr and "realsr" in p.stderr


@pytest.mark.parametrize("override, key", [("runs=0", "runs"), ("runs=abc", "runs"), ("batch_size=0", "batch_size"),
                                           ("device=tpu", "device"), ("rnus=3", "rnus"), ("crop_border=-1", "crop_border")])
def test_config_errors_name_the_key(tmp_path, override, key):
    from omegaconf.errors import OmegaConfBaseException
    from hydra.errors import HydraException

    with pytest.raises((ValueError, OmegaConfBaseException, HydraException)) as err:
        run_bench([override, f"output_dir={tmp_path}"])
    assert key in str(err.value)
    assert not (tmp_path / "demo").exists()  # failed before any work


def test_constructor_errors_reach_the_user_unwrapped(tmp_path):
    """Hydra wraps constructor exceptions; the runner hands the adapter's own error on."""
    with pytest.raises(FileNotFoundError, match="LR folder .*nope.* does not exist"):
        run_bench(["dataset=folder", f"dataset.lr_dir={tmp_path / 'nope'}", f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match="method.sigma must be >= 0"):
        run_bench(["method=noise_control", "method.sigma=-1", f"output_dir={tmp_path}"])


def test_run_r_is_seeded_seed_plus_r_by_the_sink(tmp_path):
    """The rule itself, in-process (DESIGN.md, Seeds: run r uses ``seed + r``; a source that draws no
    seeds gets None): the seeds and the generators the sink hands to a method, each generator equal to
    ``torch.Generator().manual_seed(seed + r)`` by its first draws."""
    import types

    import torch

    from benchmark.store import Store

    assert [sink_mod.run_seed(7, r) for r in range(3)] == [7, 8, 9]
    assert sink_mod.run_seed(0, 4) == 4 and sink_mod.run_seed(None, 2) is None
    method = types.SimpleNamespace(name="m")
    sink = sink_mod.SampleSink(Store(tmp_path, "d", "m"), method, 7, {})
    assert [sink.seed(r) for r in (0, 1, 5)] == [7, 8, 12]
    gens = sink.generators([0, 2], torch.device("cpu"))
    for g, seed in zip(gens, (7, 9)):
        assert g.device == torch.device("cpu")
        assert torch.equal(torch.randn(4, generator=g), torch.randn(4, generator=torch.Generator().manual_seed(seed)))
    assert sink_mod.SampleSink(Store(tmp_path, "d", "m"), method, None, {}).seed(3) is None


def test_seed_offset_samples_equal_direct_calls(tmp_path, pairs):
    """Run r uses seed ``seed + r``: the stored samples of seed=7 runs=2 equal the method called
    directly with generators seeded 7 and 8 (DESIGN.md, Seeds), and differ from seeds 0 and 1."""
    import torch

    from benchmark.images import to_tensor, to_uint8
    from methods.noise_control import NoiseControl

    lr, hr = pairs
    run_bench(base(lr, hr, tmp_path, "method=noise_control", "method.sigma=0.1", "runs=2", "seed=7"))
    root = folder_dir(tmp_path, lr, hr) / "noise_control" / "samples"
    m = NoiseControl(sigma=0.1)
    for img in ("img_a", "img_b"):
        x = to_tensor(read_image(lr / f"{img}.png")).unsqueeze(0)
        for r, seed in enumerate((7, 8)):
            direct = to_uint8(m.upscale(x, [torch.Generator().manual_seed(seed)])[0])
            stored = read_image(root / f"sample{r:02d}" / f"{img}.png")
            assert np.array_equal(stored, direct), (img, r, seed)
            wrong = to_uint8(m.upscale(x, [torch.Generator().manual_seed(r)])[0])
            assert not np.array_equal(stored, wrong)
