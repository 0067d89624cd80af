"""A non-editable `pip install .` runs the demo from outside the checkout with the `srbench` command,
and every package of the source tree is listed for installation."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT


def test_every_package_and_config_file_is_installed():
    """pyproject lists packages by hand (conf/ is mapped to srbench_conf): a new subpackage must be added."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("benchmark", "methods")
             for p in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert tool["package-dir"]["srbench_conf"] == "conf"
    patterns = tool["package-data"]
    depth = max(len(p.relative_to(ROOT / "conf").parts) for p in (ROOT / "conf").rglob("*.yaml"))
    assert f"{'*/' * (depth - 1)}*.yaml" in patterns["srbench_conf"], "a deeper conf/ folder is not installed"


@pytest.mark.slow
def test_non_editable_install_runs_the_demo_from_anywhere(tmp_path):
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for f in files:  # a copy of the tree, so the build leaves nothing in the checkout
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(src)], check=True, timeout=300, capture_output=True)
    assert (site / "srbench_conf" / "bench.yaml").is_file() and (site / "srbench_conf" / "method" / "bicubic.yaml").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SRBENCH_CONF")}
    env.update(PYTHONPATH=str(site), SRBENCH_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    srbench = [sys.executable, str(site / "bin" / "srbench")]  # the console script pip wrote
    args = ["runs=2", "metrics=[psnr,ssim]", "device=cpu", f"output_dir={tmp_path / 'out'}"]
    one = subprocess.run(srbench + args, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    res = json.loads((tmp_path / "out" / "demo" / "noise_control" / "results.json").read_text())
    assert res["num_images"] == 6 and res["runs"] == 2 and res["lstd"] > 0
    # the code that ran is the installed copy, not the checkout
    assert "srbench_conf" not in str(ROOT) and str(ROOT) not in one.stdout + one.stderr
    sweep = subprocess.run(srbench + ["-m", "method=bicubic", *args], cwd=work, env=env, capture_output=True,
                           text=True, timeout=600)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert (tmp_path / "out" / "demo" / "bicubic" / "results.json").is_file()
    bad = subprocess.run(srbench + ["method=nope"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and re.search(r"unknown method 'nope'.*bicubic", bad.stderr)
    # a preset's comments (the help of a required key) are read from the installed package too
    quiet = {k: v for k, v in env.items() if k != "HYDRA_FULL_ERROR"}  # no --debug: the one-line error, exit 2
    unset = subprocess.run(srbench + ["method=precomputed", *args], cwd=work, env=quiet, capture_output=True, text=True,
                           timeout=300)
    assert unset.returncode == 2 and "method.path is required" in unset.stderr
    assert "Score outputs that already exist" in unset.stderr
    # the tools around a run find the same configs (group names, presets) through the installed package
    tool = [sys.executable, "-m", "benchmark"]
    names = subprocess.run(tool + ["list"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert names.returncode == 0, names.stderr[-3000:]
    assert re.search(r"methods:.*\bbicubic\b.*\bnoise_control\b", names.stdout)
    assert re.search(r"datasets:.*\bdemo\b", names.stdout) and re.search(r"metric presets:.*\bfast\b", names.stdout)
    doctor = subprocess.run(tool + ["weights", "method=bicubic", "metrics=[psnr,ssim]"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    assert doctor.returncode == 0 and "need no files" in doctor.stdout, doctor.stdout + doctor.stderr[-3000:]
    sets = subprocess.run(tool + ["data", "list"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert sets.returncode == 0 and "realsr" in sets.stdout, sets.stderr[-3000:]
    assert str(ROOT) not in names.stdout + names.stderr + doctor.stdout + sets.stdout
