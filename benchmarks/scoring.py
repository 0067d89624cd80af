"""Scoring speed: the official CCSR evaluation scripts' way versus srbench, same numbers.

Scores ``--images`` RealSR images x ``--runs`` runs at 512x512 (SR images from srbench's
``noise_control``, generated first and not timed) with PSNR, SSIM, NIQE, G-STD and L-STD,
twice in one process:

1. **official**: as CCSR's ``cal_iqa/cal_iqa.py``, ``iqa_G-STD.py`` and ``iqa_L-STD.py`` do it:
   pyiqa metrics built once with ``pyiqa.create_metric``; for each ``sampleRR`` folder and each
   image, ``cv2.imread`` of SR and GT, BGR->RGB tensor, ``[4:-4, 4:-4]`` crop, ``/255``, one
   pyiqa call per metric per image (NIQE on the whole SR image, srbench's convention); G-STD
   from the [images x runs] arrays; L-STD re-globbing each folder and re-reading every SR image
   from disk into a float32 stack per image.
2. **srbench**: ``benchmark.scoring.plan_metrics`` + ``score`` + ``Result.from_scores`` (each image's HR
   and N runs decoded once, runs batched, separable exact SSIM/NIQE).

It prints both wall times, the ratio, the peak resident memory of each (sampled from
/proc/self/statm every 2 ms, above the level at the start of the phase), and exits with
status 1 if any value (every per-image-run score, means, G-STDs, per-image and overall
L-STD) differs by more than ``--tol`` (1e-6).

Then it measures the harness's own overhead per image-run: ``benchmark.runner.generate``
with a method that returns a stored image instantly (LR read, batching, output validation,
8-bit conversion, atomic PNG write), minus the time spent inside the method.

    python benchmarks/scoring.py                       # 20 images x 10 runs
    python benchmarks/scoring.py --images 2 --runs 2   # smoke test
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import add_realsr_options, cpu_model, load_average, realsr_problem  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402



class PeakRSS:
    """Peak resident set size of this process during a ``with`` block, above its start level."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0
        self.start = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = self._rss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


# ----------------------------------------------------------------------------- the official way


def _img2tensor(img: np.ndarray) -> torch.Tensor:
    """BasicSR's img2tensor(bgr2rgb=True, float32=True) as the CCSR scripts define it."""
    import cv2

    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return torch.from_numpy(img.transpose(2, 0, 1)).float()


