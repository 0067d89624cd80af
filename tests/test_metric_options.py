"""Metric specs and typed options (issue 12): facts equal pyiqa's, every option is declared in
its config file (settable without ``+``), refused when invalid before any work, and applied:
each option's value is checked against pyiqa called directly with that option."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
from omegaconf import OmegaConf

from benchmark.metrics import METRICS, resolve
from benchmark.metrics.options import PYIQA_COLOR_SPACES, schema
from conftest import NIQE_NPZ, ROOT, compose, requires

CPU = torch.device("cpu")


def images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, h, w, generator=g) * 255).round() / 255  # 8-bit levels, as decoded files


def pair(h: int = 48, w: int = 56, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """An HR image and a degraded SR of it (noise + blur), so FR metrics are far from their extremes."""
    hr = images(1, h, w, seed)
    g = torch.Generator().manual_seed(seed + 1)
    sr = torch.nn.functional.avg_pool2d(hr, 3, stride=1, padding=1) + 0.05 * torch.randn(hr.shape, generator=g)
    return (sr.clamp(0, 1) * 255).round() / 255, hr


# ----------------------------------------------------------------------------- facts


def test_spec_label_defaults_and_options_are_typed_before_factory_and_weights():
    """A MetricSpec built here (the registered ones are built at import): the label defaults to the
    name in capitals, and factory and weights receive the typed, validated options."""
    from dataclasses import dataclass

    from benchmark.metrics import MetricSpec
    from benchmark.metrics.options import MetricOptions, option

    @dataclass(frozen=True)
    class ToyOptions(MetricOptions):
        size: int = option(3, "a size", minimum=1)

    seen = []
    spec = MetricSpec("toy", "NR", False, False, "test", lambda o, d: seen.append(("factory", o, d)) or "scorer",
                      weights=lambda o: seen.append(("weights", o)) or [], options=ToyOptions)
    assert spec.label == "TOY" and MetricSpec("toy", "NR", False, False, "t", print, label="Toy").label == "Toy"
    assert spec.factory({"size": 5}, CPU) == "scorer" and spec.weights({}) == []
    assert seen == [("factory", ToyOptions(size=5), CPU), ("weights", ToyOptions(size=3))]
    with pytest.raises(ValueError, match="size"):
        spec.factory({"size": 0}, CPU)  # below the minimum: refused before the factory runs
    with pytest.raises(ValueError, match="colour"):
        spec.weights({"colour": 1})
    assert len(seen) == 2


@pytest.mark.parametrize("crop, h, w, border, why", [
    (True, 15, 20, 2, None),  # 11x16 seen after cropping 2 px on each side: exactly the minimum
    (True, 14, 20, 2, "undefined below 11x11 px (a window); the image is 16x10 after crop_border=2"),
    (True, 20, 14, 2, "undefined below 11x11 px (a window); the image is 10x16 after crop_border=2"),
    (False, 11, 11, 4, None),  # a metric that does not crop sees the whole image
    (False, 10, 30, 4, "undefined below 11x11 px (a window); the image is 30x10"),
    (True, 10, 30, 0, "undefined below 11x11 px (a window); the image is 30x10"),
])
def test_too_small_is_judged_on_what_the_metric_sees(crop, h, w, border, why):
    from benchmark.metrics import MetricSpec

    spec = MetricSpec("m", "FR", True, crop, "t", print, min_size=11, min_size_why="a window")
    assert spec.too_small(h, w, border) == why
    plain = MetricSpec("m", "FR", True, crop, "t", print, min_size=11)
    assert plain.too_small(h, w, border) == (None if why is None else why.replace(" (a window)", ""))



def test_every_direction_and_kind_equals_pyiqa():
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    for name in METRICS.names():
        spec = METRICS.get(name)
        if name == "kid":  # not a pyiqa metric (torch-fidelity's estimator); lower is better as for FID
            assert spec.pyiqa_name is None and spec.kind == "set" and not spec.higher_is_better
            continue
        cfg = DEFAULT_CONFIGS[spec.pyiqa_name]
        assert spec.higher_is_better is (not cfg.get("lower_better", False)), name
        # pyiqa files FID as NR (two folders, no pairs); srbench scores it per run: "set"
        assert (spec.kind if spec.kind != "set" else "NR") == cfg["metric_mode"], name


def test_psnr_ssim_niqe_crop_size_cap_and_flatness_facts_are_pyiqas():
    """The facts the runner acts on: PSNR and SSIM after the border crop, NIQE on the whole image
    (DESIGN.md); SSIM undefined below pyiqa's 11x11 window (pyiqa scores 11 px and refuses 10),
    NIQE below its 96x96 block (pyiqa's ``niqe(block_size_h=96, block_size_w=96)``); PSNR saturates at
    pyiqa's value for identical images; only NIQE is undefined on a flat image."""
    import inspect

    import pyiqa
    from pyiqa.archs.niqe_arch import niqe

    psnr, ssim, nq = (METRICS.get(n) for n in ("psnr", "ssim", "niqe"))
    assert (psnr.crop, ssim.crop, nq.crop) == (True, True, False)
    ref = pyiqa.create_metric("ssim", test_y_channel=True, color_space="ycbcr", device=CPU)
    sr, hr = images(1, ssim.min_size, ssim.min_size, seed=1), images(1, ssim.min_size, ssim.min_size, seed=2)
    assert bool(torch.isfinite(ref(sr, hr)).all())
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        ref(sr[..., 1:, 1:], hr[..., 1:, 1:])
    sig = inspect.signature(niqe).parameters
    assert nq.min_size == sig["block_size_h"].default == sig["block_size_w"].default == 96
    x = images(1, 16, 16, seed=3)
    assert psnr.cap == pytest.approx(float(pyiqa.create_metric("psnr", device=CPU)(x, x)), abs=1e-4)
    assert ssim.cap is None and nq.cap is None
    assert (psnr.flat_undefined, ssim.flat_undefined, nq.flat_undefined) == (False, False, True)


def test_every_config_file_declares_exactly_the_schema_with_its_defaults():
    for name in METRICS.names():
        raw = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "metrics" / f"{name}.yaml"))
        declared = dict(raw[name])
        assert declared.pop("optional") is False, name
        want = {o.name: o.default for o in schema(METRICS.get(name).options)}
        assert declared == want, name
        assert METRICS.get(name).parse(declared) == METRICS.get(name).options(), name


