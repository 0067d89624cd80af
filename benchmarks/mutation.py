"""Mutation score of the code that decides srbench's numbers, measured with mutmut.

mutmut (https://github.com/boxed/mutmut) plants one small change at a time in a copy of the
modules (``<`` for ``<=``, ``ddof=1`` for ``ddof=0``, ``True`` for ``False``, a dropped argument,
...) and runs the tests that cover the changed function; a mutant that no test notices
"survives". This script runs mutmut in a temporary copy of the checkout (nothing is written
into the working tree), over the modules and tests below, then prints killed/survived per
module and the diff of every survivor, so each can be fixed with a test or justified.

    python benchmarks/mutation.py                      # the default modules and tests
    python benchmarks/mutation.py --modules benchmark/stability.py --tests tests/test_stability.py
    python benchmarks/mutation.py --functions 'benchmark.regression.x_compare*'

It is a separate step (minutes to an hour on 2 cores), not part of the test run. The recorded
score and the survivors are in docs/testing.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the modules that decide numbers (DESIGN.md): G-STD/L-STD, metric facts and wrappers, the
#: per-(image, run) scoring, results (means, blanking), the runner's seeding, merge, the gate and
#: the ranking of the paper tables
MODULES = [
    "benchmark/stability.py",
    "benchmark/results.py",
    "benchmark/scoring.py",
    "benchmark/metrics/__init__.py",
    "benchmark/metrics/pyiqa_metrics.py",
    "benchmark/metrics/fast_exact.py",
    "benchmark/merge.py",
    "benchmark/regression.py",
    "benchmark/report/tables.py",
]
TESTS = [
    "tests/test_stability.py",
    "tests/test_runner.py",
    "tests/test_regression.py",
    "tests/test_report.py",
    "tests/test_shard_merge.py",
    "tests/test_fast_exact.py",
    "tests/test_metrics_calibration.py",
    "tests/test_metric_backends.py",
]


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


def write_config(copy: Path, modules: list[str], tests: list[str]) -> None:
    tops = sorted({m.split("/")[0] for m in modules})
    others = sorted({f.split("/")[0] for f in tracked_files()} - set(tops) - {"setup.cfg"})
    lines = ["[mutmut]", "source_paths=", *[f"    {t}" for t in tops], "only_mutate=",
             *[f"    {m}" for m in modules], "pytest_add_cli_args_test_selection=", *[f"    {t}" for t in tests],
             "pytest_add_cli_args=", "    -p", "    no:cacheprovider", "    -q", "also_copy=",
             *[f"    {o}" for o in others]]
    (copy / "setup.cfg").write_text("\n".join(lines) + "\n")


def parse_results(text: str) -> dict[str, str]:
    """``mutmut results --all true`` lines ``    <mutant>: <status>`` -> {mutant: status}."""
    out = {}
    for line in text.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name.count(".") >= 1 and "__mutmut_" in name:
            out[name] = status.strip()
    return out


def module_of(mutant: str) -> str:
    return mutant.split(".x_")[0].split(".xǁ")[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", nargs="+", default=MODULES, help="files to mutate")
    ap.add_argument("--tests", nargs="+", default=TESTS, help="test files that may kill the mutants")
    ap.add_argument("--functions", nargs="*", default=[], help="mutant name globs (mutmut run NAMES)")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = ap.parse_args(argv)
    for m in [*args.modules, *args.tests]:
        if not (ROOT / m).is_file():
            print(f"error: {m} does not exist in {ROOT}", file=sys.stderr)
            return 2
    if shutil.which("mutmut") is None:
        print("error: mutmut is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    box = Path(tempfile.mkdtemp(prefix="srbench-mutation-"))
    tmp = box / "srbench"
    try:
        for f in tracked_files():
            (tmp / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, tmp / f)
        # ../shared beside the copy, as beside the checkout (tests skip without it)
        if (ROOT.parent / "shared").exists():
            os.symlink(ROOT.parent / "shared", box / "shared")
        write_config(tmp, args.modules, args.tests)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        t0 = time.perf_counter()
        run = subprocess.run(["mutmut", "run", "--max-children", str(args.max_children), *args.functions], cwd=tmp,
                             env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        res = subprocess.run(["mutmut", "results", "--all", "true"], cwd=tmp, env=env, capture_output=True,
                             text=True)
        status = parse_results(res.stdout)
        if run.returncode != 0 and not status:
            print(run.stdout[-3000:] + run.stderr[-3000:], file=sys.stderr)
            return 1
        per: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for name, st in status.items():
            per[module_of(name)][st] += 1
        print(f"mutmut over {len(args.modules)} module(s), tests {' '.join(args.tests)}; {wall:.0f} s wall, "
              f"{args.max_children} worker(s)\n")
        print(f"{'module':<36} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} {'timeout':>7} "
              f"{'score':>6}")
        tot: collections.Counter = collections.Counter()
        for mod in sorted(per):
            c = per[mod]
            tot.update(c)
            tested = c["killed"] + c["survived"] + c["timeout"]
            score = f"{(c['killed'] + c['timeout']) / tested:.0%}" if tested else "-"
            print(f"{mod:<36} {sum(c.values()):>7} {c['killed']:>7} {c['survived']:>8} {c['no tests']:>8} "
                  f"{c['timeout']:>7} {score:>6}")
        tested = tot["killed"] + tot["survived"] + tot["timeout"]
        if tested:
            print(f"{'total':<36} {sum(tot.values()):>7} {tot['killed']:>7} {tot['survived']:>8} "
                  f"{tot['no tests']:>8} {tot['timeout']:>7} {(tot['killed'] + tot['timeout']) / tested:>6.0%}")
        survivors = sorted(n for n, st in status.items() if st == "survived")
        if survivors:
            print("\nsurvivors (each needs a test or a justification in docs/testing.md):")
        for name in survivors:
            diff = subprocess.run(["mutmut", "show", name], cwd=tmp, env=env, capture_output=True, text=True).stdout
            changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
            print(f"\n{name}\n  " + "\n  ".join(changed))
        return 0
    finally:
        if args.keep:
            print(f"\n(copy kept at {tmp})")
        else:
            shutil.rmtree(box, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