def official(sample_dirs: Sequence[Path], gt_dir: Path, niqe_mat: Path, device: torch.device) -> dict[str, Any]:
    """Mimic CCSR's cal_iqa.py (+ NIQE), iqa_G-STD.py and iqa_L-STD.py; return every value."""
    import cv2
    import pyiqa

    iqa_ssim = pyiqa.create_metric("ssim", test_y_channel=True, color_space="ycbcr").to(device)
    iqa_psnr = pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr").to(device)
    iqa_niqe = pyiqa.create_metric("niqe", device=device, pretrained_model_path=str(niqe_mat))

    per_run: list[dict[str, list[float]]] = []
    img_gt_list = sorted(glob.glob(os.path.join(gt_dir, "*.png")))
    for d in sample_dirs:  # cal_iqa.py: one pass per sampleRR folder
        metrics: dict[str, list[float]] = {"psnr": [], "ssim": [], "niqe": []}
        img_sr_list = sorted(glob.glob(os.path.join(d, "*.png")))
        if len(img_gt_list) != len(img_sr_list):
            raise RuntimeError(f"{d}: {len(img_sr_list)} SR images for {len(img_gt_list)} GT images")
        for sr_path, gt_path in zip(img_sr_list, img_gt_list):
            sr = _img2tensor(cv2.imread(sr_path, cv2.IMREAD_COLOR)).unsqueeze(0).to(device).contiguous()
            hr = _img2tensor(cv2.imread(gt_path, cv2.IMREAD_COLOR)).unsqueeze(0).to(device).contiguous()
            full = sr / 255.0
            hr = hr[..., 4:-4, 4:-4] / 255.0
            sr = sr[..., 4:-4, 4:-4] / 255.0
            metrics["psnr"].append(iqa_psnr(sr, hr).item())
            metrics["ssim"].append(iqa_ssim(sr, hr).item())
            metrics["niqe"].append(iqa_niqe(full).item())
        per_run.append(metrics)

    out: dict[str, Any] = {"scores": {}, "mean": {}, "gstd": {}}
    for name in ("psnr", "ssim", "niqe"):  # iqa_G-STD.py: [images x runs] arrays
        arr = np.zeros([len(img_gt_list), len(sample_dirs)])
        for i, metrics in enumerate(per_run):
            arr[:, i] = np.array(metrics[name])
        out["scores"][name] = arr
        out["mean"][name] = float(np.mean(np.mean(arr, axis=1)))
        out["gstd"][name] = float(np.mean(np.std(arr, axis=1)))

    # iqa_L-STD.py: per image, re-glob every folder and re-read the image of every run
    num_samples = len(sample_dirs)
    first = sorted(glob.glob(os.path.join(sample_dirs[0], "*.png")))
    c, h, w = _img2tensor(cv2.imread(first[0], cv2.IMREAD_COLOR))[..., 4:-4, 4:-4].shape
    std_alls = []
    for img_idx in range(len(first)):
        d = torch.zeros([num_samples, c, h, w])
        for dir_idx in range(num_samples):
            img_sr_list = sorted(glob.glob(os.path.join(sample_dirs[dir_idx], "*.png")))
            sr = _img2tensor(cv2.imread(img_sr_list[img_idx], cv2.IMREAD_COLOR)).unsqueeze(0).to(device).contiguous()
            d[dir_idx, ...] = (sr[..., 4:-4, 4:-4] / 255.0)[0]
        std_alls.append(float(np.mean(np.std(np.array(d.numpy()), axis=0))))  # the script: np.array(d)
    out["lstd_per_image"] = np.array(std_alls)
    out["lstd"] = float(np.mean(std_alls))
    return out


# ----------------------------------------------------------------------------- srbench


def srbench(samples, store, runs: int, niqe_params: Path, device: torch.device) -> dict[str, Any]:
    """srbench's scoring path: metric plan, score (decode once, batched runs), summarize."""
    from omegaconf import OmegaConf

    from benchmark.results import Result
    from benchmark.scoring import plan_metrics, score

    cfg = OmegaConf.create({"metrics": {"psnr": {}, "ssim": {}, "niqe": {"params_path": str(niqe_params)}},
                            "strict": True, "crop_border": 4})
    plan = plan_metrics(cfg, True, device)
    scores, lstd_df = score(samples, store, runs, list(range(runs)), plan, 4, device)
    result = Result.from_scores(scores, lstd_df, plan.specs, method="bench", dataset="bench", runs=runs, seed=0,
                                crop_border=4, stochastic=True, num_images=len(samples))
    out: dict[str, Any] = {"scores": {}, "mean": {}, "gstd": {}}
    ids = [s.id for s in samples]
    for name in ("psnr", "ssim", "niqe"):
        table = scores[scores["metric"] == name].pivot(index="image", columns="run", values="value")
        out["scores"][name] = table.loc[ids, list(range(runs))].to_numpy(dtype=np.float64)
        out["mean"][name] = result.metrics[name].mean
        out["gstd"][name] = result.metrics[name].gstd
    out["lstd_per_image"] = lstd_df.set_index("image").loc[ids, "lstd"].to_numpy(dtype=np.float64)
    out["lstd"] = result.lstd
    return out