def test_a_python_list_of_names_resolves_like_the_metric_files():
    """From Python, ``resolve([...])`` merges one file per name, as ``metrics=[psnr,niqe]`` does in Hydra."""
    sel = resolve(["psnr", "niqe"])
    assert sel.names == ("psnr", "niqe") and sel.optional == frozenset()
    assert sel.options == {"psnr": METRICS.get("psnr").options(), "niqe": METRICS.get("niqe").options()}
    assert resolve(("ssim",)).names == ("ssim",)
    # a mapping from Python: a metric is required unless it says optional: true
    assert resolve({"psnr": {}, "niqe": {"optional": True}}).optional == frozenset({"niqe"})
    with pytest.raises(ValueError, match=r"metrics\.psnr\.optional='yes': invalid value; allowed: true or false"):
        resolve({"psnr": {"optional": "yes"}})


def test_option_problems_lists_each_problem_of_a_config_as_resolve_finds_it():
    """``option_problems`` (preflight, ``list``): one line per problem, interpolations of a DictConfig
    resolved against its root first, the empty selection and an unknown metric as one line each."""
    from benchmark.metrics import option_problems

    cfg = OmegaConf.create({"metrics": {"psnr": {"color_space": "${cs}"}, "lpips": {"net": "resnet"}}, "cs": "ycrcb"})
    lines = option_problems(cfg.metrics)
    assert len(lines) == 2
    assert "metrics.psnr.color_space='ycrcb'" in lines[0] and "yiq, ycbcr, lhm" in lines[0]
    assert "metrics.lpips.net='resnet'" in lines[1]
    assert option_problems(OmegaConf.create({"psnr": {}, "niqe": {"optional": True}})) == []
    assert option_problems({"ssim": {"backend": "fast"}}) == []
    (empty,) = option_problems({})
    assert empty.startswith("metrics is empty")
    (unknown,) = option_problems({"psnrr": {}})
    assert "unknown metric 'psnrr'" in unknown and "psnr" in unknown
    # one problem: its line alone, without resolve's "invalid metric options:" header
    (one,) = option_problems({"psnr": {"color_space": "rgb2"}})
    assert one.startswith("metrics.psnr.color_space='rgb2'") and "invalid metric options" not in one


