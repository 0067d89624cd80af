"""srbench's pyiqa wrappers (benchmark/metrics/pyiqa_metrics.py) in-process, each fact against pyiqa or
torch themselves: PSNR's cap, batches and per-run HR scored as pyiqa scores each image, float64 output,
where NIQE's pristine-model file is looked for and how an ``.npz`` becomes the ``.mat`` pyiqa reads.

Fast unit tests (the metric values on real images are in test_metrics_calibration.py and
test_fast_exact.py); benchmarks/mutation.py runs them for pyiqa_metrics' mutants."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.metrics import METRICS
from benchmark.metrics import pyiqa_metrics as pm
from conftest import NIQE_NPZ, requires

CPU = torch.device("cpu")


def runs_of(hr: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return ((hr + 0.05 * torch.randn(n, *hr.shape[1:], generator=g)).clamp(0, 1) * 255).round() / 255


def image(h: int, w: int, seed: int, n: int = 1) -> torch.Tensor:
    return (torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 255).round() / 255


def test_psnr_eps_and_cap_are_what_pyiqa_gives_identical_images():
    import pyiqa

    x = image(32, 40, seed=1)
    identical = float(pyiqa.create_metric("psnr", device=CPU)(x, x))
    assert pm._pyiqa_psnr_eps() == pytest.approx(1e-8, rel=1e-12)  # pyiqa's psnr(..., eps=1e-8)
    assert 10 * math.log10(1 / pm._pyiqa_psnr_eps()) == pytest.approx(identical, abs=1e-4)
    assert pm.PSNR_CAP == pytest.approx(80.0, abs=1e-9)
    assert float(METRICS.get("psnr").factory({}, CPU)(x, x)[0]) == pytest.approx(pm.PSNR_CAP, abs=1e-4)


def test_psnr_of_a_batch_is_pyiqa_called_on_each_image():
    """pyiqa reduces PSNR in float32, and with 2 intra-op threads a batch of these 200x208 images differs
    from the images scored one by one by 2e-6 dB (torch 2.x on x86: the split of the reduction depends on
    the thread count; with one thread they agree, so under benchmarks/mutation.py, which runs tests with
    OMP_NUM_THREADS=1, a batched PSNR is equivalent). srbench's PSNR equals pyiqa called per image, for
    one HR or one HR per run. The thread count is not set here: a forked mutmut child would hang in OpenMP."""
    import pyiqa

    ref = pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr", device=CPU)
    g = torch.Generator().manual_seed(2)
    hr = (torch.rand(1, 3, 200, 208, generator=g) * 255).round() / 255
    sr = ((hr + 0.05 * torch.randn(6, 3, 200, 208, generator=g)).clamp(0, 1) * 255).round() / 255
    hrs = torch.cat([hr, runs_of(hr, 5, seed=4)])
    psnr = METRICS.get("psnr").factory({}, CPU)
    for target in (hr, hrs):
        per_image = torch.cat([ref(s[None], target[i % target.shape[0]][None]).reshape(1) for i, s in enumerate(sr)])
        ours = psnr(sr, target)
        assert ours.dtype == torch.float64 and ours.shape == (6,)
        assert torch.equal(ours, per_image.to(torch.float64))


def test_pyiqa_backend_ssim_scores_each_run_against_its_own_hr():
    import pyiqa

    hr = image(24, 30, seed=5, n=3)
    sr = runs_of(hr[:1], 3, seed=6)
    ours = METRICS.get("ssim").factory({"backend": "pyiqa"}, CPU)(sr, hr)
    ref = pyiqa.create_metric("ssim", test_y_channel=True, color_space="ycbcr", device=CPU)
    assert ours.dtype == torch.float64 and ours.shape == (3,)
    assert torch.allclose(ours, torch.cat([ref(s[None], h[None]).reshape(1) for s, h in zip(sr, hr)]).double(),
                          atol=1e-7, rtol=0)


def test_niqe_params_file_is_the_option_or_pyiqas_cache(tmp_path, monkeypatch):
    """pyiqa downloads into torch.hub's directory + ``pyiqa`` (its ``DEFAULT_CACHE_DIR``); torch.hub's
    directory is ``$TORCH_HOME/hub``. ``params_path`` (typed or raw) wins, with ``~`` expanded."""
    import importlib

    import pyiqa.utils.download_util as download_util

    # pyiqa computes DEFAULT_CACHE_DIR when it is imported, from the TORCH_HOME of that moment:
    # recompute it with pyiqa's own code for an environment without TORCH_HOME
    monkeypatch.delenv("TORCH_HOME", raising=False)
    DEFAULT_CACHE_DIR = importlib.reload(download_util).DEFAULT_CACHE_DIR

    assert pm.pyiqa_cache_dir() == Path(DEFAULT_CACHE_DIR)
    assert pm.niqe_params_file({}) == Path(DEFAULT_CACHE_DIR) / "niqe_modelparameters.mat"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    cache = tmp_path / "th" / "hub" / "pyiqa"
    assert pm.pyiqa_cache_dir() == cache
    assert pm.niqe_params_file({}) == pm.niqe_params_file(pm.NIQEOptions()) == cache / "niqe_modelparameters.mat"
    assert pm.niqe_params_file({"params_path": None}) == cache / "niqe_modelparameters.mat"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    want = tmp_path / "home" / "p.mat"
    assert pm.niqe_params_file({"params_path": "~/p.mat"}) == want
    assert pm.niqe_params_file(pm.NIQEOptions(params_path="~/p.mat")) == want
    (w,) = METRICS.get("niqe").weights({"params_path": "~/p.mat"})
    assert (w.name, w.path, w.needed_by) == ("niqe_modelparameters.mat", want, "niqe")
    from pyiqa.archs.niqe_arch import default_model_urls

    assert w.url == default_model_urls["niqe"]  # the file pyiqa itself downloads
    (w,) = METRICS.get("niqe").weights({})
    assert w.path == cache / "niqe_modelparameters.mat" and not w.present


def test_niqe_npz_becomes_the_mat_file_pyiqa_reads(tmp_path):
    """Each ``.npz`` (any case of the suffix) is converted once into its own ``.mat`` with pyiqa's keys
    ``mu_prisparam`` / ``cov_prisparam``; a ``.mat`` is used as it is; an ``.npz`` lacking a key is refused."""
    import scipy.io

    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.npz", tmp_path / "B.NPZ"
    arrays = {}
    for path in (a, b):
        arrays[path] = (rng.random(36), rng.random((36, 36)))
        with open(path, "wb") as fh:  # np.savez would add ".npz" to "B.NPZ"
            np.savez(fh, mu_pris_param=arrays[path][0], cov_pris_param=arrays[path][1])
    outs = [pm._niqe_mat(p) for p in (a, b)]
    assert outs[0] != outs[1] and all(o.suffix == ".mat" and o.is_file() for o in outs)
    for path, out in zip((a, b), outs):
        mat = scipy.io.loadmat(out)
        assert np.array_equal(np.ravel(mat["mu_prisparam"]), arrays[path][0])
        assert np.array_equal(mat["cov_prisparam"], arrays[path][1])
    stamp = outs[0].stat().st_mtime_ns
    assert pm._niqe_mat(a) == outs[0] and outs[0].stat().st_mtime_ns == stamp  # converted once
    assert pm._niqe_mat(tmp_path / "x.mat") == tmp_path / "x.mat"
    np.savez(tmp_path / "bad.npz", mu_pris_param=np.zeros(3))
    with pytest.raises(ValueError, match=r"lacks \['cov_pris_param'\]"):
        pm._niqe_mat(tmp_path / "bad.npz")


@requires(NIQE_NPZ)
def test_niqe_backends_are_the_fast_one_and_pyiqa_and_missing_files_are_named(tmp_path):
    from benchmark.metrics.fast_exact import FastNIQE

    spec = METRICS.get("niqe")
    assert isinstance(spec.factory({"params_path": str(NIQE_NPZ)}, CPU), FastNIQE)
    scorer = spec.factory({"params_path": str(NIQE_NPZ), "backend": "pyiqa"}, CPU)
    assert isinstance(scorer, pm._PyiqaScorer) and not scorer.full_reference
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        spec.factory({"params_path": str(tmp_path / "absent.npz")}, CPU)
