"""The README's numbers are what the commands it shows print."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT


def _readme_demo_table() -> list[str]:
    """The lines of the README's code block that starts with the demo run's header."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```\n(srbench: noise_control on demo .*?)\n```", text, re.S)
    assert m, "README.md has no code block with the demo table"
    return m.group(1).splitlines()


@pytest.mark.slow
def test_readme_demo_table_is_what_the_default_run_prints(tmp_path):
    """`python run_bench.py` (no arguments: noise_control on the demo set, 10 runs) prints the README's table,
    every digit of every mean, G-STD and confidence interval."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR" and not k.startswith("SRB_")}
    env.update(PYTHONPATH=str(ROOT), SRBENCH_CACHE=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), f"output_dir={tmp_path / 'reports'}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    printed = p.stdout.splitlines()
    want = _readme_demo_table()
    start = printed.index(want[0])  # the header line, then the table as the README shows it
    assert printed[start:start + len(want)] == want


def test_readme_demo_table_has_the_rows_the_run_prints():
    lines = _readme_demo_table()
    assert lines[0] == "srbench: noise_control on demo (6 images x 10 run(s), seeds 0..9, crop_border 4)"
    assert [ln.split()[0] for ln in lines[1:]] == ["metric", "psnr", "ssim", "L-STD"]
