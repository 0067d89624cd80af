"""Contract tests: every registered method and metric through the same invariants.

Methods (``upscale``-style, :class:`methods.base.SRMethod`), on a real image crop:

* a batch of runs equals the same runs one at a time (seeds ``s, s+1, ...``);
* the same seed reproduces the output; a stochastic method gives different outputs for
  different seeds, a deterministic one the same;
* the output is ``[B, 3, scale*h, scale*w]``, finite, in [0, 1]; the global RNG is untouched.

Metrics (per image): a batch of N images scores as the N images one by one; values are finite;
the direction is right (a less distorted SR image scores better, as ``higher_is_better`` says).

Methods that need weights run on tiny random models saved in the released on-disk formats
(:data:`TINY_MODELS`). Sources that are not ``upscale``-style (precomputed outputs, official
repositories' commands) go through the sample-source contract instead (``produce(todo, sink)``
on a two-image data set): every (image, run) is stored at ``scale x`` the LR size, producing
run 0 first and the other runs later stores the same pixels as producing all at once, and runs
differ exactly when the source is stochastic. The official-repository presets need a clone of
their repository and its weights; they are skipped naming those files (their commands are
checked against fakes of each repository in test_external.py), and the generic ``external``
preset runs a small seeded script here. Metrics whose files are missing are skipped with the
file named. A new method or metric is
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
        pytest.skip(f"{name} ({cls.__name__}) is not upscale-style: test_source_contract[{name}] checks it")
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


# ----------------------------------------------------------------------------- sample sources

# the generic `external` preset's command here: bicubic x scale plus Gaussian noise drawn from --seed
SEEDED_SCRIPT = """
import os, sys
import numpy as np
from PIL import Image
inp, out, seed, scale = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(seed)
for name in sorted(os.listdir(inp)):
    img = Image.open(os.path.join(inp, name)).convert("RGB")
    up = np.asarray(img.resize((img.width * scale, img.height * scale), Image.BICUBIC)).astype(np.float64)
    Image.fromarray(np.clip(up + rng.normal(0, 6, up.shape), 0, 255).astype(np.uint8)).save(os.path.join(out, name))
"""


def contract_samples(root: Path, scale: int = 4) -> list:
    """Two LR images (16x16 crops of the astronaut, 8-bit PNG) as data-set samples."""
    from benchmark.data import Sample
    from benchmark.images import write_png_atomic

    out = []
    for i, left in enumerate((180, 260)):
        lr = lr_of(hr_crop(64, left=left), scale)[0]
        path = root / "LR" / f"img{i}.png"
        write_png_atomic(path, (lr.permute(1, 2, 0) * 255).round().byte().numpy())
        out.append(Sample(f"img{i}", path, None, (lr.shape[1], lr.shape[2])))
    return out


def source_settings(name: str, tmp: Path, samples: list, scale: int = 4) -> list[str]:
    """Overrides that make the non-upscale source ``name`` runnable here, or pytest.skip naming the files."""
    from benchmark.images import write_png_atomic
    from methods.external import External
    from methods.precomputed import Precomputed

    cls = METHODS.get(name)
    if cls is Precomputed:  # three run folders of outputs, as the official CCSR scripts write them
        g = np.random.default_rng(0)
        for r in range(3):
            for smp in samples:
                h, w = smp.lr_size
                write_png_atomic(tmp / "pre" / f"sample{r:02d}" / f"{smp.id}.png",
                                 g.integers(0, 256, (h * scale, w * scale, 3), dtype=np.uint8))
        return [f"method.path={tmp / 'pre'}"]
    if cls is External and name == "external":
        (tmp / "seeded.py").write_text(SEEDED_SCRIPT)
        return [f"method.cmd='{{python}} {tmp / 'seeded.py'} {{input_dir}} {{output_dir}} {{seed}} {{scale}}'"]
    cfg = OmegaConf.to_container(compose([f"method={name}"]).method, resolve=False)
    if cls is External:
        files = ", ".join(f"{v} (method.weights.{k})" for k, v in (cfg.get("weights") or {}).items()) or "none"
        pytest.skip(f"{name} runs its official repository's script: it needs method.repo (a clone of the repository "
                    f"named in conf/method/{name}.yaml) and the weight files {files}; its command, output names and "
                    f"seeding are checked against a fake of the repository in test_external.py")
    pytest.skip(f"{name} ({cls.__name__}) has no fixture in tests/contracts.py source_settings: add one")


def produce(method, samples: list, runs: int, seed: int | None, root: Path, which: list[int]) -> None:
    """``method.produce`` of runs ``which`` of every sample into the store under ``root``."""
    from benchmark.sink import SampleSink, Todo
    from benchmark.store import Store

    sink = SampleSink(Store(root, "contract", method.name), method, seed if method.seeded else None, {},
                      samples=samples)
    try:
        method.produce(Todo(samples, runs, {s.id: list(which) for s in samples}, batch_size=runs), sink)
    finally:
        sink.close()


def check_source(method, samples: list, tmp: Path, seed: int = 11) -> None:
    """The sample-source invariants of the module docstring (``method`` built, not loaded)."""
    from benchmark.images import read_image
    from benchmark.store import Store

    runs = method.fixed_runs() or (3 if method.stochastic else 2)
    produce(method, samples, runs, seed, tmp / "all", list(range(runs)))
    produce(method, samples, runs, seed, tmp / "split", [0])
    produce(method, samples, runs, seed, tmp / "split", list(range(1, runs)))
    stored = {}
    for where in ("all", "split"):
        store = Store(tmp / where, "contract", method.name)
        stored[where] = {(s.id, r): read_image(store.sample_path(s.id, r)) for s in samples for r in range(runs)}
    for (sid, r), arr in stored["all"].items():
        smp = next(s for s in samples if s.id == sid)
        assert arr.shape == (smp.lr_size[0] * method.scale, smp.lr_size[1] * method.scale, 3), (sid, r)
        assert np.array_equal(arr, stored["split"][sid, r]), f"{method.name}: run {r} of {sid} depends on the runs " \
                                                             f"produced with it"
    differ = not np.array_equal(stored["all"][samples[0].id, 0], stored["all"][samples[0].id, 1])
    assert differ == method.stochastic, (f"{method.name}: stochastic={method.stochastic} but runs "
                                         f"{'differ' if differ else 'are equal'}")


# upscale-style methods are checked by test_method_contract (SRMethod.produce is one shared implementation)
@pytest.mark.parametrize("name", [n for n in METHODS.names() if not issubclass(METHODS.get(n), SRMethod)])
def test_source_contract(name, tmp_path):
    samples = contract_samples(tmp_path / "data")
    cfg = compose([f"method={name}", *source_settings(name, tmp_path, samples)])
    check_source(build(cfg.method), samples, tmp_path / "out")


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
