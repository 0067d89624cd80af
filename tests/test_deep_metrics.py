"""LPIPS, DISTS, MUSIQ, CLIPIQA, FID and KID through their real loading code, offline.

Random-weight files in the real formats are written once per session into a temporary
TORCH_HOME (tests/random_weights.py). The values are meaningless; what is checked is what a
wrong implementation would break: the files are the ones loaded, batch == one by one, the
crop policy, identity and direction facts, FID equal to pyiqa's own FID on the same folders,
KID equal to pyiqa's estimator, the reference-feature cache, and skip/stop behaviour.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.images import read_image, to_tensor
from benchmark.metrics import METRICS
from conftest import folder_dir, make_pairs, run_bench

CPU = torch.device("cpu")
DEEP = ("lpips", "dists", "musiq", "clipiqa")


@pytest.fixture(scope="session")
def random_home(tmp_path_factory) -> Path:
    import random_weights

    home = tmp_path_factory.mktemp("torch_home")
    random_weights.write_all(home)
    return home


@pytest.fixture
def home(random_home, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(random_home))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return random_home


def scorer(name: str, **options):
    return METRICS.get(name).factory(options, CPU)


def images(n: int, h: int = 40, w: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, h, w, generator=g) * 255).round() / 255  # 8-bit levels, as decoded files


# ----------------------------------------------------------------------------- facts


def test_directions_and_kinds_agree_with_pyiqa():
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    for name in DEEP + ("fid",):
        cfg = DEFAULT_CONFIGS[name]
        spec = METRICS.get(name)
        assert spec.higher_is_better is (not cfg.get("lower_better", False)), name
        if name != "fid":
            assert spec.kind == cfg["metric_mode"], name
    assert METRICS.get("fid").kind == METRICS.get("kid").kind == "set"
    assert not METRICS.get("kid").higher_is_better
    # crop policy (DESIGN.md): full-reference on the cropped image, no-reference and FID on the whole one
    assert {n: METRICS.get(n).crop for n in DEEP + ("fid", "kid")} == {
        "lpips": True, "dists": True, "musiq": False, "clipiqa": False, "fid": False, "kid": False}


def test_file_names_and_locations_follow_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    hub = tmp_path / "hub"
    expected = {  # pyiqa 0.1.16 / torchvision / OpenAI CLIP file names
        "lpips": {hub / "pyiqa/LPIPS_v0.1_alex-df73285e.pth", hub / "checkpoints/alexnet-owt-7be5be79.pth"},
        "dists": {hub / "pyiqa/DISTS_weights-f5e65c96.pth", hub / "checkpoints/vgg16-397923af.pth"},
        "musiq": {hub / "pyiqa/musiq_koniq_ckpt-e95806b9.pth"},
        "clipiqa": {hub / "clip/RN50.pt"},
        "fid": {hub / "pyiqa/pt_inception-2015-12-05-6726825d.pth"},
        "kid": {hub / "pyiqa/pt_inception-2015-12-05-6726825d.pth"},
    }
    for name, paths in expected.items():
        files = METRICS.get(name).weights({})
        assert {w.path for w in files} == paths, name
        assert all(w.url.startswith("https://") and w.url.endswith(w.name) for w in files), name
        assert not any(w.present for w in files)
        with pytest.raises(FileNotFoundError, match=files[0].name):
            scorer(name)
    assert {w.name for w in METRICS.get("lpips").weights({"net": "vgg"})} == {
        "LPIPS_v0.1_vgg-a78928a0.pth", "vgg16-397923af.pth"}
    with pytest.raises(ValueError, match="net"):
        METRICS.get("lpips").weights({"net": "resnet"})
    with pytest.raises(ValueError, match="koniq10k"):
        METRICS.get("musiq").weights({"pretrained": "imagenet"})


# ----------------------------------------------------------------------------- real loading


def test_the_files_are_what_gets_loaded(home):
    hub = home / "hub"
    lp = scorer("lpips").metric.net
    lin = torch.load(hub / "pyiqa/LPIPS_v0.1_alex-df73285e.pth")
    alex = torch.load(hub / "checkpoints/alexnet-owt-7be5be79.pth")
    assert torch.equal(lp.lin2.model[1].weight, lin["lin2.model.1.weight"])
    assert torch.equal(lp.net.slice1[0].weight, alex["features.0.weight"])

    ds = scorer("dists").metric.net
    d = torch.load(hub / "pyiqa/DISTS_weights-f5e65c96.pth")
    vgg = torch.load(hub / "checkpoints/vgg16-397923af.pth")
    assert torch.equal(ds.alpha, d["alpha"]) and torch.equal(ds.beta, d["beta"])
    assert torch.equal(ds.stage5[-2].weight, vgg["features.28.weight"].float())

    mu = scorer("musiq").metric.net
    m = torch.load(hub / "pyiqa/musiq_koniq_ckpt-e95806b9.pth")
    assert torch.equal(mu.head.weight, m["head.weight"].float()) and mu.head.out_features == 1

    clip = scorer("clipiqa").metric.net.clip_model[0]
    jit = torch.jit.load(str(hub / "clip/RN50.pt")).state_dict()
    assert torch.allclose(clip.visual.conv1.weight, jit["visual.conv1.weight"].float(), atol=1e-3)
    assert torch.allclose(clip.token_embedding.weight, jit["token_embedding.weight"].float(), atol=1e-3)

    from benchmark.metrics.fid import extractor

    inc = extractor({}, CPU).model
    w = torch.load(hub / "pyiqa/pt_inception-2015-12-05-6726825d.pth")
    assert torch.equal(inc.blocks[0][0].conv.weight, w["Conv2d_1a_3x3.conv.weight"].float())
    assert torch.equal(inc.blocks[3][1].branch3x3dbl_3a.conv.weight, w["Mixed_7b.branch3x3dbl_3a.conv.weight"].float())


@pytest.mark.parametrize("name", DEEP)
def test_batch_of_runs_equals_one_by_one(home, name):
    s = scorer(name)
    x, y = images(3), images(1, seed=1)
    if METRICS.get(name).kind == "FR":
        together, alone = s(x, y), torch.cat([s(b[None], y) for b in x])
    else:
        together, alone = s(x), torch.cat([s(b[None]) for b in x])
    assert together.shape == (3,) and together.dtype == torch.float64
    assert torch.allclose(together, alone, atol=1e-5, rtol=0)
    assert len(set(np.round(together.numpy(), 6))) > 1  # three different images, three different scores


@pytest.mark.parametrize("name", ["lpips", "dists"])
def test_full_reference_identity_is_zero(home, name):
    s = scorer(name)
    x = images(2)
    assert torch.allclose(s(x[:1], x[:1]), torch.zeros(1, dtype=torch.float64), atol=1e-5)
    assert float(s(x[1:], x[:1])[0]) > 1e-4


# ----------------------------------------------------------------------------- FID / KID


@pytest.fixture
def fast_frechet(monkeypatch):
    """Replace pyiqa's frechet_distance (scipy sqrtm of a 2048x2048 matrix: minutes on 2 busy
    cores) by the Frechet distance of the diagonal Gaussians, which still depends on both means
    and both covariances. Used where a test checks plumbing; pyiqa's own numerics are kept in
    the slow test_fid_equals_pyiqa_fid_on_the_same_folders.
    """
    import pyiqa.archs.fid_arch as fa

    def frechet(mu1, s1, mu2, s2, eps=1e-6):
        d1, d2 = np.diag(s1), np.diag(s2)
        return float(((mu1 - mu2) ** 2).sum() + d1.sum() + d2.sum() - 2 * np.sqrt(d1 * d2).sum())

    monkeypatch.setattr(fa, "frechet_distance", frechet)


@pytest.fixture
def folders(tmp_path):
    """Two folders of five 48x40 images with the same names (pyiqa's FID reads folders)."""
    out = {}
    for k, seed in (("sr", 3), ("hr", 4)):
        d = tmp_path / k
        d.mkdir()
        for i, img in enumerate(images(5, seed=seed)):
            Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(d / f"im{i}.png")
        out[k] = sorted(d.iterdir())
    return out


def _pyiqa_fid(home, folders, monkeypatch, mode: str = "clean") -> float:
    import pyiqa
    import pyiqa.utils.download_util as du

    # pyiqa fixed its cache folder at import time; point it at the random weights
    monkeypatch.setattr(du, "DEFAULT_CACHE_DIR", str(home / "hub" / "pyiqa"))
    ref = pyiqa.create_metric("fid", device=CPU)
    return float(ref(str(folders["sr"][0].parent), str(folders["hr"][0].parent), mode=mode,
                     num_workers=0, verbose=False))


def test_fid_options_mode_and_batch_size_against_pyiqa(home, folders, monkeypatch, fast_frechet):
    """metrics.fid.mode is pyiqa's FID ``mode``; metrics.fid.inception_batch_size changes no value (issue 12)."""
    legacy = scorer("fid", mode="legacy_tensorflow", inception_batch_size=2).score_set(folders["sr"], folders["hr"])
    assert legacy == pytest.approx(_pyiqa_fid(home, folders, monkeypatch, "legacy_tensorflow"), rel=1e-6, abs=1e-9)
    clean = scorer("fid", inception_batch_size=3).score_set(folders["sr"], folders["hr"])
    assert clean == pytest.approx(scorer("fid", inception_batch_size=16).score_set(folders["sr"], folders["hr"]), rel=1e-6)
    assert clean != pytest.approx(legacy, rel=1e-3)


def test_kid_options_equal_torch_fidelity_called_directly(home, folders):
    """metrics.kid.subsets / subset_size / seed are torch-fidelity's kid_subsets / kid_subset_size / rng_seed."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    from benchmark.metrics.fid import extractor

    ext = extractor({}, CPU)
    f_sr = torch.from_numpy(ext(folders["sr"]).astype(np.float64))
    f_hr = torch.from_numpy(ext(folders["hr"]).astype(np.float64))
    values = set()
    for subsets, size, seed in ((4, 3, 0), (4, 3, 1), (2, 4, 0)):
        want = kid_features_to_metric(f_sr, f_hr, kid_subsets=subsets, kid_subset_size=size, rng_seed=seed,
                                      verbose=False)[KEY_METRIC_KID_MEAN]
        got = scorer("kid", subsets=subsets, subset_size=size, seed=seed).score_set(folders["sr"], folders["hr"])
        assert got == pytest.approx(float(want), rel=1e-9)
        values.add(round(got, 12))
    assert len(values) == 3  # each option reaches the estimator


def test_fid_pipeline_equals_pyiqa_fid_on_the_same_folders(home, folders, monkeypatch, fast_frechet):
    """Same features, statistics and distance call as pyiqa's FID (the distance function is
    patched in both; the next, slow test keeps pyiqa's)."""
    expected = _pyiqa_fid(home, folders, monkeypatch)
    ours = scorer("fid").score_set(folders["sr"], folders["hr"])
    assert ours == pytest.approx(expected, rel=1e-6, abs=1e-9) and ours > 0


@pytest.mark.slow
def test_fid_equals_pyiqa_fid_on_the_same_folders(home, folders, monkeypatch):
    """End to end with pyiqa's own frechet_distance (two scipy sqrtm of 2048x2048: slow on 2 cores)."""
    expected = _pyiqa_fid(home, folders, monkeypatch)
    ours = scorer("fid").score_set(folders["sr"], folders["hr"])
    assert ours == pytest.approx(expected, rel=1e-6, abs=1e-9) and ours > 0


def test_resize_equals_pyiqa_resize_dataset(folders):
    from pyiqa.archs.fid_arch import ResizeDataset

    from benchmark.metrics.fid import resize_for_inception

    for mode in ("clean", "legacy_tensorflow"):
        want = ResizeDataset(folders["sr"][:2], mode=mode)[1]
        got = resize_for_inception(read_image(folders["sr"][1]), mode)
        assert got.shape == (3, 299, 299) and torch.equal(got, want), mode


def test_kid_equals_pyiqa_estimator_when_subsets_are_whole_sets(home, folders):
    """With subsets as large as the sets every draw is a permutation, so the estimators must agree."""
    from pyiqa.archs.fid_arch import mmd_polynomial_kernel

    from benchmark.metrics.fid import extractor

    ext = extractor({}, CPU)
    f_sr, f_hr = ext(folders["sr"]).astype(np.float64), ext(folders["hr"]).astype(np.float64)
    state = np.random.get_state()  # pyiqa draws from NumPy's global RNG; leave it as it was
    try:
        expected = mmd_polynomial_kernel(f_sr, f_hr, num_subsets=3)
    finally:
        np.random.set_state(state)
    kid = scorer("kid", subsets=3)
    assert kid.score_set(folders["sr"], folders["hr"]) == pytest.approx(expected, rel=1e-9)


def test_reference_features_are_cached_by_content(home, folders, monkeypatch, tmp_path):
    from benchmark.metrics import fid

    monkeypatch.setenv("SRBENCH_CACHE", str(tmp_path / "cache"))  # other tests cached the same images
    ext = fid.extractor({}, CPU)
    calls = []
    real_call = fid.InceptionFeatures.__call__
    monkeypatch.setattr(fid.InceptionFeatures, "__call__", lambda self, paths: calls.append(len(paths)) or
                        real_call(self, paths))
    first = ext.reference(folders["hr"])
    again = ext.reference(folders["hr"])
    assert calls == [5] and np.array_equal(first, again) and first.shape == (5, 2048)
    assert np.array_equal(first, real_call(ext, folders["hr"]))  # the cache holds the features themselves
    cache = Path(os.environ["SRBENCH_CACHE"]) / "fid_features" / ext.key
    assert len(list(cache.glob("*.npy"))) == 1
    # change one HR file's content: the cache key changes, the features are recomputed
    img = read_image(folders["hr"][0]).copy()
    img[0, 0] = 255 - img[0, 0]
    Image.fromarray(img).save(folders["hr"][0])
    ext.reference(folders["hr"])
    assert calls == [5, 5] and len(list(cache.glob("*.npy"))) == 2


def test_fid_warns_below_1000_images_and_needs_two(home, folders, caplog, fast_frechet):
    s = scorer("fid")
    with caplog.at_level(logging.WARNING, logger="srbench"):
        s.score_set(folders["sr"], folders["hr"])
    assert "biased" in caplog.text and "KID" in caplog.text
    with pytest.raises(ValueError, match="at least 2"):
        s.score_set(folders["sr"][:1], folders["hr"])


# ----------------------------------------------------------------------------- in the runner


def _data(tmp_path):
    return make_pairs(tmp_path / "d", ["a", "b", "c"], lr_size=(12, 14))


def test_runner_crop_policy_and_set_metrics(home, tmp_path, fast_frechet):
    lr, hr = _data(tmp_path)
    res = run_bench(["method=noise_control", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
                     "metrics=[lpips,musiq,fid]", "runs=2", "crop_border=4", f"output_dir={tmp_path / 'out'}"])
    root = folder_dir(tmp_path / "out", lr, hr) / "noise_control"
    import pandas as pd

    scores = pd.read_csv(root / "scores.csv")
    sr = torch.stack([to_tensor(read_image(root / "samples" / f"sample{r:02d}" / "b.png")) for r in range(2)])
    ref = to_tensor(read_image(hr / "b.png"))[None]
    c = slice(4, -4)
    want_lpips = scorer("lpips")(sr[..., c, c], ref[..., c, c])
    want_musiq = scorer("musiq")(sr)
    got = scores[scores.image == "b"].set_index(["metric", "run"])["value"]
    assert [got[("lpips", r)] for r in range(2)] == pytest.approx(want_lpips.tolist(), abs=1e-6)
    assert [got[("musiq", r)] for r in range(2)] == pytest.approx(want_musiq.tolist(), abs=1e-5)
    # the crop matters: uncropped LPIPS differs (so this test could fail)
    assert scorer("lpips")(sr, ref).tolist() != pytest.approx(want_lpips.tolist(), abs=1e-6)
    fid_rows = scores[scores.metric == "fid"]
    assert list(fid_rows.image) == ["*", "*"] and list(fid_rows.run) == [0, 1]
    m = res["metrics"]["fid"]
    assert m["gstd"] is None and m["mean"] == pytest.approx(fid_rows.value.mean())
    assert m["std_over_runs"] == pytest.approx(float(np.std(fid_rows.value.to_numpy())))


def test_paper_preset_offline_stops_before_generation_or_skips(home, tmp_path, monkeypatch, fast_frechet):
    lr, hr = _data(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = ["method=noise_control", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
            "metrics=paper", "runs=2", f"output_dir={tmp_path / 'out'}"]
    # NIQE's params file is not in the random TORCH_HOME: strict stops, naming it and the fetch command
    with pytest.raises(FileNotFoundError) as err:
        run_bench(base)
    msg = str(err.value)
    assert "niqe_modelparameters.mat" in msg and "HF_HUB_OFFLINE" in msg and "--download" in msg
    assert "curl -L" in msg and "lpips" not in msg.split("Fetch")[0]
    assert not folder_dir(tmp_path / "out", lr, hr).exists()  # nothing generated
    res = run_bench(base + ["strict=false"])
    assert set(res["skipped"]) == {"niqe"} and "niqe_modelparameters.mat" in res["skipped"]["niqe"]
    assert list(res["metrics"]) == ["psnr", "ssim", "lpips", "dists", "fid", "clipiqa", "musiq"]
    on_disk = json.loads((folder_dir(tmp_path / "out", lr, hr) / "noise_control" / "results.json").read_text())
    assert on_disk["skipped"] == res["skipped"]
    assert all(res["metrics"][n]["gstd"] is not None for n in ("lpips", "dists", "clipiqa", "musiq"))


def test_weights_dir_replaces_torch_home(random_home, tmp_path, monkeypatch):
    lr, hr = _data(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["method=noise_control", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
            "metrics=[dists]", "runs=2", f"output_dir={tmp_path / 'out'}"]
    with pytest.raises(FileNotFoundError, match="DISTS_weights"):
        run_bench(args)
    res = run_bench(args + [f"weights_dir={random_home}"])
    assert res["metrics"]["dists"]["mean"] is not None and not res["skipped"]


def test_missing_files_are_downloaded_when_online(random_home, tmp_path, monkeypatch):
    """With network the runner fetches what is missing (download stubbed by a local copy)."""
    import shutil

    import torch.hub

    from benchmark import weights

    lr, hr = _data(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(weights, "offline_reason", lambda urls, timeout=3.0: None)
    fetched = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        fetched.append((Path(dst).name, hash_prefix))
        sub = "checkpoints" if "download.pytorch.org" in url else "pyiqa"
        shutil.copy(random_home / "hub" / sub / Path(dst).name, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    res = run_bench(["method=noise_control", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
                     "metrics=[lpips]", "runs=2", f"output_dir={tmp_path / 'out'}"])
    assert sorted(fetched) == [("LPIPS_v0.1_alex-df73285e.pth", None), ("alexnet-owt-7be5be79.pth", "7be5be79")]
    assert res["metrics"]["lpips"]["mean"] is not None
