"""Argument handling of ``python -m benchmark report <output_dir> [key=value ...]``."""

from __future__ import annotations

import sys

from benchmark.cliargs import EXIT_OK, EXIT_USAGE, option_style
from benchmark.stats import StatsConfig
from benchmark.report.names import load
from benchmark.report import build_report

USAGE = """usage: python -m benchmark report <output_dir> [--datasets a,b] [--methods x,y] [--out <dir>]
                                  [--images id1,id2] [--max-images 6] [--all-runs id1,id2]
                                  [--plots true] [--html true]
                                  [--stats.enabled true] [--stats.level 0.95] [--stats.resamples 2000]
                                  [--stats.seed 0] [--runs-plot true]
                                  [--names <names.yaml>] [--names.<key> <display name> ...]

Gathers every results.json below <output_dir> and writes to out (default <output_dir>/report):
  table.tex  table.md  table.csv   Table 1 of the CCSR paper (mean/G-STD, L-STD; best red, second blue)
  timing.tex timing.md             Table 2 style (parameters, seconds per image-run), when timing exists
  results.csv                      the tidy frame every table and plot is made from
  plots/*.png plots/*.pdf          G-STD bars, per-image mean vs std, quality vs stability, L-STD maps,
                                   best/worst visual comparison, runs_<dataset>: G-STD and L-STD from
                                   N = 2..runs of the stored runs, spread_<dataset>_<image>: each run's value
                                   per metric (box and dots; deterministic methods as a line),
                                   allruns_<dataset>_<image> (with --all-runs): every run's crop beside LR, HR
  plots/*.csv                      the values those plots draw (quality_stability_, spread_, allruns_)
  index.html                       static report, each image once with its pictures, scores and spread
--images picks the images of the per-image views (default: the first --max-images of each data set);
--all-runs id draws the all-runs strip of that image (it joins the per-image views). An unknown id is
an error that lists the valid ones.
--datasets and --methods choose and order rows and columns. --names.<key> <display> (or --names <file.yaml>
of key: display lines, whose order orders methods and data sets) sets the names printed for a method,
data set or metric (e.g. --names.noise_control "Noise control" --names.psnr PSNR-Y). Numbers stored with confidence intervals
print them in brackets; the best of a row is coloured only when a paired bootstrap over images
says it beats the second (else both get a dagger); --stats.enabled false gives the plain marking.
The older spelling key=value (datasets=a,b) is accepted. Exit 0 written, 2 usage or input error."""

KEYS = {"names", "datasets", "methods", "out", "images", "max_images", "all_runs", "plots", "html", "runs_plot",
        "stats.enabled", "stats.level", "stats.resamples", "stats.seed"}


def _bool(key: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{key}={value}: expected true or false")


def _pairs(argv: list[str]) -> list[tuple[str | None, str]]:
    """(option, value) pairs of ``--key value`` / ``--key=value`` / ``key=value``; (None, arg) for positionals."""
    argv = option_style(argv, KEYS, "report")
    out: list[tuple[str | None, str]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            if not eq:
                if i + 1 >= len(argv):
                    raise ValueError(f"option --{key} needs a value\n{USAGE}")
                i += 1
                value = argv[i]
            out.append((key if key.startswith("names.") else key.replace("-", "_"), value))
        elif "=" in arg:  # key=value of an unknown key
            out.append((arg.split("=", 1)[0], arg.split("=", 1)[1]))
        else:
            out.append((None, arg))
        i += 1
    return out


def parse(argv: list[str]) -> dict:
    """``<output_dir> --key value ...`` (or ``key=value``) -> keyword arguments of build_report."""
    kwargs: dict = {"root": None}
    stats_keys: dict = {}
    name_items: dict = {}
    for key, value in _pairs(argv):
        if key is None:
            if kwargs["root"] is not None:
                raise ValueError(f"unexpected argument {value!r}: give one folder, then --key value options\n{USAGE}")
            kwargs["root"] = value
            continue
        if key.startswith("names.") and len(key) > len("names."):
            name_items[key[len("names."):]] = value.strip("'\"")
            continue
        if key == "names":
            kwargs["_names_file"] = value
            continue
        if key not in KEYS:
            raise ValueError(f"unknown option {key!r}; options: {', '.join(sorted(KEYS))}")
        if key == "max_images":
            try:
                kwargs[key] = int(value)
            except ValueError:
                raise ValueError(f"max_images={value}: expected an integer >= 0") from None
            if kwargs[key] < 0:
                raise ValueError(f"max_images={value}: expected an integer >= 0")
        elif key in ("plots", "html", "runs_plot"):
            kwargs[key] = _bool(key, value)
        elif key.startswith("stats."):
            stats_keys[key.split(".", 1)[1]] = _bool(key, value) if key == "stats.enabled" else value
        else:
            kwargs[key] = value
    if stats_keys:

        try:
            kwargs["stats"] = StatsConfig.from_mapping(stats_keys)
        except (TypeError, ValueError) as err:  # int("x") / float("x") name no key: add it
            raise ValueError(f"{', '.join(f'stats.{k}={v}' for k, v in stats_keys.items())}: {err}") from None
    if name_items or "_names_file" in kwargs:

        kwargs["names"] = load(kwargs.pop("_names_file", None), name_items)
    if kwargs["root"] is None:
        raise ValueError(f"give the folder that holds the results (the output_dir of the runs)\n{USAGE}")
    return kwargs


def report_main(argv: list[str]) -> int:

    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return EXIT_OK
    try:
        rep = build_report(**parse(argv))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    print((rep.out / "table.md").read_text(encoding="utf-8"))
    for note in rep.notes:
        print(f"note: {note}")
    print(f"wrote {len(rep.files)} files to {rep.out}:")
    # every file written at the top of the report folder (tables, timing, tidy CSV, index.html), then folders
    for path in rep.files:
        if path.parent == rep.out:
            print(f"  {path}")
    below: dict[str, int] = {}
    for path in rep.files:
        if path.parent != rep.out:
            top = path.relative_to(rep.out).parts[0]
            below[top] = below.get(top, 0) + 1
    for top, n in below.items():
        print(f"  {rep.out / top}/ ({n} files)")
    return 0
