"""method x images x runs: generation (batched over runs, resumable), scoring, stability.

Data flows one way: config -> data set (validated up front) -> method -> stored samples ->
scores (one tidy DataFrame) -> G-STD / L-STD -> results.json and the printed table.
"""

from __future__ import annotations

import datetime as _dt
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
from benchmark.config import build, resolve_device
from benchmark.preflight import validate
from benchmark.data import Dataset, Sample
from benchmark.sink import SampleSink, Todo, missing_runs, remove_stale_temporaries, run_seed
from benchmark.lock import holds_output_locks, lock_output
from benchmark.report import format_table
from benchmark.results import Result
from benchmark.results import Excluded
from benchmark.pipeline import StreamScorer
from benchmark.scoring import SCORE_CHUNK, plan_metrics, score, size_exclusions
from benchmark.stats import StatsConfig
from benchmark.store import Store, atomic_write_csv, atomic_write_json, config_hash
from benchmark.timing import timing_file
from benchmark.weights import check_method_files
from methods.base import SampleSource

log = logging.getLogger("srbench")



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


WRITE_QUEUE_BATCHES = 2  # the background writer's queue holds this many batches of samples


def generate(method: SampleSource, samples: Sequence[Sample], store: Store, runs: int, seed: int | None,
             batch_size: int, device: torch.device, timing: dict[str, Any] | None = None, *,
             pipeline: bool = False, scorer: StreamScorer | None = None,
             critical: dict[str, Any] | None = None) -> dict[str, Any]:
    """Have ``method`` produce every missing ``samples/sampleRR/<id>.png``; return the timing.

    The same path for every kind of method: the todo (missing or unusable stored samples) goes
    to ``method.produce`` with a :class:`~benchmark.sink.SampleSink` that seeds run ``r`` with
    ``seed + r`` (``seed`` None: a source that draws no seeds), validates, writes atomically and
    times. ``timing`` (``image_runs``, ``seconds``) is updated in place as work completes, so a
    caller keeps the timing of finished work even when generation stops with an error.

    ``pipeline``: PNGs are written by a background thread (queue of ``2 x batch_size`` samples)
    and ``scorer`` (a :class:`~benchmark.pipeline.StreamScorer`, optional) scores each sample from
    memory meanwhile; every sample is on disk when this returns. ``critical`` (optional) is filled
    with the main thread's time in this call (seconds, this invocation only):

    * ``produce_seconds``: wall time of ``method.produce``;
    * ``method_seconds``: inside the method (the inference seconds the method reports to the sink);
    * ``scoring_wait_seconds``: the main thread waiting for the scorer (handing over a chunk while
      the scorer was busy, then, after ``produce``, until the scorer finished what it was given);
    * ``writer_tail_seconds``: after that, waiting for the last queued PNGs to be written;
    * ``harness_seconds`` = produce - method - waiting to hand over chunks + writer tail: the
      harness's own time on the critical path (LR decode, generators, output validation, 8-bit
      conversion, queueing, or the inline PNG writes of a sequential run).
    """
    timing = {"image_runs": 0, "seconds": 0.0} if timing is None else timing
    remove_stale_temporaries(samples, store, runs)  # a writer killed mid-write left them; nothing reads them
    todo = Todo(list(samples), runs, missing_runs(samples, store, runs, method), batch_size, device)
    if scorer is not None:
        scorer.expect(todo.missing)
    if todo.total == 0:
        log.info("all %d image-runs already stored in %s", len(samples) * runs, store.root)
        return timing
    log.info("%s %d image-run(s) (%d already stored)", "generating" if method.seeded else "importing",
             todo.total, len(samples) * runs - todo.total)
    sink = SampleSink(store, method, seed, timing, todo.total, "generate" if method.seeded else "import", samples,
                      write_queue=WRITE_QUEUE_BATCHES * max(1, batch_size) if pipeline else 0, consumer=scorer)
    t0 = time.perf_counter()
    try:
        method.produce(todo, sink)
        t1 = time.perf_counter()
        if scorer is not None:
            scorer.wait()  # what the scorer was given; the writer keeps writing meanwhile
        t2 = time.perf_counter()
    except BaseException:
        sink.close(raise_errors=False)  # finished samples are written; this error is the one reported
        raise
    sink.close()  # the last queued PNGs; a failed background write is raised here, naming the file
    t3 = time.perf_counter()
    if critical is not None:
        blocked = scorer.blocked_seconds if scorer is not None else 0.0
        critical.update({
            "produce_seconds": t1 - t0, "method_seconds": sink.method_seconds,
            "scoring_wait_seconds": blocked + (t2 - t1), "writer_tail_seconds": t3 - t2,
            "harness_seconds": (t1 - t0) - sink.method_seconds - blocked + (t3 - t2),
        })
    return timing


# ----------------------------------------------------------------------------- entry


def _check_sizes(samples: Sequence[Sample], method: SampleSource, crop_border: int) -> None:
    small = [f"{s.id} ({s.lr_size[1]}x{s.lr_size[0]})" for s in samples if min(s.lr_size) < method.min_size]
    if small:
        raise ValueError(f"method {method.name!r} needs LR images of at least {method.min_size} px per side; "
                         f"too small: {', '.join(small)}")
    tight = [s.id for s in samples if 2 * crop_border >= min(s.lr_size) * method.scale]
    if tight:
        raise ValueError(f"crop_border={crop_border} removes the whole image for: {', '.join(tight)}; "
                         f"use a crop_border smaller than half the SR image side")


