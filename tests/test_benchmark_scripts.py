"""The benchmark scripts run end to end on a tiny workload (their figures are not asserted:
speed is measured by the scripts and recorded in docs/benchmarks.md, not by tests)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import NIQE_NPZ, REALSR, ROOT, requires


def _run_script(script: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Run ``benchmarks/<script>`` on a tiny workload in ``tmp_path``; it must exit 0."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@requires(REALSR)
@requires(NIQE_NPZ)
def test_scoring_benchmark_smoke(tmp_path):
    proc = _run_script("scoring.py", tmp_path, "--images", "1", "--runs", "2")
    assert re.search(r"ratio \(official / srbench\): [0-9.]+x", proc.stdout)
    assert "OK: every value equal to 1e-06" in proc.stdout
    assert re.search(r"harness overhead .*: [0-9.]+ ms per image-run", proc.stdout)


@requires(REALSR)
@requires(NIQE_NPZ)
def test_scoring_benchmark_overhead_only(tmp_path):
    proc = _run_script("scoring.py", tmp_path, "--images", "1", "--runs", "2", "--overhead-only")
    assert re.search(r"harness overhead .*: [0-9.]+ ms per image-run \(2 image-runs", proc.stdout)
    assert re.search(r"PNG write \(OpenCV level 1, Paeth, RLE, fsync\) [0-9.]+ ms", proc.stdout)
    assert "official" not in proc.stdout  # the comparison is skipped


@requires(REALSR)
@requires(NIQE_NPZ)
def test_pipeline_benchmark_smoke(tmp_path):
    proc = _run_script("pipeline.py", tmp_path, "--images", "2", "--runs", "2", "--no-warmup")
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


def _script(name: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_gpu_ccsr_refuses_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal is for machines without it")
    proc = _script("gpu_ccsr.py", timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: no CUDA device"), proc.stderr[-2000:]
    assert "--smoke" in proc.stderr and "Traceback" not in proc.stderr


def _table_rows(stdout: str) -> dict[tuple[str, int], list[str]]:
    """{(configuration, batch): cells} of the Markdown table gpu_ccsr.py prints."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 9 and cells[2].isdigit():
            rows[(cells[0], int(cells[2]))] = cells
    return rows


def test_gpu_ccsr_smoke_generation_part():
    """The CPU smoke mode of the GPU script (tiny models): the table has every row, and the fp32
    switches agree with eager to 2 grey levels (they only reorder float arithmetic)."""
    proc = _script("gpu_ccsr.py", "--smoke", "--no-scoring", "--configs", "eager", "channels_last", "split_guidance",
                   "--batches", "1", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _table_rows(proc.stdout)
    assert set(rows) == {(c, b) for c in ("eager", "channels_last", "split_guidance") for b in (1, 2)}, proc.stdout
    for (cfg, _), cells in rows.items():
        mx, mean = (float(v) for v in cells[8].split(" / "))
        assert mx <= 2 and mean < 0.01, (cfg, cells)
        assert float(cells[5]) > 0
    assert rows[("split_guidance", 1)][1] == "guidance_batch=split"


@pytest.mark.slow
def test_gpu_ccsr_smoke_with_scoring_pass():
    proc = _script("gpu_ccsr.py", "--smoke", "--configs", "eager", "vae_bf16", "--batches", "1", timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for metric in ("clipiqa", "dists", "fid", "lpips", "musiq", "niqe", "psnr", "ssim"):
        assert metric in proc.stdout.split("Harness + scoring")[1].splitlines()[0], metric
    # A smoke run's two process times differ by less than their noise at times: then no figure is
    # printed (a negative time per image-run would be wrong), and the line says so.
    measured = re.search(r"Marginal harness \+ scoring time: ([0-9.]+) ms per image-run", proc.stdout)
    unresolved = re.search(r"Marginal harness \+ scoring time: not resolved \(", proc.stdout)
    assert bool(measured) != bool(unresolved), proc.stdout
    assert ("% of generation time" in proc.stdout) == bool(measured)
    assert "-" not in (measured.group(1) if measured else "")


def test_gpu_ccsr_scoring_table_prints_no_negative_time():
    from benchmarks.gpu_ccsr import scoring_table

    sc = dict(images=(2, 3), runs=2, wall={2: 57.5, 3: 55.3}, per_run_s=(55.3 - 57.5) / 2, metrics=["psnr"], size=128)
    rows = [dict(config="eager", batch=1, per_run_s=0.07)]
    text = scoring_table(sc, "CPU", rows)
    assert "not resolved" in text and "ms per image-run" not in text and "% of generation" not in text
    sc.update(wall={2: 50.0, 3: 54.0}, per_run_s=(54.0 - 50.0) / 2)
    text = scoring_table(sc, "CPU", rows)
    assert "Marginal harness + scoring time: 2000.0 ms per image-run" in text  # (54 - 50) s / (1 image x 2 runs)
    assert "2857.1 % of generation time" in text  # 2.0 s / 0.07 s


@pytest.mark.slow
def test_scaling_smoke(tmp_path):
    png = tmp_path / "scaling.png"
    proc = _script("scaling.py", "--sizes", "2", "4", "--runs", "2", "--plot", str(png), timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"\| 4 \| 8 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \|", proc.stdout), proc.stdout
    assert "peak memory:" in proc.stdout and png.stat().st_size > 1000