def compare(a: dict[str, Any], b: dict[str, Any], tol: float) -> list[str]:
    """Every value of ``a`` against ``b``; the list of those farther apart than ``tol``."""
    bad = []
    checked = 0

    def check(what: str, x: Any, y: Any) -> None:
        nonlocal checked
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            bad.append(f"{what}: shapes {x.shape} vs {y.shape}")
            return
        checked += x.size
        diff = np.abs(x - y)
        if not np.all(diff <= tol):
            bad.append(f"{what}: max |difference| {diff.max():.3g} > {tol:g}")

    for name in ("psnr", "ssim", "niqe"):
        check(f"{name} per image-run", a["scores"][name], b["scores"][name])
        check(f"{name} mean", a["mean"][name], b["mean"][name])
        check(f"{name} G-STD", a["gstd"][name], b["gstd"][name])
    check("L-STD per image", a["lstd_per_image"], b["lstd_per_image"])
    check("L-STD", a["lstd"], b["lstd"])
    maxdiff = {name: float(np.abs(a["scores"][name] - b["scores"][name]).max()) for name in ("psnr", "ssim", "niqe")}
    maxdiff["lstd"] = float(np.abs(a["lstd_per_image"] - b["lstd_per_image"]).max())
    print(f"compared {checked} values; max |difference|: "
          + ", ".join(f"{k} {v:.2e}" for k, v in maxdiff.items()))
    return bad


# ----------------------------------------------------------------------------- harness overhead


def _instant_method(outputs: dict[bytes, torch.Tensor]):
    from methods.base import SRMethod

    class Instant(SRMethod):
        """A method that returns a stored image instantly (looked up by the LR pixels)."""

        name = "instant"

        def upscale(self, lr: torch.Tensor, generators) -> torch.Tensor:
            key = hashlib.sha1(lr[0].numpy().tobytes()).digest()
            return outputs[key].unsqueeze(0).expand(lr.shape[0], -1, -1, -1)

    return Instant()


def overhead(samples, workdir: Path, runs: int) -> dict[str, float]:
    """Harness time per image-run of ``generate`` (everything but the method), and its parts."""
    from benchmark.images import read_image, to_tensor, to_uint8, write_png_atomic
    from benchmark.runner import generate
    from benchmark.sink import validate_output
    from benchmark.store import Store
    outputs = {hashlib.sha1(to_tensor(read_image(s.lr_path)).numpy().tobytes()).digest(): to_tensor(read_image(s.hr_path))
               for s in samples}
    method = _instant_method(outputs)
    store = Store(workdir, "overhead", method.name)
    t0 = time.perf_counter()
    timing = generate(method, samples, store, runs, 0, 10, torch.device("cpu"))
    wall = time.perf_counter() - t0
    n = timing["image_runs"]
    # the parts, measured alone on one image
    smp = samples[0]
    batch = outputs[next(iter(outputs))].unsqueeze(0).expand(runs, -1, -1, -1)
    reps = 5
    t = time.perf_counter()
    for _ in range(reps):
        validate_output(batch, method, smp, list(range(runs)), tuple(batch.shape))
    t_val = (time.perf_counter() - t) / reps / runs
    arr = to_uint8(batch[0])
    t = time.perf_counter()
    for _ in range(reps):
        to_uint8(batch)  # as the sink converts: one pass per batch
    t_u8 = (time.perf_counter() - t) / reps / runs
    tmp = workdir / "png"
    t = time.perf_counter()
    for i in range(reps):
        write_png_atomic(tmp / f"{i}.png", arr)
    t_png = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    for i in range(reps):
        read_image(tmp / f"{i}.png")
    t_read = (time.perf_counter() - t) / reps
    return {"image_runs": n, "wall": wall, "method": timing["seconds"],
            "per_image_run_ms": 1000 * (wall - timing["seconds"]) / n,
            "validate_ms": 1000 * t_val, "to_uint8_ms": 1000 * t_u8, "png_write_ms": 1000 * t_png,
            "png_read_ms": 1000 * t_read, "png_kib": (tmp / "0.png").stat().st_size / 1024}