def test_a_metric_file_with_interpolations_is_resolved_like_hydra_resolves_it(tmp_path, monkeypatch):
    """A metrics file of a user's config folder ($SRBENCH_CONF) may use OmegaConf resolvers, as Hydra
    resolves them when it composes ``cfg.metrics``; loaded by name from Python it gives the same options."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    (conf / "metrics" / "from_env.yaml").write_text(
        "defaults:\n  - psnr\n  - _self_\npsnr:\n  color_space: ${oc.env:SRBENCH_TEST_COLOUR_SPACE}\n")
    monkeypatch.setenv("SRBENCH_CONF", str(conf))
    monkeypatch.setenv("SRBENCH_TEST_COLOUR_SPACE", "yiq")
    sel = resolve("from_env")
    assert sel.names == ("psnr",) and sel.options["psnr"].color_space == "yiq"


def test_preset_names_are_the_files_of_conf_metrics():
    from benchmark.metrics import preset_names

    files = sorted(p.stem for p in (ROOT / "conf" / "metrics").glob("*.yaml"))
    assert sorted(preset_names()) == files
    assert {"fast", "paper", *METRICS.names()} <= set(preset_names())


def test_a_metric_module_named_by_its_yaml_is_imported_and_registers_at_test_time(tmp_path, monkeypatch):
    """``_module_`` (a metric srbench does not ship): the module is imported when the metric is not
    registered yet, its ``register`` call adds the spec, and the key never reaches the options; for a
    registered metric the module is not imported at all."""
    import sys

    from benchmark.metrics import register

    mod = "srbench_toy_metric_for_tests"
    (tmp_path / f"{mod}.py").write_text(
        "from dataclasses import dataclass\n"
        "from benchmark.metrics import MetricSpec, register\n"
        "from benchmark.metrics.options import MetricOptions, option\n"
        "@dataclass(frozen=True)\n"
        "class ToyOptions(MetricOptions):\n"
        "    size: int = option(3, 'a size', minimum=1)\n"
        "SPEC = register(MetricSpec('toy_from_yaml', 'NR', False, False, 't', lambda o, d: o, options=ToyOptions))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        sel = resolve({"toy_from_yaml": {"_module_": mod, "size": 5, "optional": True}})
        spec = METRICS.get("toy_from_yaml")
        assert spec is sys.modules[mod].SPEC and sel.names == ("toy_from_yaml",)
        assert sel.optional == {"toy_from_yaml"} and sel.options["toy_from_yaml"] == spec.options(size=5)
        assert register(spec) is spec  # the same object again is no second registration
        with pytest.raises(ValueError, match="registered twice"):
            register(dataclasses.replace(spec))
        # registered already: the module named is not imported (it does not exist)
        assert resolve({"psnr": {"_module_": "no_such_module_for_srbench"}}).names == ("psnr",)
    finally:
        METRICS._items.pop("toy_from_yaml", None)
        sys.modules.pop(mod, None)


def test_presets_use_the_metric_files_and_keep_their_defaults():
    fast = resolve("fast")
    assert fast.names == ("psnr", "ssim", "niqe") and fast.optional == {"niqe"}
    paper = resolve("paper")
    assert set(paper.names) == {"psnr", "ssim", "lpips", "dists", "fid", "niqe", "clipiqa", "musiq"}
    assert all(paper.options[n] == METRICS.get(n).options() for n in paper.names)


def _a_different_value(info):
    if info.choices:
        return next(c for c in info.choices if c != info.default)
    if info.type is bool:
        return not info.default
    if info.type is int:
        return info.default + 1
    return "/tmp/x.mat"  # Optional[str]: params_path


@pytest.mark.parametrize("name", sorted(["psnr", "ssim", "niqe", "lpips", "dists", "clipiqa", "musiq", "fid", "kid"]))
def test_every_option_is_settable_without_plus(name):
    for info in schema(METRICS.get(name).options):
        value = _a_different_value(info)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        for preset in ([f"metrics=[{name}]"], ["metrics=paper"] if name != "kid" else []):
            if not preset:
                continue
            cfg = compose(preset + [f"metrics.{name}.{info.name}={text}"])
            opts = resolve(OmegaConf.to_container(cfg.metrics)).options[name]
            assert getattr(opts, info.name) == value, (name, info.name)
    # the README's example, which used to fail with "Could not override"
    cfg = compose(["metrics.ssim.backend=pyiqa"])
    assert resolve(OmegaConf.to_container(cfg.metrics)).options["ssim"].backend == "pyiqa"


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("metric, option, value, allowed", [
    ("psnr", "color_space", "ycrcb", "yiq, ycbcr, lhm"),
    ("ssim", "color_space", "RGB", "yiq, ycbcr, lhm"),
    ("ssim", "backend", "gpu", "fast, pyiqa"),
    ("niqe", "backend", "cuda", "fast, pyiqa"),
    ("lpips", "net", "resnet", "alex, vgg, squeeze"),
    ("lpips", "version", "0.2", "0.0, 0.1"),
    ("musiq", "pretrained", "imagenet", "koniq10k, spaq, paq2piq, ava"),
    ("fid", "inception_batch_size", -1, "an integer >= 1"),
    ("kid", "subsets", 0, "an integer >= 1"),
    ("fid", "mode", "tf", "clean, legacy_tensorflow"),
    ("ssim", "downsample", "maybe", "true or false"),
    ("psnr", "y_channel", 1, "true or false"),
    ("ssim", "no_such_option", 1, "backend, y_channel, color_space, downsample"),
    ("dists", "net", "vgg", "its options: none"),
])
def test_invalid_options_name_metric_option_value_and_allowed_values(metric, option, value, allowed):
    with pytest.raises(ValueError) as err:
        resolve({metric: {option: value}})
    text = str(err.value)
    assert f"metrics.{metric}.{option}={value!r}" in text and allowed in text and metric in text


def test_every_problem_is_listed_at_once():
    with pytest.raises(ValueError) as err:
        resolve({"psnr": {"color_space": "ycrcb"}, "lpips": {"net": "resnet"}, "fid": {"inception_batch_size": -2}})
    assert str(err.value).count("\n  - ") == 3


@pytest.mark.parametrize("metric", ["fid", "kid"])
def test_old_fid_batch_size_name_is_refused_with_the_new_name(metric):
    """Issue 11: ``metrics.fid.batch_size`` (images per Inception pass) was renamed so that it is not
    confused with the top-level ``batch_size`` (runs per call); the old name is never silently mapped."""
    with pytest.raises(ValueError) as err:
        resolve({metric: {"batch_size": 8}})
    text = str(err.value)
    assert f"metrics.{metric}.batch_size=8" in text and f"use metrics.{metric}.inception_batch_size=8" in text
    assert resolve({metric: {"inception_batch_size": 8}}).options[metric].inception_batch_size == 8
    with pytest.raises(ValueError, match="unknown option"):  # a metric without that option: plain unknown option
        resolve({"psnr": {"batch_size": 8}})


def test_old_fid_batch_size_on_the_command_line_exits_2_naming_the_new_name(tmp_path):
    """The command line is checked before Hydra (which would only say "not in struct"): one line, no traceback."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), "metrics=[psnr,fid]",
                           "metrics.fid.batch_size=4", f"output_dir={tmp_path / 'out'}"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"})
    assert proc.returncode == 2, proc.stderr
    assert "renamed to 'inception_batch_size'" in proc.stderr
    assert "use metrics.fid.inception_batch_size=4" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_invalid_option_stops_the_run_before_any_folder(tmp_path, pairs):
    """The Hydra entry point (run_bench.py) fails in preflight: nothing is written."""
    import subprocess
    import sys

    lr, hr = pairs
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), "dataset=folder", f"dataset.lr_dir={lr}",
                           f"dataset.hr_dir={hr}", "method=bicubic", f"output_dir={out}",
                           "metrics=[psnr]", "metrics.psnr.color_space=ycrcb"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"})  # no --debug
    assert proc.returncode != 0
    assert "metrics.psnr.color_space='ycrcb'" in proc.stderr and "yiq, ycbcr, lhm" in proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------- applied, against pyiqa


