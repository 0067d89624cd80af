"""method x images x runs: generation (batched over runs, resumable), scoring, stability.

Data flows one way: config -> data set (validated up front) -> method -> stored samples ->
scores (one tidy DataFrame) -> G-STD / L-STD -> results.json and the printed table.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from benchmark import __version__, datarecord, determinism, errors, logs, preflight, resources
from benchmark import shard as sharding
from benchmark.config import build, resolve_device, validate
from benchmark.data import Dataset, Sample, file_sha256
from benchmark.images import png_complete, read_image, to_tensor, to_uint8, write_png_atomic
from benchmark.lock import holds_output_locks, lock_output
from benchmark.progress import Progress
from benchmark.report import format_table
from benchmark.results import Result
from benchmark.results import Excluded
from benchmark.scoring import SCORE_CHUNK, plan_metrics, score, size_exclusions
from benchmark.stats import StatsConfig
from benchmark.store import Store, atomic_write_csv, atomic_write_json, config_hash
from benchmark.timing import timing_file
from benchmark.weights import check_method_files
from methods.base import SRMethod

log = logging.getLogger("srbench")

RANGE_TOL = 1e-6


# ----------------------------------------------------------------------------- set-up


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "srbench": __version__}
    for pkg in ("torch", "pyiqa", "numpy", "pillow", "hydra-core"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------- generation


def validate_output(out: Any, method: SRMethod, sample: Sample, seeds: Sequence[int | None],
                    shape: tuple[int, ...]) -> None:
    """Check a method's output against the contract; name method, image and seed when wrong."""
    where = f"method {method.name!r} on image {sample.id!r} (seeds {list(seeds)})"
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{where} returned {type(out).__name__}, expected a torch.Tensor of shape {list(shape)}")
    if not out.is_floating_point():
        raise ValueError(f"{where} returned dtype {out.dtype}, expected a floating-point tensor in [0, 1]")
    if tuple(out.shape) != shape:
        raise ValueError(f"{where} returned shape {list(out.shape)}, expected {list(shape)} "
                         f"(batch, 3 channels, scale {method.scale} x LR size)")
    # One pass over the whole batch in the common case; the per-run loop below only runs to
    # name the culprit (per-run reductions cost ~5x more per image-run on 2 cores).
    lo_all, hi_all = torch.aminmax(out.detach())
    if bool(torch.isfinite(lo_all)) and bool(torch.isfinite(hi_all)) and float(lo_all) >= -RANGE_TOL \
            and float(hi_all) <= 1 + RANGE_TOL:
        return
    for i, seed in enumerate(seeds):
        x = out[i]
        if not torch.isfinite(x).all():
            raise ValueError(f"method {method.name!r} returned non-finite values (NaN/Inf) for image {sample.id!r}, "
                             f"seed {seed}")
        lo, hi = float(x.min()), float(x.max())
        if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
            raise ValueError(f"method {method.name!r} returned values in [{lo:.4g}, {hi:.4g}] for image "
                             f"{sample.id!r}, seed {seed}; outputs must lie in [0, 1] (clamp in the adapter)")


def _stored_ok(path: Path, size: tuple[int, int]) -> bool:
    """A stored sample counts as finished only if it decodes and has the expected size."""
    if not path.is_file():
        return False
    if not png_complete(path):  # truncated by a crash or a full disk outside srbench's atomic writes
        log.warning("stored sample %s is truncated (no PNG end chunk); regenerating it", path)
        return False
    try:
        arr = read_image(path)
    except ValueError as err:
        log.warning("stored sample %s is unreadable (%s); regenerating it", path, err)
        return False
    if arr.shape[:2] != size:
        log.warning("stored sample %s is %dx%d, expected %dx%d; regenerating it", path, arr.shape[1], arr.shape[0],
                    size[1], size[0])
        return False
    return True


