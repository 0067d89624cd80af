"""Pipelined vs sequential runs, end to end through the real runner, same scores.

Runs ``benchmark.runner.run`` twice on the same images in one process, each into a fresh result
folder at the same path (so the two configs differ only in ``pipeline``):

1. ``pipeline=false``: generate every sample (inline atomic PNG writes), then score the stored PNGs;
2. ``pipeline=true``: generation on the main thread, PNG writes on a writer thread, scoring from
   memory on a scorer thread, overlapping (benchmark/pipeline.py).

Workload (defaults): ``method=noise_control`` (bicubic + Gaussian noise, sigma 0.05), the 20 RealSR
pairs of ``../shared/data/realsr_subset`` (128x128 LR -> 512x512 SR) x 10 runs, metrics PSNR, SSIM
(Y of YCbCr, 4-pixel border crop) and NIQE (``../shared/data/niqe_pris_params.npz``), G-STD, L-STD
and the default bootstrap intervals, ``device=cpu``, ``batch_size=10``. Before the two timed runs an
untimed warm-up run (1 image x 2 runs) imports and initialises everything both modes share.

Printed for each mode: wall time of ``run(cfg)`` (everything: preflight, generation, scoring, set
metrics, summaries and intervals, writing the result files), its ``generation_seconds`` and
``scoring_seconds`` (pipelined: generation includes the scoring done meanwhile), and the main
thread's critical path (``results.json`` ``timing.critical_path``, measured by
``benchmark.runner.generate``). Then the ratio sequential / pipelined and a Markdown table row.

**Critical-path harness time per image-run** (the target is < 3 ms): the time the main thread
spends in ``generate`` outside the method and outside waiting for scoring, divided by the
image-runs generated:

    harness = produce_seconds - method_seconds - (time blocked handing a chunk to the busy scorer)
              + writer_tail_seconds

where ``produce_seconds`` is the wall time of ``method.produce`` (LR decode, generator set-up, the
method, output validation, 8-bit conversion, handing the sample to the writer queue and to the
scorer, and in a sequential run the inline PNG encode + fsync), ``method_seconds`` the inference
time the method reports for its calls, and ``writer_tail_seconds`` the wait, after the scorer has
finished, for the last queued PNGs. In a sequential run the scoring phase (which decodes the PNGs
again) is scoring, not harness. With a GPU method, the harness time is the time the GPU would sit
idle per image-run because of srbench.

The scores must be identical: ``scores.csv`` and ``lstd.csv`` byte for byte, ``results.json``
equal except ``timing`` and ``config.pipeline``; the script prints the largest absolute difference
of any value and exits with status 1 (``FAIL``) if it is not 0.

    python benchmarks/pipeline.py                       # 20 images x 10 runs (several minutes on 2 cores)
    python benchmarks/pipeline.py --images 2 --runs 2   # smoke test
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_realsr_options, cpu_model, load_average, realsr_problem  # noqa: E402

TARGET_HARNESS_MS = 3.0
TARGET_RATIO = 1.5


def compose(overrides: list[str]):
    """The run's config as ``python run_bench.py <overrides>`` composes it (srbench's search path)."""
    from hydra import compose as _compose

    import benchmark.config  # noqa: F401  (registers the schema)
    from benchmark import searchpath

    with searchpath.initialize():
        return _compose(config_name="bench", overrides=overrides)


def run_once(overrides: list[str]) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one ``benchmark.runner.run`` and its results dict."""
    from benchmark.runner import run

    cfg = compose(overrides)
    t0 = time.perf_counter()
    res = run(cfg)
    return time.perf_counter() - t0, res


def subset(data: Path, images: int, dest: Path) -> list[str]:
    """Copy the first ``images`` pairs (sorted by name) into ``dest``/LR and ``dest``/HR."""
    names = sorted(p.name for p in (data / "test_LR").iterdir() if p.suffix.lower() == ".png")[:images]
    for sub, src in (("LR", "test_LR"), ("HR", "test_HR")):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copyfile(data / src / n, dest / sub / n)
    return names


def compare(a: Path, b: Path) -> tuple[float, list[str]]:
    """(largest |difference| of any score or L-STD value, problems) between two result folders."""
    import numpy as np
    import pandas as pd

    bad: list[str] = []
    sa, sb = pd.read_csv(a / "scores.csv"), pd.read_csv(b / "scores.csv")
    la, lb = pd.read_csv(a / "lstd.csv"), pd.read_csv(b / "lstd.csv")
    if sa.shape != sb.shape or list(sa.columns) != list(sb.columns) or \
            not sa[["image", "run", "metric"]].equals(sb[["image", "run", "metric"]]):
        return float("inf"), ["scores.csv: different rows"]
    diff = float(np.nanmax(np.abs(sa["value"].to_numpy(float) - sb["value"].to_numpy(float)))) if len(sa) else 0.0
    if len(la) == len(lb) and len(la):
        diff = max(diff, float(np.nanmax(np.abs(la["lstd"].to_numpy(float) - lb["lstd"].to_numpy(float)))))
    for name in ("scores.csv", "lstd.csv"):
        if (a / name).read_bytes() != (b / name).read_bytes():
            bad.append(f"{name} differs")
    ra, rb = (json.loads((p / "results.json").read_text()) for p in (a, b))
    for r in (ra, rb):
        r.pop("timing")
        r["config"].pop("pipeline")
    if ra != rb:
        bad.append("results.json differs (beyond timing and config.pipeline)")
    return diff, bad


