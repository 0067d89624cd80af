"""Sweeps through Hydra's launcher plugins (joblib, submitit's local executor), and the presets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import benchmark.config  # noqa: F401  (registers bench_schema for composition)

from conftest import ROOT, folder_dir, make_pairs


def _sweep(tmp_path: Path, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    data = tmp_path / "data"
    make_pairs(data, ["a", "b", "c"])
    env = dict(os.environ, PYTHONPATH=str(ROOT), SRBENCH_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(ROOT / "run_bench.py"), "-m", "dataset=folder", f"dataset.lr_dir={data / 'LR'}",
           f"dataset.hr_dir={data / 'HR'}", "metrics=[psnr]", "runs=2", "device=cpu",
           f"output_dir={tmp_path / 'out'}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_sweep_through_joblib(tmp_path):
    proc = _sweep(tmp_path, "hydra/launcher=parallel", "method=bicubic,noise_control")
    assert "Joblib.Parallel" in proc.stdout + proc.stderr  # the plugin launched the jobs
    for method, runs in (("bicubic", 1), ("noise_control", 2)):
        res = json.loads((folder_dir(tmp_path / "out", tmp_path / "data" / "LR", tmp_path / "data" / "HR") / method / "results.json").read_text())
        assert res["method"] == method and res["runs"] == runs and res["num_images"] == 3
    assert "deprecated" not in proc.stderr  # the preset extends the plugin's config the supported way


def test_shards_through_submitit_local_then_merge(tmp_path):
    proc = _sweep(tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "method=noise_control",
                  "shard.count=2", "shard.index=0,1", timeout=600)
    root = folder_dir(tmp_path / "out", tmp_path / "data" / "LR", tmp_path / "data" / "HR") / "noise_control"
    assert "submitit" in (proc.stdout + proc.stderr).lower()
    assert list((tmp_path / "out" / ".hydra" / "multirun").glob("*/.submitit/*"))  # submitit's job folders
    shards = [json.loads((root / f"results.shard-{i}-of-2.json").read_text()) for i in range(2)]
    assert [s["num_images"] for s in shards] == [2, 1]
    merged = subprocess.run([sys.executable, "-m", "benchmark", "merge", str(tmp_path / "out")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert merged.returncode == 0, merged.stderr
    res = json.loads((root / "results.json").read_text())
    assert res["num_images"] == 3 and res["timing"]["shards"] == 2 and res["lstd"] > 0
    # every shard's rows are in the merged result: 3 images x 2 runs of PSNR, and the mean, G-STD and
    # L-STD are those of all three images, recomputed here from the merged tidy files with numpy
    import numpy as np
    import pandas as pd

    scores = pd.read_csv(root / "scores.csv", dtype={"image": str})
    assert sorted(scores.image.unique()) == ["a", "b", "c"] and len(scores) == 3 * 2
    by_image = scores.groupby("image").value
    assert res["metrics"]["psnr"]["mean"] == pytest.approx(by_image.mean().mean(), abs=1e-12)
    assert res["metrics"]["psnr"]["gstd"] == pytest.approx(
        by_image.apply(lambda v: np.std(v.to_numpy(), ddof=0)).mean(), abs=1e-12)
    lstd = pd.read_csv(root / "lstd.csv", dtype={"image": str})
    assert sorted(lstd.image) == ["a", "b", "c"] and res["lstd"] == pytest.approx(lstd.lstd.mean(), abs=1e-12)


def test_presets_compose_with_their_options():
    from hydra import compose as hcompose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        slurm = hcompose(config_name="bench", return_hydra_config=True,
                         overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                    "hydra.launcher.gpus_per_node=4", "hydra.launcher.timeout_min=30"]).hydra.launcher
        joblib = hcompose(config_name="bench", return_hydra_config=True,
                          overrides=["hydra/launcher=parallel"]).hydra.launcher
        plugin = hcompose(config_name="bench", return_hydra_config=True,
                          overrides=["hydra/launcher=submitit_slurm"]).hydra.launcher
    assert slurm._target_.endswith("SlurmLauncher") and slurm.partition == "gpu"
    assert slurm.gpus_per_node == 4 and slurm.timeout_min == 30 and slurm.cpus_per_task == 8
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == 2 and joblib.prefer == "processes"
    assert plugin.timeout_min == 60 and plugin.partition is None  # the plugin's own preset is untouched


def test_slurm_preset_reaches_sbatch(tmp_path, monkeypatch):
    """The preset's keys are ones submitit's Slurm executor accepts, and land in the sbatch script."""
    submitit = pytest.importorskip("submitit")
    from hydra import compose as hcompose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        launcher = hcompose(config_name="bench", return_hydra_config=True,
                            overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                       "hydra.launcher.submitit_folder=" + str(tmp_path)]).hydra.launcher
    params = OmegaConf.to_container(launcher, resolve=False)
    for k in ("_target_", "submitit_folder", "max_num_timeout"):
        params.pop(k)
    params["name"] = "srbench"
    base = {"timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name",
            "stderr_to_stdout"}
    # pretend srun exists: the executor only writes the sbatch script here, it submits nothing
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("echo", "0")
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --time=240" in script
    assert "#SBATCH --gpus-per-node=1" in script and "#SBATCH --cpus-per-task=8" in script
