"""Contract tests: every registered method and metric through the same invariants.

Methods (``upscale``-style, :class:`methods.base.SRMethod`), on a real image crop:

* a batch of runs equals the same runs one at a time (seeds ``s, s+1, ...``);
* the same seed reproduces the output; a stochastic method gives different outputs for
  different seeds, a deterministic one the same;
* the output is ``[B, 3, scale*h, scale*w]``, finite, in [0, 1]; the global RNG is untouched.

Metrics (per image): a batch of N images scores as the N images one by one; values are finite;
the direction is right (a less distorted SR image scores better, as ``higher_is_better`` says).

Methods that need real weights, or that are not ``upscale``-style (precomputed outputs, official
repositories' commands: their ``produce`` is tested in test_runner.py and test_external.py), and
metrics whose files are missing are skipped with the reason named. A new method or metric is
picked up here without editing this file (``extra_methods`` / ``extra_metrics`` below let a test
run the invariants on its own additions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from benchmark.config import build
from benchmark.images import to_tensor
from benchmark.metrics import METRICS, MetricSpec
from conftest import ROOT, compose
from methods import METHODS, SRMethod

NIQE_PARAMS = ROOT.parent / "shared" / "data" / "niqe_pris_params.npz"


def hr_crop(size: int = 64, top: int = 60, left: int = 180) -> torch.Tensor:
    """A natural RGB crop [1, 3, size, size] in [0, 1] at 8-bit levels (scikit-image's astronaut)."""
    import skimage.data

    return to_tensor(skimage.data.astronaut()[top:top + size, left:left + size]).unsqueeze(0)


def lr_of(hr: torch.Tensor, scale: int = 4) -> torch.Tensor:
    lr = torch.nn.functional.interpolate(hr, scale_factor=1 / scale, mode="bicubic", antialias=True)
    return (lr.clamp(0, 1) * 255).round() / 255


# ----------------------------------------------------------------------------- methods


def _tiny_ccsr(name: str, tmp: Path) -> dict:
    from benchmarks.make_tiny_ccsr import build_tiny_ccsr

    sd, cc = build_tiny_ccsr(tmp / "ccsr")
    # process_size 64: the 16x16 LR crop is processed at 64x64 (8x8 latent), not resized up to 512
    return {"sd_path": str(sd), "ccsr_path": str(cc), "process_size": 64}


def _tiny_gan(name: str, tmp: Path) -> dict:
    from baseline_models import make_rrdb, make_swinir

    if name == "swinir":  # the preset declares architecture SwinIR: an RRDB file is (rightly) refused
        make_swinir(tmp / "swinir.pth")
        return {"model_path": str(tmp / "swinir.pth")}
    make_rrdb(tmp / "rrdb.pth")
    return {"model_path": str(tmp / "rrdb.pth")}


def _tiny_dasr(name: str, tmp: Path) -> dict:
    from baseline_models import make_dasr

    g, p = make_dasr(tmp / "dasr")
    return {"model_path": str(g), "predictor_path": str(p)}


def _tiny_ldm_sr(name: str, tmp: Path) -> dict:
    from baseline_models import make_ldm_sr

    return {"model_path": str(make_ldm_sr(tmp / "ldm_sr")), "steps": 3}  # 3 of the preset's 200 steps: seconds


def _tiny_sd_upscaler(name: str, tmp: Path) -> dict:
    from baseline_models import make_sd_upscaler

    return {"model_path": str(make_sd_upscaler(tmp / "sd_upscaler")), "steps": 3}


#: method class -> writer of tiny random models in the released on-disk formats (the same files
#: the real weights are: spandrel checkpoints, DASR's two .pth files, diffusers save_pretrained
#: folders, CCSR's official folders) and any setting that keeps the run small; returns config overrides
TINY_MODELS: dict[str, Callable[[str, Path], dict]] = {
    "CCSR": _tiny_ccsr, "GANCheckpoint": _tiny_gan, "DASR": _tiny_dasr, "LDMSR": _tiny_ldm_sr,
    "SDUpscaler": _tiny_sd_upscaler,
}


#: method class -> how many 8-bit levels a run may move when batched: CCSR's official post-processing rounds,
#: and truncates in the colour fix, its float output to 8 bits (methods/ccsr.py), so a float difference of
#: ~1e-6 between batched and single network calls can flip a level (tests/test_ccsr.py checks the sampler
#: before that step to 1e-5); at most 1% of the values may move, each by at most this many levels
EIGHT_BIT_OUTPUT: dict[str, int] = {"CCSR": 2}


def _checkpoints(name: str, tmp: Path) -> dict:
    """Config overrides pointing method ``name`` at tiny random models (empty: it needs no weights)."""
    make = TINY_MODELS.get(METHODS.get(name).__name__)
    return make(name, tmp) if make else {}


def build_method(name: str, tmp: Path) -> SRMethod:
    """The registered method ``name`` from its config, or pytest.skip naming why it cannot run here."""
    cls = METHODS.get(name)
    if not issubclass(cls, SRMethod):
        pytest.skip(f"{name} ({cls.__name__}) is not upscale-style; its produce() contract is tested in "
                    f"test_runner.py / test_external.py")
    cfg = compose([f"method={name}"])
    OmegaConf.set_struct(cfg, False)
    for key, value in _checkpoints(name, tmp).items():
        cfg.method[key] = value
    missing = [k for k in cfg.method.keys() if OmegaConf.is_missing(cfg.method, k)]
    if missing:
        pytest.skip(f"{name} needs real weights ({', '.join(f'method.{k}' for k in missing)}); tiny-model tests of "
                    f"its class live in its own test file")
    absent = [f"method.{src['key']}={cfg.method.get(src['key'])}" for src in (cfg.method.get("sources") or [])
              if src.get("key") in cfg.method and not Path(str(cfg.method.get(src["key"]))).exists()]
    if absent:  # declared weight files not downloaded (python -m benchmark weights method=<name> --download)
        pytest.skip(f"{name} needs {', '.join(absent)}; tiny-model tests of its class live in its own test file")
    try:
        method = build(cfg.method)
        method.load(torch.device("cpu"))
    except FileNotFoundError as err:  # weights neither local nor cached (no network here)
        pytest.skip(f"{name} needs files that are not here: {str(err).splitlines()[0][:300]}")
    return method


def check_method(method: SRMethod) -> None:
    """The method invariants of the module docstring (``method`` loaded)."""
    lr = lr_of(hr_crop(), method.scale)
    seeds = [11, 12, 13]
    gens = lambda ss: [torch.Generator().manual_seed(s) for s in ss]  # noqa: E731
    rng = torch.get_rng_state()
    with torch.inference_mode():
        batch = method.upscale(lr.expand(3, -1, -1, -1).contiguous(), gens(seeds))
        ones = torch.cat([method.upscale(lr.clone(), gens([s])) for s in seeds])
        again = method.upscale(lr.clone(), gens([seeds[0]]))
    assert torch.equal(torch.get_rng_state(), rng), f"{method.name} touched the global RNG"
    h, w = lr.shape[-2:]
    assert tuple(batch.shape) == (3, 3, h * method.scale, w * method.scale)
    assert torch.isfinite(batch).all() and float(batch.min()) >= 0 and float(batch.max()) <= 1
    levels = EIGHT_BIT_OUTPUT.get(type(method).__name__)
    if levels is None:
        torch.testing.assert_close(batch, ones, atol=2e-5, rtol=0)  # batching does not change a run
    else:  # float noise of the batched networks may flip a rounding of the 8-bit post-processing, nothing more
        diff = (batch - ones).abs()
        moved = float((diff > 2e-5).float().mean())
        assert float(diff.max()) <= levels / 255 + 1e-6, f"{method.name}: a batched run moved {float(diff.max()) * 255:.1f} levels"
        assert moved <= 0.01, f"{method.name}: batching changed {moved:.2%} of the values"
    torch.testing.assert_close(again, ones[:1], atol=0, rtol=0)  # a seed reproduces its run
    differ = not torch.equal(ones[0], ones[1])
    assert differ == method.stochastic, (f"{method.name}: stochastic={method.stochastic} but seeds "
                                         f"{'give different' if differ else 'give the same'} outputs")


@pytest.mark.parametrize("name", METHODS.names())
def test_method_contract(name, tmp_path):
    check_method(build_method(name, tmp_path))


# ----------------------------------------------------------------------------- metrics


def metric_options(name: str) -> dict:
    """Options that let a metric run here, or pytest.skip naming the missing file."""
    spec = METRICS.get(name)
    options: dict = {}
    if name == "niqe":
        if not NIQE_PARAMS.is_file():
            pytest.skip(f"niqe needs {NIQE_PARAMS}")
        options["params_path"] = str(NIQE_PARAMS)
    absent = [w for w in spec.weights(options) if not w.present]
    if absent:
        pytest.skip(f"{name} needs {', '.join(str(w.path) for w in absent)} (python -m benchmark weights "
                    f"metrics=[{name}] --download); random-weight checks live in test_deep_metrics.py")
    return options


def check_metric(spec: MetricSpec, options: dict) -> None:
    """The metric invariants of the module docstring (per-image metrics)."""
    scorer = spec.factory(options, torch.device("cpu"))
    hr = hr_crop(96)
    g = torch.Generator().manual_seed(0)
    sigmas = [0.02, 0.06, 0.12]
    sr = torch.cat([((hr + s * torch.randn(hr.shape, generator=g)).clamp(0, 1) * 255).round() / 255 for s in sigmas])
    call: Callable[[torch.Tensor], torch.Tensor] = (lambda x: scorer(x, hr)) if spec.kind == "FR" else scorer
    with torch.inference_mode():
        batch = np.asarray([float(v) for v in call(sr)])
        ones = np.asarray([float(call(sr[i:i + 1])[0]) for i in range(len(sigmas))])
    assert np.isfinite(batch).all()
    np.testing.assert_allclose(batch, ones, rtol=1e-5, atol=1e-6)  # batch equals one by one
    better_first = batch[0] > batch[-1] if spec.higher_is_better else batch[0] < batch[-1]
    assert better_first, f"{spec.name}: less noise should score better (higher_is_better={spec.higher_is_better}), " \
                         f"got {batch} for noise {sigmas}"


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_contract(name):
    spec = METRICS.get(name)
    if spec.kind == "set":
        pytest.skip(f"{name} is a set-level metric (one value per run); tested in test_deep_metrics.py")
    check_metric(spec, metric_options(name))
