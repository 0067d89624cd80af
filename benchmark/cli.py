"""``python -m benchmark <command>``: the tools around a run. Each command is one function here
that imports its implementation lazily, so `python -m benchmark --help` stays fast.

Every command takes a positional folder or config overrides (``key=value``, as ``run_bench.py``)
and options spelled ``--name value``; the older spelling ``name=value`` of an option is accepted
with a note. Exit codes are shared (README, "Command-line tools"):
0 ok, 1 a regression found (check: regressed),
2 usage or input error (unknown option, unreadable or not comparable input; weights: a file is missing,
as a run that lacks it exits 2).
"""

from __future__ import annotations

import sys
from typing import Callable

from benchmark.cliargs import EXIT_FOUND, EXIT_OK, EXIT_USAGE, option_style  # noqa: F401  (the shared codes)


COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {}


def command(name: str, help: str) -> Callable[[Callable[[list[str]], int]], Callable[[list[str]], int]]:
    def deco(fn: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
        COMMANDS[name] = (help, fn)
        return fn

    return deco


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m benchmark <command> ...``; return the exit status.

    A user error prints ``error: <message>`` and returns 2 (no traceback; ``--debug`` shows it),
    Ctrl-C prints one line and returns 130; otherwise the command's own status (the gate: 1
    when a result regressed).
    """
    from benchmark import errors

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = errors.debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    return errors.guarded(lambda: _dispatch(argv), debug)


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m benchmark <command> [args]\n\ncommands:")
        for name, (help_, _) in sorted(COMMANDS.items()):
            print(f"  {name:<10} {help_}")
        print("\nthe benchmark itself runs with: python run_bench.py method=<m> dataset=<d>")
        print("--debug (any command): show the traceback of an error")
        print("exit codes: 0 ok, 1 regression or failure found, 2 usage or input error")
        return EXIT_OK
    if argv[0] not in COMMANDS:
        print(f"unknown command {argv[0]!r}; commands: {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[argv[0]][1](argv[1:])
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE


@command("list", "list registered methods, metrics, data sets and metric presets")
def _list(argv: list[str]) -> int:
    if argv:
        print(f"python -m benchmark list takes no arguments, got {' '.join(argv)}", file=sys.stderr)
        return EXIT_USAGE
    from benchmark.data import DATASETS
    from benchmark.metrics import METRICS, preset_names
    from methods import METHODS

    print("methods:  " + ", ".join(METHODS.names()))
    print("datasets: " + ", ".join(DATASETS.names()))
    from benchmark.metrics.options import schema

    for name in METRICS.names():
        s = METRICS.get(name)
        print(f"metric {name:<8} {s.kind:<3} {'higher' if s.higher_is_better else 'lower'} is better, "
              f"crop={'yes' if s.crop else 'no'}, backend={s.backend}: {s.description}")
        for o in schema(s.options):  # every option, its default and allowed values
            default = "null" if o.default is None else str(o.default).lower() if isinstance(o.default, bool) \
                else o.default
            print(f"    metrics.{name}.{o.name}={default}  "
                  f"({o.allowed()}): {o.doc}")
    print("metric presets: " + ", ".join(preset_names()))
    return EXIT_OK



@command("report", "paper tables (LaTeX, Markdown, CSV), plots and index.html: report <output_dir> [--datasets a,b] ...")
def _report(argv: list[str]) -> int:
    from benchmark.report.cli import report_main

    return report_main(argv)


@command("check", "regression gate: check <results> --baseline <file> [--datasets a,b] (exit 0 ok, 1 regressed, 2 not comparable)")
def _check(argv: list[str]) -> int:
    from benchmark.regression import main as check_main

    return check_main(argv)


@command("weights", "files a run needs: weights [override ...] [--download] (exit 2 when one is missing)")
def _weights(argv: list[str]) -> int:
    from benchmark.doctor import doctor

    return doctor(argv)


@command("data", "test sets: data list | data fetch <name> | data verify <name>")
def _data(argv: list[str]) -> int:
    from benchmark.testsets import cli

    return cli(argv)


@command("merge", "assemble image shards (shard.index/shard.count) into one result: merge <output_dir> [--device cpu]")
def _merge(argv: list[str]) -> int:
    from benchmark.merge import main as merge_main

    return merge_main(argv)