@pytest.mark.parametrize("y_channel", [True, False])
@pytest.mark.parametrize("color_space", PYIQA_COLOR_SPACES)
def test_psnr_options_equal_pyiqa(y_channel, color_space):
    import pyiqa

    sr, hr = pair()
    ours = float(METRICS.get("psnr").factory({"y_channel": y_channel, "color_space": color_space}, CPU)(sr, hr)[0])
    ref = pyiqa.create_metric("psnr", device=CPU, test_y_channel=y_channel, color_space=color_space)
    assert ours == pytest.approx(float(ref(sr, hr)), abs=1e-9)


def test_psnr_colour_space_and_channel_change_the_value():
    sr, hr = pair()
    vals = {(y, c): float(METRICS.get("psnr").factory({"y_channel": y, "color_space": c}, CPU)(sr, hr)[0])
            for y in (True, False) for c in PYIQA_COLOR_SPACES}
    assert len({round(v, 6) for k, v in vals.items() if k[0]}) == 3  # three colour spaces, three values
    assert vals[(True, "ycbcr")] != pytest.approx(vals[(False, "ycbcr")], abs=1e-3)


# every option value once in the default run; the full grid (about 2 minutes on 2 cores) is slow
_SSIM_FAST = {("fast", True, "ycbcr", True), ("pyiqa", True, "yiq", False), ("fast", False, "ycbcr", False),
              ("fast", True, "lhm", False)}
