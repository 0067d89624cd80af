"""Every config in conf/ composes and instantiates (a broken YAML fails CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from benchmark.data import DATASETS
from benchmark.metrics import METRICS, resolve
from conftest import ROOT, compose, make_pairs
from methods import METHODS

CONF = ROOT / "conf"


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def required_values(tmp_path: Path) -> list[str]:
    """Values for the ``???`` fields of configs that have them."""
    lr, hr = make_pairs(tmp_path / "d", ["a"])
    (tmp_path / "pre" / "sample00").mkdir(parents=True)
    return [f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"method.path={tmp_path / 'pre'}",
            # CCSR reads its weights in load(), not at construction: any path instantiates
            f"method.sd_path={tmp_path / 'sd'}", f"method.ccsr_path={tmp_path / 'ccsr'}"]


def fill(cfg, tmp_path: Path, group: str) -> None:
    OmegaConf.set_struct(cfg, False)
    for override in required_values(tmp_path):
        key, value = override.split("=", 1)
        g, k = key.split(".")
        if g == group and k in cfg[g].keys() and OmegaConf.is_missing(cfg[g], k):
            cfg[g][k] = value


def test_default_composes_and_validates():
    from benchmark.preflight import validate  # the top-level keys and every metric's options

    cfg = compose([])
    validate(cfg)
    assert cfg.runs == 10 and cfg.seed == 0 and cfg.crop_border == 4 and cfg.output_dir == "reports"
    assert cfg.method.name == "noise_control" and cfg.dataset.name == "demo"


def baseline_required(name: str, tmp_path: Path) -> dict[str, str]:
    """Tiny random checkpoints (released formats) and a repository folder for the baseline presets' ``???``."""
    from baseline_models import make_dasr, make_rrdb, make_swinir

    if name == "swinir":
        make_swinir(tmp_path / "swinir.pth")
        return {"model_path": str(tmp_path / "swinir.pth")}
    if name == "dasr":
        g, p = make_dasr(tmp_path / "dasr")
        return {"model_path": str(g), "predictor_path": str(p)}
    make_rrdb(tmp_path / "rrdb.pth")
    (tmp_path / "repo").mkdir(exist_ok=True)
    return {"model_path": str(tmp_path / "rrdb.pth"), "repo": str(tmp_path / "repo"),
            "cmd": "{python} {repo}/inference.py -i {input_dir} -o {output_dir} --seed {seed}"}


@pytest.mark.parametrize("name", names("method"))
def test_every_method_config_instantiates(name, tmp_path):
    cfg = compose([f"method={name}"])
    fill(cfg, tmp_path, "method")
    for key, value in baseline_required(name, tmp_path).items():
        if key in cfg.method.keys() and OmegaConf.is_missing(cfg.method, key):
            cfg.method[key] = value
    for key, value in baseline_required(name, tmp_path).items():
        # keys that default to the method cache (${srbench_weights:...}, empty here) get the tiny files too
        raw = OmegaConf.to_container(cfg.method, resolve=False).get(key)
        if isinstance(raw, str) and raw.startswith("${srbench_weights:"):
            cfg.method[key] = value
    method = instantiate(cfg.method)
    assert method.name == cfg.method.name and method.scale == cfg.dataset.scale
    assert type(method) is METHODS.get(name)


@pytest.mark.parametrize("name", names("dataset"))
def test_every_dataset_config_instantiates(name, tmp_path, monkeypatch):
    make_pairs(tmp_path / "realsr" / "x", ["a"])
    (tmp_path / "realsr" / "x" / "LR").rename(tmp_path / "realsr" / "test_LR")
    (tmp_path / "realsr" / "x" / "HR").rename(tmp_path / "realsr" / "test_HR")
    for var in ("SRBENCH_REALSR", "SRBENCH_DREALSR", "SRBENCH_DIV2K_STABLESR"):  # published sets: a local copy
        monkeypatch.setenv(var, str(tmp_path / "realsr"))
    monkeypatch.setenv("SRBENCH_DIV2K_VALID_HR", str(tmp_path / "realsr" / "test_HR"))
    cfg = compose([f"dataset={name}"])
    fill(cfg, tmp_path, "dataset")
    ds = instantiate(cfg.dataset)
    # a folder data set is named after its folders (README, "Output"); every other after its config
    from benchmark.data import folder_name

    expected = folder_name(cfg.dataset.lr_dir, cfg.dataset.hr_dir) if name == "folder" else name
    assert ds.samples() and ds.name == expected and type(ds) is DATASETS.get(name)


@pytest.mark.parametrize("name", names("metrics"))
def test_every_metrics_config_resolves(name):
    cfg = compose([f"metrics={name}"])
    sel = resolve(OmegaConf.to_container(cfg.metrics))
    assert sel.names and all(n in METRICS for n in sel.names)


@pytest.mark.parametrize("group", ["method", "dataset", "metrics"])
def test_leaf_presets_list_only_what_differs_from_what_they_inherit(group):
    """A config that inherits another of its group (``defaults: [parent, _self_]``) repeats none of its keys
    with the same value (issue 11: presets had copied all keys of external.yaml)."""
    repeated = []
    for name in names(group):
        own = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{name}.yaml"), resolve=False)
        for parent in [d for d in own.get("defaults") or [] if isinstance(d, str) and d != "_self_"]:
            inherited = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{parent}.yaml"), resolve=False)
            repeated += [f"{name}.{k} (= {parent}.{k})" for k, v in own.items()
                         if k != "defaults" and k in inherited and inherited[k] == v]
    assert not repeated


def test_every_registered_name_has_a_config():
    assert set(METHODS.names()) <= set(names("method"))
    assert set(DATASETS.names()) <= set(names("dataset"))
    assert set(METRICS.names()) <= set(names("metrics"))
    # a one-metric file selects exactly that metric
    for m in METRICS.names():
        assert resolve(m).names == (m,)
