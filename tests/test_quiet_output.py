"""Log-friendly output (issue 16 item 5): third-party INFO off unless verbose=true; progress
bars only on a terminal, one-line records otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, make_pairs

TESTS = Path(__file__).resolve().parent


def _run(tmp_path: Path, *extra: str) -> str:
    lr, hr = make_pairs(tmp_path / "d", ["a", "b"], lr_size=(8, 8))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRB_")}
    env.update(PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]), SRBENCH_PROGRESS_INTERVAL="0")
    p = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), "dataset=folder", f"dataset.lr_dir={lr}",
                        f"dataset.hr_dir={hr}", "runs=2", "crop_border=0", "metrics=[psnr]", "device=cpu",
                        f"output_dir={tmp_path / 'o'}", *extra], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env=env)  # stdout and stderr are pipes: not a terminal
    assert p.returncode == 0, p.stderr
    return p.stdout + p.stderr


def test_quiet_by_default_and_one_line_progress_off_a_terminal(tmp_path):
    out = _run(tmp_path)
    assert "Network [PSNR] is created" not in out
    assert "\r" not in out  # no carriage-return bar updates in a log
    assert "generate noise_control: 0/4 img-run" in out and "generate noise_control: 4/4 img-run in" in out
    assert "generate noise_control: 2/4 img-run (50%)" in out  # interval 0: a record per update (2 runs per call)
    assert "score: 2/2 img in" in out


def test_verbose_brings_third_party_info_back(tmp_path):
    out = _run(tmp_path, "verbose=true")
    assert "Network [PSNR] is created" in out


def test_make_tiny_ccsr_prints_its_one_line_only(tmp_path):
    """No third-party noise (bitsandbytes' missing-`kernels` warning, transformers' "Writing model shards" bar)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRB_")}
    env["PYTHONPATH"] = str(ROOT)
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_tiny_ccsr.py"), str(tmp_path / "tiny")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == (f"method.sd_path={tmp_path / 'tiny' / 'stable-diffusion-2-1-base'} "
                        f"method.ccsr_path={tmp_path / 'tiny' / 'ccsr-v2'}\n")
    assert p.stderr == "", p.stderr