def describe(mode: str, wall: float, res: dict[str, Any]) -> dict[str, float]:
    t = res["timing"]
    cp = t.get("critical_path") or {}
    n = t["image_runs_generated_now"] or 1
    out = {"wall": wall, "n": n, "harness_ms": 1000 * cp.get("harness_seconds", float("nan")) / n}
    print(f"{mode:<10}: {wall:8.2f} s end to end ({1000 * wall / n:6.1f} ms per image-run); generation "
          f"{t['generation_seconds']:.2f} s, scoring after it {t['scoring_seconds']:.2f} s, the rest "
          f"(preflight, set metrics, summaries, intervals, files) {wall - t['generation_seconds'] - t['scoring_seconds']:.2f} s")
    print(f"{'':<10}  main thread in generate: produce {cp.get('produce_seconds', 0):.2f} s = method "
          f"{cp.get('method_seconds', 0):.2f} s + waiting for the scorer {cp.get('scoring_wait_seconds', 0):.2f} s "
          f"(incl. after produce) + harness; writer tail {cp.get('writer_tail_seconds', 0):.3f} s")
    print(f"{'':<10}  critical-path harness: {cp.get('harness_seconds', float('nan')):.3f} s = "
          f"{out['harness_ms']:.2f} ms per image-run ({n} image-runs)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_realsr_options(ap)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--workdir", type=Path, default=None, help="where data copies and results go (default: temporary)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run (smoke tests)")
    args = ap.parse_args(argv)
    problem = realsr_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    import torch

    work = args.workdir or Path(tempfile.mkdtemp(prefix="srbench_pipeline_"))
    try:
        names = subset(args.data, args.images, work / "data")
        out = work / "out"
        def overrides(data: Path, output: Path, runs: int, mode: str) -> list[str]:
            return ["method=noise_control", "dataset=folder", f"dataset.lr_dir={data / 'LR'}",
                    f"dataset.hr_dir={data / 'HR'}", "dataset.name=realsr_subset", "device=cpu",
                    "metrics=[psnr,ssim,niqe]", f"metrics.niqe.params_path={args.niqe_params}", "crop_border=4",
                    f"batch_size={args.batch_size}", f"output_dir={output}", f"runs={runs}", f"pipeline={mode}"]

        root = out / "realsr_subset" / "noise_control"
        started = dt.datetime.now(dt.timezone.utc)
        load_start = load_average()
        print(f"machine: {cpu_model()}, {os.cpu_count()} CPU(s) visible, torch {torch.__version__}, torch threads "
              f"{torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
              f"{'CUDA' if torch.cuda.is_available() else 'no GPU'}; load average at start {load_start}; "
              f"{started:%Y-%m-%d %H:%M} UTC")
        if not args.no_warmup:
            print("warm-up (not timed): 1 image x 2 runs, both modes ...", flush=True)
            one = _one(work, names[0])
            for mode in ("false", "true"):
                run_once(overrides(one, work / "warmup" / mode, 2, mode))
        figures = {}
        for mode, label in (("false", "sequential"), ("true", "pipelined")):
            shutil.rmtree(out, ignore_errors=True)
            print(f"\n{label}: {len(names)} images x {args.runs} runs ...", flush=True)
            wall, res = run_once(overrides(work / "data", out, args.runs, mode))
            figures[label] = (wall, res)
            shutil.move(str(root), str(work / label))
        load_end = load_average()
        print(f"\n{len(names)} images x {args.runs} runs at 512x512, noise_control, psnr + ssim + niqe + G-STD + "
              f"L-STD, cpu; load average at the end {load_end}")
        seq = describe("sequential", *figures["sequential"])
        pipe = describe("pipelined", *figures["pipelined"])
        ratio = seq["wall"] / pipe["wall"]
        print(f"ratio (sequential / pipelined wall time): {ratio:.2f}x (target >= {TARGET_RATIO}x: "
              f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})")
        print(f"critical-path harness per image-run: pipelined {pipe['harness_ms']:.2f} ms, sequential "
              f"{seq['harness_ms']:.2f} ms (target < {TARGET_HARNESS_MS} ms: "
              f"{'met' if pipe['harness_ms'] < TARGET_HARNESS_MS else 'NOT met'})")
        diff, bad = compare(work / "sequential", work / "pipelined")
        print(f"max |difference| of any score or L-STD value, pipelined vs sequential: {diff:.3g}")
        print("\nMarkdown row (date | machine | load average start / end | images x runs | sequential | pipelined | "
              "ratio | harness per image-run pipelined / sequential | max difference):")
        print(f"| {started:%Y-%m-%d %H:%M} UTC | {cpu_model()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
              f"threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} | {load_start} / {load_end} | {len(names)} x {args.runs} | {seq['wall']:.1f} s | "
              f"{pipe['wall']:.1f} s | **{ratio:.2f}x** | {pipe['harness_ms']:.2f} / {seq['harness_ms']:.2f} ms | "
              f"{diff:.3g} |")
        if bad or diff != 0:
            print("\nFAIL: pipelined and sequential results differ: " + "; ".join(bad or [f"max difference {diff}"]))
            return 1
        print("\nOK: scores.csv and lstd.csv byte-identical, results.json equal (timing and config.pipeline aside)")
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _one(work: Path, name: str) -> Path:
    """A data folder (LR/, HR/) holding only image ``name`` (for the warm-up run)."""
    dest = work / "warmup_data"
    for sub in ("LR", "HR"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "data" / sub / name, dest / sub / name)
    return dest


if __name__ == "__main__":
    sys.exit(main())