def generate(method: SRMethod, samples: Sequence[Sample], store: Store, runs: int, seed: int,
             batch_size: int, device: torch.device, timing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write every missing ``samples/sampleRR/<id>.png``; return timing of what was generated.

    ``timing`` (``image_runs``, ``seconds``) is updated in place as work completes, so a caller
    keeps the timing of finished work even when generation stops with an error.
    """
    s = method.scale
    imports = ImportRecord(store) if method.stored_runs() is not None else None
    todo: dict[str, list[int]] = {}
    for smp in samples:
        hr_size = (smp.lr_size[0] * s, smp.lr_size[1] * s)
        missing = [r for r in range(runs) if not _stored_ok(store.sample_path(smp.id, r), hr_size)
                   or (imports is not None and not imports.current(method, smp.id, r))]
        if missing:
            todo[smp.id] = missing
    total = sum(len(v) for v in todo.values())
    timing = {"image_runs": 0, "seconds": 0.0} if timing is None else timing
    if total == 0:
        log.info("all %d image-runs already stored in %s", len(samples) * runs, store.root)
        return timing
    if method.generate_runs is not None:  # methods that work per run over all images (external commands)
        work = {r: [smp for smp in samples if r in todo.get(smp.id, ())] for r in range(runs)}
        method.load(device)
        method.generate_runs({r: v for r, v in work.items() if v}, seed, store, timing, samples=list(samples), runs=runs)
        return timing
    log.info("%s %d image-run(s) (%d already stored)", "importing" if method.stored_runs() is not None else "generating",
             total, len(samples) * runs - total)
    loaded = False
    bar = Progress(total, f"generate {method.name}", "img-run")  # a bar on a terminal, log lines otherwise
    try:
        for smp in samples:
            if smp.id not in todo:
                continue
            if imports is not None:
                try:
                    for r in todo[smp.id]:
                        _import_stored(method, smp, r, store)
                        imports.record(method, smp.id, r)
                        bar.update(1)
                finally:
                    imports.save()
                continue
            if not loaded:
                method.load(device)
                loaded = True
            lr = to_tensor(read_image(smp.lr_path)).unsqueeze(0).to(device)
            for start in range(0, len(todo[smp.id]), batch_size):
                chunk = todo[smp.id][start:start + batch_size]
                seeds = [seed + r for r in chunk]
                gens = [torch.Generator(device=device).manual_seed(sd) for sd in seeds]
                batch = lr.expand(len(chunk), -1, -1, -1).contiguous()
                _sync(device)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    out = method.upscale(batch, gens)
                _sync(device)
                dt = time.perf_counter() - t0
                validate_output(out, method, smp, seeds, (len(chunk), 3, smp.lr_size[0] * s, smp.lr_size[1] * s))
                for i, r in enumerate(chunk):
                    write_png_atomic(store.sample_path(smp.id, r), to_uint8(out[i]))
                    # counted per stored image, so the totals kept across resumes match the stored samples
                    timing["image_runs"] += 1
                    timing["seconds"] += dt / len(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
    return timing


class ImportRecord:
    """Content hash of the source of every imported sample (``imports.json`` beside the samples).

    ``precomputed``'s generation hash covers only ``method.path`` as a string, so changed files at
    that path would otherwise keep being scored from their old imported copies. Each import records
    the SHA-256 of its source; a stored sample whose source now hashes differently (or that has no
    record, e.g. imported by an older srbench) is imported again, with a log line naming the file.
    """

    def __init__(self, store: Store) -> None:
        self.path = store.imports_json
        self._hashes: dict[str, str] = {}
        self._now: dict[str, str] = {}
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict) and isinstance(data.get("sources"), dict):
                self._hashes = {str(k): str(v) for k, v in data["sources"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable %s (%s): every precomputed output is imported again", self.path, err)
        self._dirty = False

    @staticmethod
    def _key(sample_id: str, run: int) -> str:
        return f"{run}/{sample_id}"

    def _hash(self, method: SRMethod, sample_id: str, run: int) -> str:
        key = self._key(sample_id, run)
        if key not in self._now:
            self._now[key] = file_sha256(method.stored_path(sample_id, run)).hex()
        return self._now[key]

    def current(self, method: SRMethod, sample_id: str, run: int) -> bool:
        """True when the stored copy of (image, run) was imported from the source as it is now."""
        old = self._hashes.get(self._key(sample_id, run))
        if old == self._hash(method, sample_id, run):
            return True
        if old is not None:
            log.warning("precomputed output %s changed since it was imported; importing it again",
                        method.stored_path(sample_id, run))
        return False

    def record(self, method: SRMethod, sample_id: str, run: int) -> None:
        self._hashes[self._key(sample_id, run)] = self._hash(method, sample_id, run)
        self._dirty = True

    def save(self) -> None:
        if self._dirty:
            atomic_write_json(self.path, {"sources": dict(sorted(self._hashes.items()))})
            self._dirty = False


def _import_stored(method: SRMethod, smp: Sample, run: int, store: Store) -> None:
    """Copy one precomputed output into the store after checking it like a generated one."""
    src = method.stored_path(smp.id, run)
    arr = read_image(src)
    want = (smp.lr_size[0] * method.scale, smp.lr_size[1] * method.scale)
    if arr.shape[:2] != want:
        raise ValueError(f"precomputed output {src} (image {smp.id!r}, run {run}) is {arr.shape[1]}x{arr.shape[0]}, "
                         f"expected {want[1]}x{want[0]} (scale {method.scale} x LR); check method.scale and the files")
    write_png_atomic(store.sample_path(smp.id, run), arr)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- entry


def _check_sizes(samples: Sequence[Sample], method: SRMethod, crop_border: int) -> None:
    small = [f"{s.id} ({s.lr_size[1]}x{s.lr_size[0]})" for s in samples if min(s.lr_size) < method.min_size]
    if small:
        raise ValueError(f"method {method.name!r} needs LR images of at least {method.min_size} px per side; "
                         f"too small: {', '.join(small)}")
    tight = [s.id for s in samples if 2 * crop_border >= min(s.lr_size) * method.scale]
    if tight:
        raise ValueError(f"crop_border={crop_border} removes the whole image for: {', '.join(tight)}; "
                         f"use a crop_border smaller than half the SR image side")


def _refuse_inputs_inside_output(method: SRMethod, root: Path) -> None:
    """Outputs to import (``precomputed``'s ``method.path``) must not lie inside the result folder
    this run writes: srbench rewrites that folder, and ``overwrite=true`` deletes its samples/, so
    the inputs would be destroyed by the very advice a stale-config error gives."""
    src = getattr(method, "path", None)
    if method.stored_runs() is None or src is None:
        return
    src, out = Path(src).resolve(), Path(root).resolve()
    if src == out or out in src.parents:
        raise ValueError(f"method.path {src} lies inside the result folder {out} that this run writes (and that "
                         f"overwrite=true clears): its outputs could be deleted. Move or copy them outside it "
                         f"(e.g. to {out.parent / (out.name + '_outputs')}), or write the results elsewhere with "
                         f"output_dir=<dir> or method.name=<other name>")


@holds_output_locks  # releases the output-folder lock taken below when run returns or raises
def run(cfg: DictConfig) -> dict[str, Any]:
    """Run the benchmark for one (method, data set) config; return the results dict."""
    validate(cfg)
    logs.configure(bool(cfg.get("verbose", False)))
    # every missing piece (keys, data set, method and metric files) in one message, before any work
    found = preflight.check(cfg)
    device = resolve_device(cfg.device)
    dataset: Dataset = found.get("dataset") or build(cfg.dataset)
    samples = sharding.select(dataset.samples(), cfg)  # all images, or this shard's (shard.index/count)
    # the method's files first (constructors read checkpoints): fetched when online, else stop here
    # naming each missing file, its sources and the command that fetches it
    check_method_files(get_class(cfg.method._target_), cfg.method)
    method: SRMethod = build(cfg.method)
    if method.scale != dataset.scale:
        raise ValueError(f"method {method.name!r} upscales x{method.scale} but dataset {dataset.name!r} is "
                         f"x{dataset.scale}: set dataset.scale or method.scale so they agree")
    if method.stored_runs() is not None:
        missing = method.missing([s.id for s in samples])  # type: ignore[attr-defined]
        if missing:
            raise FileNotFoundError(f"{len(missing)} precomputed output(s) missing under {method.path}: "  # type: ignore[attr-defined]
                                    + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))
    _check_sizes(samples, method, cfg.crop_border)
    stored = method.stored_runs()
    runs = stored if stored is not None else (cfg.runs if method.stochastic else 1)
    if stored is not None and stored != cfg.runs:
        log.info("method.path holds %d run(s); scoring those (runs=%d ignored)", stored, cfg.runs)
    if runs == 1 and method.stochastic:
        log.warning("runs=1: G-STD and L-STD are undefined for a single run and are reported as null")
    seeds: list[int | None] = [None] * runs if stored is not None else [cfg.seed + r for r in range(runs)]
    plan = plan_metrics(cfg, any(s.hr_path is not None for s in samples), device)
    _warn_size_limits(size_exclusions(samples, plan, method.scale, cfg.crop_border, runs), runs, cfg.strict)

    store = sharding.store_for(cfg, cfg.output_dir, dataset.name, method.name, [s.id for s in samples])
    _refuse_inputs_inside_output(method, store.root)
    # disk and memory needs, before anything is generated (memory does not grow with runs: scoring streams)
    resources.check(samples, runs, method.scale, len(plan.active), SCORE_CHUNK, store.root)
    lock_output(store.root, cfg.shard)  # one process per folder (or per shard); before anything is touched
    errors.note_output(store.root)  # Ctrl-C names this folder and says that rerunning resumes
    resolved = OmegaConf.to_container(cfg, resolve=True)
    generation = {"method": resolved["method"], "seed": None if stored is not None else cfg.seed,
                  "dataset": dataset.describe()}
    # what report and merge need from the data set, as plain data: they never rebuild it from
    # the stored config's _target_ (results folders are data, not code)
    data = datarecord.record(dataset.name, dataset.scale, generation["dataset"]["content_hash"], dataset.samples())
    manifest = {
        "generation": generation,
        "generation_hash": config_hash(generation),
        "config": resolved,
        "config_hash": config_hash(resolved),
        "git_commit": git_commit(),
        "versions": versions(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        datarecord.RECORD_KEY: data,
    }
    store.prepare(manifest, cfg.overwrite)

    t0 = time.perf_counter()
    with timing_file(store, manifest["generation_hash"]) as gen_timing:  # keeps timing of earlier, resumed work
        done_before = gen_timing["image_runs"]
        generate(method, samples, store, runs, cfg.seed, cfg.batch_size, device, gen_timing)
        if method.num_parameters() is not None:  # known once loaded; kept for resumed runs that load nothing
            gen_timing["parameters"] = method.num_parameters()
    if cfg.check_determinism:
        determinism.check(method, samples, store, cfg.seed, device, loaded=gen_timing["image_runs"] > done_before)
    t1 = time.perf_counter()
    scores, lstd_df = score(samples, store, runs, seeds, plan, cfg.crop_border, device)
    t2 = time.perf_counter()
    timing = {
        "generation_seconds": round(t1 - t0, 3),
        "scoring_seconds": round(t2 - t1, 3),
        "image_runs_timed": gen_timing["image_runs"],  # all of them, earlier resumed work included
        "image_runs_generated_now": gen_timing["image_runs"] - done_before,  # by this invocation
        "seconds_per_image_run": (gen_timing["seconds"] / gen_timing["image_runs"]
                                  if gen_timing["image_runs"] else None),
        "parameters": gen_timing.get("parameters"),
        **{k: v for k, v in gen_timing.items() if k not in ("image_runs", "seconds", "parameters")},
    }
    result = Result.from_scores(
        scores, lstd_df, plan.specs, method=method.name, dataset=dataset.name, runs=runs,
        seed=None if stored is not None else cfg.seed, crop_border=cfg.crop_border,
        stochastic=bool(method.stochastic), num_images=len(samples), skipped=plan.skipped, timing=timing,
        config=resolved, versions=versions(), excluded=plan.excluded,
        # confidence intervals next to each value (benchmark/stats.py; stats.enabled=false: none)
        stats=StatsConfig.from_mapping(cfg.get("stats")))
    results = result.to_json()
    atomic_write_csv(store.scores_csv, scores)
    atomic_write_csv(store.lstd_csv, lstd_df)
    atomic_write_json(store.results_json, results)
    print(format_table(result))
    print(f"results: {store.results_json}")
    if cfg.strict and plan.excluded:  # after everything is written: nothing computed is lost
        raise ExcludedValues(f"{len(plan.excluded)} value(s) excluded (listed above and in {store.results_json}); "
                             f"strict=true makes that an error: fix the inputs, drop the metric, or pass "
                             f"strict=false to accept averages over fewer values")
    return results


class ExcludedValues(ValueError):
    """Raised by :func:`run` under ``strict=true`` when some metric values were excluded.

    Everything (samples, scores.csv, results.json with the exclusions) is written before it is
    raised; ``run_bench.py`` reports it as a user error: ``error: ...`` and exit status 2.
    """


def _warn_size_limits(excluded: Sequence[Excluded], runs: int, strict: bool) -> None:
    """Before generation: name every image that falls short of a metric's size limit."""
    by_metric: dict[str, list[str]] = {}
    for e in excluded:
        if e.run == 0:
            by_metric.setdefault(e.metric, []).append(e.reason.split(": ", 1)[1])
    for metric, reasons in by_metric.items():
        log.warning("metric %s is undefined on %d image(s); their %d run(s) each will be excluded%s: %s", metric,
                    len(reasons), runs, " and strict=true will exit with an error after writing" if strict else "",
                    "; ".join(reasons))