_SSIM_GRID = [pytest.param(b, y, c, d, marks=() if (b, y, c, d) in _SSIM_FAST else pytest.mark.slow)
              for b in ("fast", "pyiqa") for y, c in ((True, "ycbcr"), (True, "yiq"), (True, "lhm"), (False, "ycbcr"))
              for d in (False, True)]


@pytest.mark.parametrize("backend, y_channel, color_space, downsample", _SSIM_GRID)
def test_ssim_options_equal_pyiqa(backend, y_channel, color_space, downsample):
    """400 px: round(400 / 256) = 2, so downsample pools by 2 (as pyiqa and the MATLAB code)."""
    import pyiqa

    sr, hr = pair(400, 416, seed=3)
    opts = {"backend": backend, "y_channel": y_channel, "color_space": color_space, "downsample": downsample}
    ours = float(METRICS.get("ssim").factory(opts, CPU)(sr, hr)[0])
    ref = pyiqa.create_metric("ssim", device=CPU, test_y_channel=y_channel, color_space=color_space,
                              downsample=downsample)
    assert ours == pytest.approx(float(ref(sr, hr)), abs=1e-6)


def test_ssim_downsample_changes_the_value():
    sr, hr = pair(400, 416, seed=3)
    plain = float(METRICS.get("ssim").factory({}, CPU)(sr, hr)[0])
    pooled = float(METRICS.get("ssim").factory({"downsample": True}, CPU)(sr, hr)[0])
    assert pooled > plain + 0.01  # pooling averages the noise away


@requires(NIQE_NPZ)
@pytest.mark.parametrize("backend", ["fast", "pyiqa"])
def test_niqe_options_equal_pyiqa(backend):
    import pyiqa

    from benchmark.metrics.pyiqa_metrics import _niqe_mat

    x = images(1, 128, 160, seed=5)
    ours = float(METRICS.get("niqe").factory({"params_path": str(NIQE_NPZ), "backend": backend}, CPU)(x)[0])
    ref = pyiqa.create_metric("niqe", device=CPU, pretrained_model_path=str(_niqe_mat(NIQE_NPZ)))
    assert ours == pytest.approx(float(ref(x)), abs=1e-6)


# Deep metrics: random weights in the real formats for every variant the options select, in
# a temporary TORCH_HOME; ours must equal pyiqa's metric built with the same option and file.