def print_overhead(o: dict[str, float]) -> None:
    print(f"\nharness overhead (method returns instantly, sequential): {o['per_image_run_ms']:.1f} ms per image-run "
          f"({o['image_runs']} image-runs, {o['wall']:.2f} s wall, {o['method']:.3f} s inside the method; "
          f"load average {load_average()})")
    print(f"  parts per image-run: output validation {o['validate_ms']:.2f} ms, to uint8 {o['to_uint8_ms']:.2f} ms, "
          f"PNG write (OpenCV level 1, Paeth, RLE, fsync) {o['png_write_ms']:.1f} ms for {o['png_kib']:.0f} KiB, "
          f"PNG read {o['png_read_ms']:.1f} ms", flush=True)


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_realsr_options(ap)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--workdir", type=Path, default=None, help="where SR images go (default: a temporary folder)")
    ap.add_argument("--overhead-only", action="store_true",
                    help="measure only the harness overhead (skips the official-vs-srbench scoring comparison)")
    args = ap.parse_args(argv)
    problem = realsr_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    from benchmark.data import FolderDataset
    from benchmark.metrics.pyiqa_metrics import _niqe_mat
    from benchmark.runner import generate
    from benchmark.store import Store
    from methods.noise_control import NoiseControl

    device = torch.device("cpu")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="srbench_scoring_"))
    try:
        samples = FolderDataset(str(args.data / "test_LR"), str(args.data / "test_HR"), 4, "realsr").samples()
        samples = samples[: args.images]
        sub = work / "data"  # the official scripts glob whole folders: give them exactly these images
        for s in samples:
            (sub / "HR").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s.hr_path, sub / "HR" / s.hr_path.name)
        store = Store(work, "realsr", "noise_control")
        print(f"machine: {cpu_model()}, {os.cpu_count()} CPU(s) visible, torch threads {torch.get_num_threads()}, "
              f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}")
        if args.overhead_only:
            print_overhead(overhead(samples, work, args.runs))
            return 0
        print(f"generating {len(samples)} images x {args.runs} runs with noise_control (not timed) ...", flush=True)
        generate(NoiseControl(), samples, store, args.runs, 0, 10, device)
        niqe_mat = _niqe_mat(args.niqe_params)  # the .mat pyiqa reads (converted once, not timed)
        import cv2  # noqa: F401  (imports are not timed: both ways need pyiqa, OpenCV and PIL)
        import pyiqa
        from pyiqa.archs import niqe_arch, psnr_arch, ssim_arch  # noqa: F401

        pyiqa.create_metric("psnr", device=device)  # pyiqa's first create_metric builds its registry
        dirs = [store.sample_dir(r) for r in range(args.runs)]

        print("scoring the official way ...", flush=True)
        with PeakRSS() as mem_o:
            t = time.perf_counter()
            ref = official(dirs, sub / "HR", niqe_mat, device)
            t_official = time.perf_counter() - t
        print("scoring with srbench ...", flush=True)
        with PeakRSS() as mem_s:
            t = time.perf_counter()
            ours = srbench(samples, store, args.runs, args.niqe_params, device)
            t_srbench = time.perf_counter() - t
        n = len(samples) * args.runs
        print(f"\n{len(samples)} images x {args.runs} runs at 512x512, psnr + ssim + niqe + G-STD + L-STD")
        print(f"official CCSR way : {t_official:8.2f} s  ({1000 * t_official / n:7.1f} ms per image-run), "
              f"peak memory +{mem_o.mib:.0f} MiB")
        print(f"srbench           : {t_srbench:8.2f} s  ({1000 * t_srbench / n:7.1f} ms per image-run), "
              f"peak memory +{mem_s.mib:.0f} MiB")
        print(f"ratio (official / srbench): {t_official / t_srbench:.2f}x")
        bad = compare(ref, ours, args.tol)

        print_overhead(overhead(samples, work, args.runs))
        if bad:
            print("\nFAIL: values differ by more than the tolerance:\n  " + "\n  ".join(bad))
            return 1
        print(f"\nOK: every value equal to {args.tol:g}")
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
