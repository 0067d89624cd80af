"""``python -m benchmark merge <output_dir>``: assemble image shards into one result.

For each ``<output_dir>/<dataset>/<method>/`` folder holding ``manifest.shard-*-of-K.json``
files, checks that all K shards finished with the same generation config, then writes the
unsharded ``scores.csv``, ``lstd.csv``, ``results.json`` and ``manifest.json``:

* per-image scores and per-image L-STD are concatenated (each image belongs to one shard);
* means, G-STD and L-STD are recomputed from them by :meth:`benchmark.results.Result.from_scores`,
  the function the runner uses, over all images (never averaged over shards);
* set-level metrics (FID, KID) are recomputed per run over the images of all shards, from
  the stored samples, by :func:`benchmark.scoring.score_sets`, as in the runner.

The data set (image ids, LR/HR paths) comes from the plain-data record in the shard manifests
(:mod:`benchmark.datarecord`); nothing read from the folder is instantiated or unpickled.

The result equals an unsharded run of the same config (``timing`` aside, which sums the shards).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import pandas as pd

from benchmark import datarecord
from benchmark.cliargs import EXIT_USAGE, option_style
from benchmark.config import resolve_device
from benchmark.lock import OutputLockedError, holds_output_locks, lock_output
from benchmark.metrics import resolve
from benchmark.report import format_table
from benchmark.results import Excluded, Result
from benchmark.scoring import MetricPlan, build_scorers, score_sets, tidy
from benchmark.shard import read_json
from benchmark.stats import StatsConfig
from benchmark.store import SET_IMAGE, Store, atomic_write_csv, atomic_write_json, config_hash, read_csv

log = logging.getLogger("srbench")

_MANIFEST = re.compile(r"^manifest\.shard-(\d+)-of-(\d+)\.json$")


def find_sharded(output_dir: Path) -> list[Path]:
    """Result folders under ``output_dir`` that hold shard manifests."""
    return sorted({p.parent for p in output_dir.rglob("manifest.shard-*-of-*.json") if ".hydra" not in p.parts})


@holds_output_locks
def merge_folder(root: Path, device: str = "cpu") -> Result:
    """Merge the shards of one result folder; write and return the merged result.

    Holds the folder's ``.lock`` exclusively, as an unsharded run does, so no shard or run can
    write the folder while its files are assembled (raises OutputLockedError naming the
    holder). Temporary files left by a killed earlier merge (``.<name>.*.tmp``) are removed.
    """
    lock_output(root)
    _remove_stale_tmp(root)
    return _merge_locked(root, device)


def _remove_stale_tmp(root: Path) -> None:
    """Delete ``.<name>.*.tmp`` files in ``root`` (not in samples/): atomic writes leave them only
    when killed mid-write, and with the exclusive lock held no other process is writing one."""
    stale = sorted(p for p in root.glob(".*.tmp") if p.is_file() and not p.name.startswith(".lock"))
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) left by a killed write: %s", len(stale), ", ".join(p.name for p in stale))


def _merge_locked(root: Path, device: str) -> Result:
    # the shard counts present (which shards finished is read from their results files below)
    counts = {int(m.group(2)) for p in root.glob("manifest.shard-*-of-*.json") if (m := _MANIFEST.match(p.name))}
    if not counts:
        raise FileNotFoundError(f"{root} holds no manifest.shard-*-of-*.json: nothing to merge")
    if len(counts) > 1:
        raise ValueError(f"{root} holds shards of different shard.count values ({sorted(counts)}): delete the "
                         f"files of the count you do not want (manifest/scores/lstd/results.shard-*-of-N.*)")
    count = next(iter(counts))
    tags = [f"shard-{i}-of-{count}" for i in range(count)]
    missing = [i for i, t in enumerate(tags) if not (root / f"results.{t}.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{root}: shard(s) {', '.join(map(str, missing))} of {count} have not finished (no results.shard-i-of-"
            f"{count}.json); run them with shard.index=<i> shard.count={count} and merge again")
    manifests = [read_json(root / f"manifest.{t}.json") for t in tags]
    results = [Result.from_json(read_json(root / f"results.{t}.json"), str(root / f"results.{t}.json"))
               for t in tags]
    hashes = {m.get("generation_hash") for m in manifests}
    if len(hashes) != 1:
        raise ValueError(f"{root}: the shards were generated with different configurations (generation hashes "
                         f"{', '.join(sorted(str(h)[:12] for h in hashes))}); rerun the odd ones with overwrite=true")
    # shard and pipeline (overlapped or sequential scoring: the same values) may differ between shards
    scoring = {json.dumps({k: v for k, v in (r.config or {}).items() if k not in ("shard", "pipeline")},
                          sort_keys=True) for r in results}
    if len(scoring) != 1:
        raise ValueError(f"{root}: the shards were scored with different configurations (metrics, runs, "
                         f"crop_border, ...); rerun them with one config")

    first = results[0]
    # image ids stay strings ("001", "NA", "null": store.read_csv); only an empty cell is missing
    scores = pd.concat([read_csv(root / f"scores.{t}.csv") for t in tags], ignore_index=True)
    lstd_df = pd.concat([read_csv(root / f"lstd.{t}.csv") for t in tags], ignore_index=True)
    # an undefined per-image L-STD (one run) is an empty cell: back to None, as the runner holds it
    lstd_df["lstd"] = pd.Series([None if pd.isna(v) else float(v) for v in lstd_df["lstd"]], dtype=object)
    scores["seed"] = scores["seed"].astype("Int64")
    scores = scores[scores["image"] != SET_IMAGE]

    config = dict(first.config or {}, shard={"index": 0, "count": 1})
    # The data set comes from the plain-data record the runner wrote into each shard manifest,
    # never from the stored config's _target_: a results folder is data, not code.
    records = [m.get(datarecord.RECORD_KEY) for m in manifests]  # read_json: each manifest is a JSON object
    samples = datarecord.samples_of(records[0], root / f"manifest.{tags[0]}.json")
    for t, rec in zip(tags[1:], records[1:]):
        other = datarecord.samples_of(rec, root / f"manifest.{t}.json")
        if [s.id for s in other] != [s.id for s in samples] or rec.get("content_hash") != records[0].get("content_hash"):
            raise ValueError(f"{root}: manifest.{t}.json records another data set than manifest.{tags[0]}.json "
                             f"(image list or content hash differ); rerun the odd shard with the same data set")
    ids = [s.id for s in samples]
    have = set(lstd_df["image"])
    if have != set(ids):
        lost = sorted(set(ids) - have)
        raise ValueError(f"{root}: the shards cover {len(have)} of the data set's {len(ids)} images"
                         + (f" (missing: {', '.join(lost[:10])})" if lost else "")
                         + "; was the data set changed after the shards ran?")
    order = {i: n for n, i in enumerate(ids)}
    lstd_df = lstd_df.assign(_o=lstd_df["image"].map(order)).sort_values("_o").drop(columns="_o")
    lstd_df = lstd_df.reset_index(drop=True)

    # Set-level metrics over all images of each run, with the runner's scorers and scoring code.
    runs = int(first.runs or 1)
    seed_of = scores.drop_duplicates("run").set_index("run")["seed"].to_dict()  # {} when no value was scored
    store = Store(Path(config["output_dir"]), first.dataset, first.method)
    store.root = root  # the folder merged, wherever output_dir pointed when the shards ran
    selection = resolve(config["metrics"])
    plan = MetricPlan(build_scorers(list(first.metrics), selection.options, resolve_device(device),
                                    int(first.crop_border or 0), kinds=("set",)), dict(first.skipped))
    # per-image values the shards excluded (each image belongs to one shard); set metrics are
    # rescored here, so their exclusions come from score_sets below
    for r in results:
        for name, m in r.metrics.items():
            if m.kind != "set":
                plan.excluded += [Excluded.from_json(name, e) for e in (m.excluded or [])]
    scores = tidy(scores, score_sets(samples, store, runs, [seed_of.get(r) for r in range(runs)], plan))

    timing = dict(first.timing or {})
    for key in ("generation_seconds", "scoring_seconds", "image_runs_timed"):
        if all(isinstance(r.timing_value(key), (int, float)) for r in results):
            timing[key] = sum(r.timing_value(key) for r in results)
    seconds = [r.timing_value("seconds_per_image_run") for r in results]
    timed = [r.timing_value("image_runs_timed") or 0 for r in results]
    if all(s is not None for s in seconds) and sum(timed):
        timing["seconds_per_image_run"] = sum(s * n for s, n in zip(seconds, timed)) / sum(timed)
    timing["shards"] = count
    merged = Result.from_scores(
        scores, lstd_df, plan.specs, method=first.method, dataset=first.dataset, runs=runs, seed=first.seed,
        crop_border=first.crop_border, stochastic=first.stochastic, num_images=len(samples),
        skipped=plan.skipped, timing=timing, config=config, versions=first.versions, excluded=plan.excluded,
        # intervals over all images (never the shards' own), as an unsharded run computes them
        stats=StatsConfig.from_mapping(config.get("stats")),
        # where the shards ran their per-image metrics (one device, or each of them)
        scoring_device=", ".join(sorted({r.scoring_device for r in results if r.scoring_device})) or None)
    merged.extra = dict(first.extra)  # keys this srbench does not know travel unchanged

    manifest = {k: v for k, v in manifests[0].items() if k != "shard"}
    manifest["config"] = config
    manifest["config_hash"] = config_hash(config)
    manifest["merged_from"] = [f"manifest.{t}.json" for t in tags]
    atomic_write_csv(root / "scores.csv", scores)
    atomic_write_csv(root / "lstd.csv", lstd_df)
    atomic_write_json(root / "results.json", merged.to_json())
    atomic_write_json(root / "manifest.json", manifest)
    return merged


def merge(output_dir: str | Path, device: str = "cpu") -> list[Path]:
    """Merge every sharded result folder under ``output_dir``; return the results.json paths."""
    out = Path(output_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"output folder {out} does not exist")
    folders = find_sharded(out) if not list(out.glob("manifest.shard-*-of-*.json")) else [out]
    if not folders:
        raise FileNotFoundError(f"no sharded results under {out} (no manifest.shard-*-of-*.json); "
                                f"run with shard.index=<i> shard.count=<k> first")
    written = []
    for root in folders:
        merge_folder(root, device)
        written.append(root / "results.json")
    return written


def main(argv: list[str]) -> int:
    """CLI: ``merge <output_dir> [--device cpu]``; exit 0 merged, 2 bad input (nothing to merge, shards unfinished
    or inconsistent)."""
    ap = argparse.ArgumentParser(prog="python -m benchmark merge", description=__doc__.split("\n\n")[0])
    ap.add_argument("output_dir", help="the output_dir of the shards (or one <dataset>/<method> folder)")
    ap.add_argument("--device", default="cpu", help="device for set-level metrics such as FID (default cpu)")
    args = ap.parse_args(option_style(argv, ["device"], "merge"))
    try:
        paths = merge(args.output_dir, args.device)
    except (ValueError, OSError, OutputLockedError) as err:  # OSError: FileNotFoundError, OutputWriteError
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    for p in paths:
        print(format_table(Result.from_json(json.loads(p.read_text()), str(p))))
        print(f"merged: {p}")
    return 0


__all__ = ["merge", "merge_folder", "find_sharded", "main"]