@pytest.fixture(scope="module")
def variant_home(tmp_path_factory):
    import random_weights
    import torchvision.models as tvm
    from pyiqa.archs.lpips_arch import default_model_urls as lpips_urls
    from pyiqa.archs.musiq_arch import MUSIQ, default_model_urls as musiq_urls

    from benchmark.weights import hub_file

    home = tmp_path_factory.mktemp("variants")
    hub = home / "hub"
    gen = torch.Generator().manual_seed(7)
    rsd = random_weights._random_state_dict
    meta = random_weights._meta

    def save(sd, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(sd, path)

    import os

    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(home)
    try:
        for enum, builder, kw in [("AlexNet_Weights", tvm.alexnet, {}), ("VGG16_Weights", tvm.vgg16, {"init_weights": False}),
                                  ("SqueezeNet1_1_Weights", tvm.squeezenet1_1, {})]:
            w = hub_file("checkpoints", getattr(tvm, enum).IMAGENET1K_V1.url, "test")
            save(rsd(meta(builder, **kw), gen, unused=("classifier.",)), w.path)
        chans = {"alex": [64, 192, 384, 256, 256], "vgg": [64, 128, 256, 512, 512],
                 "squeeze": [64, 128, 256, 384, 384, 512, 512]}
        for key, url in lpips_urls.items():
            version, net = key.split("_")
            save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for k, c in enumerate(chans[net])},
                 hub_file("pyiqa", url, "test").path)
        for key in ("koniq10k", "spaq", "paq2piq", "ava"):
            model = meta(MUSIQ, pretrained=False, num_class=10 if key == "ava" else 1)
            save(rsd(model, gen), hub_file("pyiqa", musiq_urls[key], "test").path)
    finally:
        if old is None:
            os.environ.pop("TORCH_HOME")
        else:
            os.environ["TORCH_HOME"] = old
    return home


@pytest.mark.parametrize("net, version", [pytest.param(n, v, marks=() if (n, v) in {("squeeze", "0.1"), ("vgg", "0.0")}
                                                       else pytest.mark.slow)
                                          for n in ("alex", "vgg", "squeeze") for v in ("0.0", "0.1")])
def test_lpips_options_equal_pyiqa(variant_home, monkeypatch, net, version):
    import pyiqa

    monkeypatch.setenv("TORCH_HOME", str(variant_home))
    sr, hr = pair(64, 64)
    spec = METRICS.get("lpips")
    ours = float(spec.factory({"net": net, "version": version}, CPU)(sr, hr)[0])
    path = spec.weights({"net": net, "version": version})[0].path
    ref = pyiqa.create_metric("lpips", device=CPU, net=net, version=version, pretrained_model_path=str(path))
    assert ours == pytest.approx(float(ref(sr, hr)), abs=1e-6)


@pytest.mark.parametrize("pretrained", [pytest.param(p, marks=pytest.mark.slow) for p in ("koniq10k", "spaq", "paq2piq")]
                         + ["ava"])
def test_musiq_options_equal_pyiqa(variant_home, monkeypatch, pretrained):
    import pyiqa

    monkeypatch.setenv("TORCH_HOME", str(variant_home))
    x = images(1, 48, 64, seed=9)
    spec = METRICS.get("musiq")
    ours = float(spec.factory({"pretrained": pretrained}, CPU)(x)[0])
    path = spec.weights({"pretrained": pretrained})[0].path
    # pyiqa's own name for each checkpoint (musiq, musiq-spaq, ...), as a user would call it; with an
    # explicit file pyiqa needs the AVA head size (10 score bins) spelled out
    extra = {"num_class": 10} if pretrained == "ava" else {}
    ref = pyiqa.create_metric("musiq" if pretrained == "koniq10k" else f"musiq-{pretrained}", device=CPU,
                              pretrained_model_path=str(path), **extra)
    assert ours == pytest.approx(float(ref(x)), abs=1e-5)


def test_every_option_has_a_test_here():
    """A new option must come with a check against pyiqa (or the library it calls) above."""
    tested = {("psnr", "y_channel"), ("psnr", "color_space"), ("ssim", "backend"), ("ssim", "y_channel"),
              ("ssim", "color_space"), ("ssim", "downsample"), ("niqe", "params_path"), ("niqe", "backend"),
              ("lpips", "net"), ("lpips", "version"), ("musiq", "pretrained"),
              # FID/KID options: tests/test_deep_metrics.py (test_fid_options_mode_and_batch_size_against_pyiqa,
              # test_kid_options_equal_torch_fidelity_called_directly)
              ("fid", "mode"), ("fid", "inception_batch_size"), ("kid", "mode"), ("kid", "inception_batch_size"), ("kid", "subsets"),
              ("kid", "subset_size"), ("kid", "seed")}
    declared = {(n, o.name) for n in METRICS.names() for o in schema(METRICS.get(n).options)}
    assert declared == tested


def test_options_are_frozen_dataclasses():
    for n in METRICS.names():
        opts = METRICS.get(n).options()
        assert dataclasses.is_dataclass(opts)
        for info in schema(type(opts)):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(opts, info.name, info.default)