def _refuse_inputs_inside_output(method: SampleSource, root: Path) -> None:
    """Outputs to import (``precomputed``'s ``method.path``) must not lie inside the result folder
    this run writes: srbench rewrites that folder, and ``overwrite=true`` deletes its samples/, so
    the inputs would be destroyed by the very advice a stale-config error gives."""
    src = getattr(method, "path", None)
    if method.fixed_runs() is None or src is None:  # only sources that read outputs from disk
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
    method: SampleSource = build(cfg.method)
    if method.scale != dataset.scale:
        raise ValueError(f"method {method.name!r} upscales x{method.scale} but dataset {dataset.name!r} is "
                         f"x{dataset.scale}: set dataset.scale or method.scale so they agree")
    method.check_inputs(samples)  # e.g. precomputed outputs missing: before any work
    _check_sizes(samples, method, cfg.crop_border)
    fixed = method.fixed_runs()
    runs = fixed if fixed is not None else (cfg.runs if method.stochastic else 1)
    if fixed is not None and fixed != cfg.runs:
        log.info("method %s holds %d run(s); scoring those (runs=%d ignored)", method.name, fixed, cfg.runs)
    elif fixed is None and not method.stochastic and cfg.runs != 1:
        log.info("method %s is deterministic: one run (runs=%d ignored; G-STD and L-STD are not defined for it "
                 "and print as -)", method.name, cfg.runs)
    if runs == 1 and method.stochastic:
        log.warning("runs=1: G-STD and L-STD are undefined for a single run and are reported as null")
    seed = cfg.seed if method.seeded else None  # None: the source draws no seeds (precomputed outputs)
    plan = plan_metrics(cfg, any(s.hr_path is not None for s in samples), device)
    _warn_size_limits(size_exclusions(samples, plan, method.scale, cfg.crop_border, runs), runs, cfg.strict)

    store = sharding.store_for(cfg, cfg.output_dir, dataset.name, method.name, [s.id for s in samples])
    _refuse_inputs_inside_output(method, store.root)
    # disk and memory needs, before anything is generated (memory does not grow with runs: scoring streams)
    pipelined = bool(cfg.get("pipeline", True))
    # a pipelined run also holds the writer's queue, the runs gathered for a chunk and one queued chunk
    buffered = (WRITE_QUEUE_BATCHES * cfg.batch_size + SCORE_CHUNK + cfg.batch_size + SCORE_CHUNK) if pipelined else 0
    resources.check(samples, runs, method.scale, len(plan.active), SCORE_CHUNK, store.root, buffered)
    lock_output(store.root, cfg.shard)  # one process per folder (or per shard); before anything is touched
    errors.note_output(store.root)  # Ctrl-C names this folder and says that rerunning resumes
    resolved = OmegaConf.to_container(cfg, resolve=True)
    generation = {"method": resolved["method"], "seed": seed,
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

    seeds = [run_seed(seed, r) for r in range(runs)]
    # pipeline=true: samples are scored from memory on a scorer thread while the method generates
    # and a writer thread writes the PNGs (benchmark/pipeline.py); the scores are the same bits
    scorer = StreamScorer(samples, runs, seeds, plan, cfg.crop_border, device) if pipelined else None
    critical: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        with timing_file(store, manifest["generation_hash"]) as gen_timing:  # keeps timing of earlier, resumed work
            done_before = gen_timing["image_runs"]
            generate(method, samples, store, runs, seed, cfg.batch_size, device, gen_timing, pipeline=pipelined,
                     scorer=scorer, critical=critical)
            if method.num_parameters() is not None:  # known once loaded; kept for resumed runs that load nothing
                gen_timing["parameters"] = method.num_parameters()
        if cfg.check_determinism:
            determinism.check(method, samples, store, cfg.seed, device, loaded=gen_timing["image_runs"] > done_before)
        t1 = time.perf_counter()
        if scorer is not None:
            scores, lstd_df = scorer.finish(store)
        else:
            scores, lstd_df = score(samples, store, runs, seeds, plan, cfg.crop_border, device)
    except BaseException:
        if scorer is not None:
            scorer.abort()
        raise
    t2 = time.perf_counter()
    timing = {
        # pipelined: generation_seconds includes the scoring done meanwhile; scoring_seconds is what remained
        "generation_seconds": round(t1 - t0, 3),
        "scoring_seconds": round(t2 - t1, 3),
        "pipeline": pipelined,
        # this invocation's main-thread time (benchmark.runner.generate); harness = outside the method and
        # outside waiting for the scorer
        "critical_path": {k: round(v, 4) for k, v in critical.items()},
        "image_runs_timed": gen_timing["image_runs"],  # all of them, earlier resumed work included
        "image_runs_generated_now": gen_timing["image_runs"] - done_before,  # by this invocation
        "seconds_per_image_run": (gen_timing["seconds"] / gen_timing["image_runs"]
                                  if gen_timing["image_runs"] else None),
        "parameters": gen_timing.get("parameters"),
        **{k: v for k, v in gen_timing.items() if k not in ("image_runs", "seconds", "parameters")},
    }
    result = Result.from_scores(
        scores, lstd_df, plan.specs, method=method.name, dataset=dataset.name, runs=runs,
        seed=seed, crop_border=cfg.crop_border,
        stochastic=bool(method.stochastic), num_images=len(samples), skipped=plan.skipped, timing=timing,
        config=resolved, versions=versions(), excluded=plan.excluded, scoring_device=str(device),
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
