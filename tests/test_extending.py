"""docs/extending.md, executed: a new pyiqa metric, a new upscale-style method and a YAML-only data
set, each in at most two files (module + YAML), run through the contracts and a whole benchmark.

The new files go into a copy of conf/ (SRBENCH_CONF) and a plug-in folder on sys.path, so the
checkout is not touched; in a checkout they would be conf/<group>/<name>.yaml and a module.
"""

from __future__ import annotations

import shutil
import sys
import textwrap

import pyiqa
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import contracts
from benchmark.data import DATASETS
from benchmark.metrics import METRICS, resolve
from conftest import ROOT, make_pairs
from methods import METHODS

METRIC_MODULE = '''
"""GMSD (Xue et al. 2014) through pyiqa: a new full-reference metric."""
from benchmark.metrics import MetricSpec, register


class _Scorer:
    def __init__(self, device):
        import pyiqa
        self.metric = pyiqa.create_metric("gmsd", device=device, as_loss=False)

    def __call__(self, sr, hr):
        return self.metric(sr, hr.expand(sr.shape[0], -1, -1, -1)).reshape(-1)


register(MetricSpec("gmsd_x", "FR", False, True, "pyiqa", lambda options, device: _Scorer(device),
                    description="GMSD (pyiqa), border crop"))
'''

METRIC_YAML = '''
gmsd_x:
  _module_: srb_ext_metric   # the module that registers it
'''

METHOD_MODULE = '''
"""Nearest-neighbour upsampling plus seeded noise: a new upscale-style method."""
import torch
from methods.base import SRMethod


class NoisyNearest(SRMethod):
    stochastic = True

    def __init__(self, sigma: float = 0.02, scale: int = 4, name: str = "noisy_nearest") -> None:
        self.sigma, self.scale, self.name = float(sigma), int(scale), name

    def upscale(self, lr, generators):
        up = torch.nn.functional.interpolate(lr, scale_factor=self.scale, mode="nearest")
        noise = torch.stack([torch.randn(up.shape[1:], generator=g) for g in generators])
        return (up + self.sigma * noise).clamp(0, 1)
'''

METHOD_YAML = '''
_target_: srb_ext_method.NoisyNearest
name: noisy_nearest
sigma: 0.02
scale: ${dataset.scale}
'''


@pytest.fixture
def extended(tmp_path, monkeypatch):
    """conf/ plus the three additions; plug-in modules on sys.path."""
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    lr, hr = make_pairs(tmp_path / "mydata", ["p", "q", "r"])
    added = {
        plugins / "srb_ext_metric.py": METRIC_MODULE, conf / "metrics" / "gmsd_x.yaml": METRIC_YAML,
        plugins / "srb_ext_method.py": METHOD_MODULE, conf / "method" / "noisy_nearest.yaml": METHOD_YAML,
        conf / "dataset" / "mydata.yaml": f"_target_: benchmark.data.FolderDataset\nname: mydata\n"
                                          f"lr_dir: {lr}\nhr_dir: {hr}\nscale: 4\n",
    }
    for path, text in added.items():
        path.write_text(textwrap.dedent(text).lstrip())
    monkeypatch.setenv("SRBENCH_CONF", str(conf))
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.delitem(METRICS._items, "gmsd_x", raising=False)
    for mod in ("srb_ext_metric", "srb_ext_method"):  # each test imports (registers) afresh, as a new process
        monkeypatch.delitem(sys.modules, mod, raising=False)
    yield conf, added
    METRICS._items.pop("gmsd_x", None)
    for mod in ("srb_ext_metric", "srb_ext_method"):
        sys.modules.pop(mod, None)


def test_each_addition_is_at_most_two_files(extended):
    conf, added = extended
    by_kind = {"metric": [p for p in added if "metric" in p.name], "method": [p for p in added if "method" in p.name
               or p.parent.name == "method"], "dataset": [p for p in added if p.parent.name == "dataset"]}
    assert all(1 <= len(v) <= 2 for v in by_kind.values()), by_kind
    # found by name through the registries, with no registration anywhere else
    assert "noisy_nearest" in METHODS.names() and METHODS.get("noisy_nearest").__name__ == "NoisyNearest"
    assert "mydata" in DATASETS.names()
    assert resolve(["gmsd_x"]).names == ("gmsd_x",) and "gmsd_x" in METRICS


def test_additions_pass_the_contracts(extended, tmp_path):
    resolve(["gmsd_x"])  # imports the module its YAML names
    contracts.check_metric(METRICS.get("gmsd_x"), {})
    contracts.check_method(contracts.build_method("noisy_nearest", tmp_path))


def test_additions_run_as_one_benchmark(extended, tmp_path):
    from benchmark.runner import run

    conf, _ = extended
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="bench", overrides=["method=noisy_nearest", "dataset=mydata", "runs=2",
                                                      "metrics=[psnr,gmsd_x]", "device=cpu",
                                                      f"output_dir={tmp_path / 'out'}"])
    GlobalHydra.instance().clear()
    res = run(cfg)
    assert res["method"] == "noisy_nearest" and res["dataset"] == "mydata" and res["num_images"] == 3
    assert res["metrics"]["gmsd_x"]["higher_is_better"] is False and res["metrics"]["gmsd_x"]["gstd"] > 0
    # the stored value equals pyiqa's GMSD called directly on the same stored files, crop included
    import pandas as pd

    from benchmark.images import read_image, to_tensor

    root = tmp_path / "out" / "mydata" / "noisy_nearest"
    scores = pd.read_csv(root / "scores.csv", dtype={"image": str})
    row = scores[(scores.metric == "gmsd_x") & (scores.image == "q") & (scores.run == 1)].iloc[0]
    c = cfg.crop_border
    sr = to_tensor(read_image(root / "samples" / "sample01" / "q.png"))[None, :, c:-c, c:-c]
    hr = to_tensor(read_image(tmp_path / "mydata" / "HR" / "q.png"))[None, :, c:-c, c:-c]
    want = float(pyiqa.create_metric("gmsd", device=torch.device("cpu"))(sr, hr))
    assert row.value == pytest.approx(want, rel=1e-6, abs=1e-9)
