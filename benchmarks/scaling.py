"""Scaling in the number of images: wall time and peak memory of a whole run for 10, 50, 100 images.

    python benchmarks/scaling.py                          # 10 50 100 images, 128x128 HR, 10 runs (CPU)
    python benchmarks/scaling.py --sizes 2 4 --runs 2     # smoke test
    python benchmarks/scaling.py --plot docs/img/scaling.png

Each size is one ``python run_bench.py`` process (the real runner, end to end: LR read, method,
PNG writes, scoring, G-STD, L-STD, results) on synthetic photographs
(benchmarks/synthetic_pairs.py: crops of scikit-image's colour photographs, bicubic LR) with
``method=noise_control`` and PSNR + SSIM + NIQE (NIQE from ../shared/data/niqe_pris_params.npz,
else a random NIQE model of the real shape), ``--fid`` adds FID with random Inception weights in
the real file format (tests/random_weights.py; slow on a CPU). Wall time is measured around the
process, CPU time (user + system of all its threads) and peak resident set (``ru_maxrss``) are
the process's own, read through a one-child wrapper process so each size is measured alone. On a
shared machine wall time depends on the other jobs; CPU time much less, so the linearity check
uses it (``--clock wall_s`` for wall time).

It prints a Markdown table and whether time grows linearly (the marginal time per image-run
between consecutive sizes, in which process start and model loading cancel, agrees within
``--tol-time``, default 25 %) and memory stays flat (peak of the largest size within ``--tol-mem``
MiB, default 64, of the smallest size's). Exit status 1 when memory grows beyond that.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

NIQE_NPZ = ROOT.parent / "shared" / "data" / "niqe_pris_params.npz"


def run_size(n: int, args: argparse.Namespace, work: Path, niqe: Path, env: dict[str, str]) -> dict:
    """One whole run over ``n`` images in its own process; wall seconds and peak RSS (MiB)."""
    from synthetic_pairs import write_pairs

    lr, hr = write_pairs(work / f"data{n}", n, args.hr_size, seed=n)
    metrics = "[psnr,ssim,niqe,fid]" if args.fid else "[psnr,ssim,niqe]"
    cmd = [sys.executable, str(ROOT / "run_bench.py"), "method=noise_control", "dataset=folder",
           f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", f"dataset.name=scaling{n}", f"runs={args.runs}",
           f"metrics={metrics}", f"metrics.niqe.params_path={niqe}", "device=cpu", f"output_dir={work / 'out'}",
           "strict=false", *args.set]
    peak_file = work / f"peak{n}.txt"
    t = time.perf_counter()
    # A one-child wrapper: its RUSAGE_CHILDREN peak is exactly run_bench.py's own (ours would be the
    # maximum over every size run so far).
    proc = subprocess.run([sys.executable, "-c", WRAPPER, str(peak_file), *cmd], capture_output=True, text=True,
                          env=env, cwd=work)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"run_bench.py with {n} images exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    res = json.loads((work / "out" / f"scaling{n}" / "noise_control" / "results.json").read_text())
    peak_kib, cpu_s = peak_file.read_text().split()
    return dict(images=n, runs=args.runs, wall_s=wall, cpu_s=float(cpu_s), peak_mib=int(peak_kib) / 1024,
                metrics=sorted(res["metrics"]), lstd=res.get("lstd"))


#: runs argv[2:] as its only child and writes that child's peak resident set (KiB, Linux) and CPU
#: seconds (user + system, all its threads) to argv[1]
WRAPPER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
           "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "open(sys.argv[1], 'w').write(f'{u.ru_maxrss} {u.ru_utime + u.ru_stime}'); sys.exit(rc)")


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n = np.array([r["images"] for r in rows], float)
    t = np.array([r["wall_s"] for r in rows])
    cpu = np.array([r["cpu_s"] for r in rows])
    m = np.array([r["peak_mib"] for r in rows])
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    a.plot(n, t, "o-", color="C0", label="wall")
    a.plot(n, cpu, "^-", color="C2", label="CPU (user + system)")
    if len(n) >= 2:
        k, c = np.polyfit(n, cpu, 1)
        a.plot(n, k * n + c, ":", color="gray", label=f"CPU fit: {k:.2f} s/image + {c:.1f} s")
    a.legend(fontsize=7)
    a.set_xlabel("images (x %d runs)" % rows[0]["runs"])
    a.set_ylabel("time (s)")
    a.set_ylim(bottom=0)
    b.plot(n, m, "s-", color="C1")
    b.set_xlabel("images (x %d runs)" % rows[0]["runs"])
    b.set_ylabel("peak resident memory (MiB)")
    b.set_ylim(0, max(m) * 1.2)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100], help="numbers of images")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--hr-size", type=int, default=128, help="HR side in pixels (LR is a quarter)")
    ap.add_argument("--fid", action="store_true", help="add FID (random Inception weights; slow on a CPU)")
    ap.add_argument("--set", nargs="*", default=[], help="extra run_bench.py overrides, e.g. pipeline=false")
    ap.add_argument("--plot", type=Path, default=None, help="write the figure here (PNG)")
    ap.add_argument("--tol-time", type=float, default=0.25)
    ap.add_argument("--clock", choices=["cpu_s", "wall_s"], default="cpu_s",
                    help="time the linearity check uses: CPU seconds (default; little affected by other jobs "
                         "on a shared machine) or wall seconds")
    ap.add_argument("--tol-mem", type=float, default=64.0)
    ap.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    args = ap.parse_args()

    load = os.getloadavg()
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", flush=True)
    with tempfile.TemporaryDirectory(prefix="srbench-scaling-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
        env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", SRBENCH_CACHE=str(work / "cache"))
        niqe = NIQE_NPZ
        if not niqe.is_file():
            from gpu_ccsr import random_niqe

            niqe = random_niqe(work / "niqe_random.npz")
            print(f"NIQE: {NIQE_NPZ} absent, using a random NIQE model (timing only)")
        if args.fid:
            sys.path.insert(0, str(ROOT / "tests"))
            import random_weights

            random_weights.write_all(work / "torch_home")
            env["TORCH_HOME"] = str(work / "torch_home")
        rows = []
        for n in args.sizes:
            r = run_size(n, args, work, niqe, env)
            rows.append(r)
            print(f"{n:>4} images x {args.runs} runs: {r['wall_s']:7.1f} s wall, {r['cpu_s']:7.1f} s CPU "
                  f"({1000 * r['cpu_s'] / (n * args.runs):.1f} ms CPU per image-run), peak {r['peak_mib']:.0f} MiB, "
                  f"metrics {', '.join(r['metrics'])}", flush=True)
    print()
    print("| images | image-runs | wall s | CPU s | CPU ms per image-run | peak resident MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['images']} | {r['images'] * r['runs']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
              f"{1000 * r['cpu_s'] / (r['images'] * r['runs']):.1f} | {r['peak_mib']:.0f} |")
    status = 0
    if len(rows) >= 2:
        lo, hi = rows[0], rows[-1]
        # marginal time per image-run between consecutive sizes: process start and model loading cancel out
        marg = [(b[args.clock] - a[args.clock]) / ((b["images"] - a["images"]) * args.runs)
                for a, b in zip(rows, rows[1:])]
        linear = len(marg) < 2 or abs(marg[-1] - marg[-2]) <= args.tol_time * max(marg[-2], 1e-9)
        growth = hi["peak_mib"] - lo["peak_mib"]
        per_image = growth / (hi["images"] - lo["images"])
        flat = growth <= args.tol_mem
        pairs = ", ".join(f"{a['images']}->{b['images']}: {1000 * m:.1f}" for a, b, m in zip(rows, rows[1:], marg))
        print(f"\nmarginal {args.clock[:-2]} time per image-run ({pairs} ms): "
              + ("linear" if linear else "NOT linear") + (f" (the last two within {100 * args.tol_time:.0f} %)"
                                                          if len(marg) >= 2 else " (two sizes: no check)"))
        print(f"peak memory: {lo['peak_mib']:.0f} -> {hi['peak_mib']:.0f} MiB from {lo['images']} to "
              f"{hi['images']} images ({growth:+.0f} MiB, {per_image:+.2f} MiB per image): "
              f"{'flat' if flat else 'GROWS'} (tolerance {args.tol_mem:.0f} MiB)")
        status = 0 if flat else 1
    if args.plot:
        plot(rows, args.plot, f"srbench noise_control, {args.hr_size}px HR, {args.runs} runs, "
                              f"{'psnr+ssim+niqe' + ('+fid' if args.fid else '')} + L-STD, CPU")
        print(f"plot: {args.plot} ({args.plot.stat().st_size / 1024:.0f} KiB)")
    raise SystemExit(status)


if __name__ == "__main__":
    main()
