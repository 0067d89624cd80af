"""The benchmark scripts run end to end on a tiny workload (their figures are not asserted:
speed is measured by the scripts and recorded in docs/benchmarks.md, not by tests)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import NIQE_NPZ, REALSR, ROOT, requires


@requires(REALSR)
@requires(NIQE_NPZ)
def test_scoring_benchmark_smoke(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scoring.py"), "--images", "1", "--runs", "2",
                           "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"ratio \(official / srbench\): [0-9.]+x", proc.stdout)
    assert "OK: every value equal to 1e-06" in proc.stdout
    assert re.search(r"harness overhead .*: [0-9.]+ ms per image-run", proc.stdout)


@requires(REALSR)
@requires(NIQE_NPZ)
def test_pipeline_benchmark_smoke(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pipeline.py"), "--images", "2", "--runs", "2",
                           "--no-warmup", "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"ratio \(sequential / pipelined wall time\): [0-9.]+x", proc.stdout)
    assert re.search(r"critical-path harness per image-run: pipelined [0-9.]+ ms, sequential [0-9.]+ ms", proc.stdout)
    assert "max |difference| of any score or L-STD value, pipelined vs sequential: 0\n" in proc.stdout
    assert re.search(r"^\| .* \| 2 x 2 \| [0-9.]+ s \| [0-9.]+ s \| \*\*[0-9.]+x\*\* \|", proc.stdout, re.M)
    assert "OK: scores.csv and lstd.csv byte-identical" in proc.stdout
    # both modes ran end to end through the runner into their own folders, with every sample
    for mode in ("sequential", "pipelined"):
        assert len(list((tmp_path / mode / "samples").rglob("*.png"))) == 4


def test_generation_benchmark_smoke():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generation.py"), "--runs", "2", "--steps", "2",
                           "--repeats", "1"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = re.search(r"max \|batched - one-by-one\| over all outputs: ([0-9.e+-]+)", proc.stdout)
    assert m and float(m.group(1)) < 1e-3  # per-run generators: a batched run is the same run
    assert "ratio (batched / one-by-one throughput)" in proc.stdout
