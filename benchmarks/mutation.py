"""Mutation score of the code that decides srbench's numbers, measured with mutmut.

mutmut (https://github.com/boxed/mutmut) plants one small change at a time in a copy of the
modules (``<`` for ``<=``, ``ddof=1`` for ``ddof=0``, ``True`` for ``False``, a dropped argument,
...) and runs the tests that cover the changed function; a mutant that no test notices
"survives". This script runs mutmut in a temporary copy of the checkout (nothing is written
into the working tree), over the modules and tests below, then prints killed/survived per
module and the diff of every survivor, so each can be fixed with a test or justified.

    python benchmarks/mutation.py                      # each default module with its own tests (TEST_MAP)
    python benchmarks/mutation.py --modules benchmark/scoring.py --json /tmp/scoring.json
    python benchmarks/mutation.py --modules benchmark/stability.py --tests tests/test_stability.py
    python benchmarks/mutation.py --modules benchmark/regression.py --functions 'benchmark.regression.x_compare*'

Without ``--tests`` each module runs in its own mutmut run with the test files of
:data:`TEST_MAP` (mutmut then runs, for each mutant, only the tests that call the mutated
function), so a mutant costs seconds, not a whole suite. Lines matching :data:`SKIP_PATTERNS`
(error messages, logging, warnings, prints) are not mutated: a changed message text decides
no number (``--all-lines`` mutates them too).

It is a separate step (minutes to an hour on 2 cores), not part of the test run. The recorded
score and the survivors are in docs/testing.md.
"""

from __future__ import annotations

import argparse
import ast
import collections
import fnmatch
import json
import os
import re
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
    "benchmark/sink.py",  # the runner's seeding only (FUNCTIONS)
]
#: modules of which only some functions decide numbers: without ``--functions`` only their mutants
#: run (mutmut's names; the sink's writer, timing and progress decide no number)
FUNCTIONS: dict[str, list[str]] = {
    "benchmark/sink.py": ["benchmark.sink.x_run_seed__mutmut_*", "benchmark.sink.xǁSampleSinkǁseed__mutmut_*",
                          "benchmark.sink.xǁSampleSinkǁgenerators__mutmut_*"],
}
#: the test files that may kill each module's mutants (the fast ones that call its functions
#: in-process; tests that start srbench in a subprocess cannot see mutmut's trampolines)
TEST_MAP: dict[str, list[str]] = {
    "benchmark/stability.py": ["tests/test_stability.py",
                               "tests/test_stored_state.py::test_running_moments_equal_the_two_pass_std"],
    "benchmark/results.py": ["tests/test_results.py",
                             "tests/test_failure_policy.py::test_means_and_gstd_use_the_values_that_exist"],
    "benchmark/scoring.py": ["tests/test_scoring.py"],
    "benchmark/metrics/__init__.py": [
        f"tests/test_metric_options.py::{t}" for t in (
            "test_spec_label_defaults_and_options_are_typed_before_factory_and_weights",
            "test_too_small_is_judged_on_what_the_metric_sees", "test_every_direction_and_kind_equals_pyiqa",
            "test_every_config_file_declares_exactly_the_schema_with_its_defaults",
            "test_presets_use_the_metric_files_and_keep_their_defaults", "test_every_option_is_settable_without_plus",
            "test_a_python_list_of_names_resolves_like_the_metric_files",
            "test_invalid_options_name_metric_option_value_and_allowed_values", "test_every_problem_is_listed_at_once",
            "test_option_problems_lists_each_problem_of_a_config_as_resolve_finds_it",
            "test_preset_names_are_the_files_of_conf_metrics",
            "test_a_metric_module_named_by_its_yaml_is_imported_and_registers_at_test_time",
            "test_a_metric_file_with_interpolations_is_resolved_like_hydra_resolves_it")],
    # test_pyiqa_wrappers.py: PSNR's cap, batches, per-run HR, float64, NIQE's file and .npz conversion;
    # the option tests check every option of psnr/ssim/niqe against pyiqa called with it
    "benchmark/metrics/pyiqa_metrics.py": [
        "tests/test_metrics_calibration.py", "tests/test_fast_exact.py", "tests/test_pyiqa_wrappers.py",
        *(f"tests/test_metric_options.py::{t}" for t in (
            "test_psnr_options_equal_pyiqa", "test_psnr_colour_space_and_channel_change_the_value",
            "test_ssim_options_equal_pyiqa", "test_ssim_downsample_changes_the_value",
            "test_niqe_options_equal_pyiqa"))],
    "benchmark/metrics/fast_exact.py": ["tests/test_fast_exact.py",
                                        "tests/test_metric_options.py::test_ssim_options_equal_pyiqa",
                                        "tests/test_metric_options.py::test_ssim_downsample_changes_the_value",
                                        "tests/test_metric_options.py::test_niqe_options_equal_pyiqa"],
    # not tests/test_shard_merge.py: each of its tests runs every shard's whole benchmark (seconds per
    # test, and mutmut reruns them per mutant: 491 mutants ran 79 in 14 min, 30 of them timing out);
    # these build the shard folders with the runner's writers and check merge against numpy
    "benchmark/merge.py": ["tests/test_merge_units.py"],
    # test_regression_units.py: hand-made results in-process (baseline files, --ci from a file, --tol, the
    # diff table by hand, key=value options); the main-level tests of test_regression.py write folders
    "benchmark/regression.py": ["tests/test_regression_units.py", *(
        f"tests/test_regression.py::{t}" for t in (
            "test_default_tolerances_are_the_documented_rules_and_the_specs",
            "test_a_metric_spec_with_its_own_tolerances_reaches_the_gate", "test_tolerance_rules",
            "test_compare_by_hand_direction_boundary_and_intervals", "test_junit_xml", "test_regressions_exit_1",
            "test_improvements_in_either_direction_pass", "test_lstd_increase_is_a_stability_regression",
            "test_tolerances_decide", "test_protocol_changes_exit_2", "test_missing_and_new_results_exit_2",
            "test_results_json_and_folder_work_as_baselines"))],
    # the rule in-process, then samples of seed=7 runs=2 against the method called directly, and a
    # source that draws no seeds
    "benchmark/sink.py": [f"tests/test_runner.py::{t}" for t in (
        "test_run_r_is_seeded_seed_plus_r_by_the_sink", "test_seed_offset_samples_equal_direct_calls",
        "test_issue_done_when_precomputed")],
    # test_tables_units.py: hand-made tidy frames, every cell, rank, mark and note worked out by hand
    "benchmark/report/tables.py": [
        "tests/test_tables_units.py",
        *(f"tests/test_report.py::{t}" for t in (
            "test_rank_best_and_second_with_ties_and_both_directions", "test_values_that_print_the_same_tie",
            "test_golden_latex_and_markdown", "test_csv_and_tidy_frame_agree_with_the_fixture",
            "test_single_run_of_a_stochastic_method_prints_undefined_spread",
            "test_report_of_deterministic_results_only")),
        *(f"tests/test_stats_report.py::{t}" for t in (
            "test_report_marks_only_separated_bests_and_shows_intervals",
            "test_report_ties_when_best_and_second_overlap", "test_untested_rows_keep_plain_marking_and_say_why"))],
}
#: source lines that are not mutated (regular expressions, mutmut's do_not_mutate_patterns):
#: the text of errors, log records, warnings and prints decides no number; the conditions that
#: raise them are on other lines and are mutated
SKIP_PATTERNS = [
    r"^\s*raise\b",
    r"^\s*(log|logger|logging)\.(debug|info|warning|error|exception)\(",
    r"^\s*warnings\.warn\(",
    r"^\s*print\(",
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


#: prefix of a decorated function's body once :func:`undecorate` has split it from its decorators
#: (mutant names then read e.g. ``benchmark.regression.xǁComparisonǁ_undecorated_exit_code__mutmut_1``)
UNDECORATED = "_undecorated_"


def undecorate(source: str) -> str:
    """``source`` with each decorated module-level function and method split from its decorators.

    mutmut 3 does not mutate a function that carries a decorator other than a lone ``@staticmethod``
    or ``@classmethod`` (mutmut's ``file_mutation.py``: a decorator may change what the function
    does, and ``@property`` breaks its trampoline), so ``@property``s such as the gate's
    ``Comparison.exit_code`` and the ``@torch.no_grad()`` ``__call__`` of the SSIM/NIQE/pyiqa
    scorers were never measured. In the copy only, ::

        @d1
        @d2(arg)
        def f(...): body

    becomes ::

        def _undecorated_f(...): body
        f = d1(d2(arg)(_undecorated_f))

    which binds ``f`` to the same object Python builds for the decorated form (decorators apply
    bottom-up to the function), except that the function's ``__name__`` is ``_undecorated_f``
    and the decorator expressions are evaluated after the ``def`` rather than before it.
    ``_undecorated_f`` carries no decorator, so mutmut mutates it. Lone ``@staticmethod`` /
    ``@classmethod`` functions (which mutmut handles) and nested functions are left as they are; a
    name defined twice in one scope (a property and its setter) gets ``_2``, ``_3``, ... so that
    mutmut's mutant names stay unique.
    """
    tree = ast.parse(source)
    found = []  # (function node, its decorators' source, the new name) of module-level functions and methods
    for scope in [tree.body, *(c.body for c in tree.body if isinstance(c, ast.ClassDef))]:
        used: collections.Counter = collections.Counter()  # a property's setter repeats its name
        for node in scope:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.decorator_list:
                continue
            decos = [ast.get_source_segment(source, d) for d in node.decorator_list]
            if decos in (["staticmethod"], ["classmethod"]):
                continue
            used[node.name] += 1
            suffix = f"_{used[node.name]}" if used[node.name] > 1 else ""
            found.append((node, decos, UNDECORATED + node.name + suffix))
    lines = source.splitlines(keepends=True)
    for node, decos, inner in sorted(found, key=lambda f: -f[0].lineno):  # bottom-up: lines above stay valid
        first = min(d.lineno for d in node.decorator_list)  # 1-based; decorators fill lines first..lineno-1
        indent = lines[first - 1][:len(lines[first - 1]) - len(lines[first - 1].lstrip())]
        name = node.name
        expr = inner
        for deco in reversed(decos):
            expr = f"{deco}({expr})"
        lines.insert(node.end_lineno, f"{indent}{name} = {expr}\n")
        lines[node.lineno - 1] = re.sub(rf"\bdef\s+{name}\s*\(", f"def {inner}(", lines[node.lineno - 1], count=1)
        del lines[first - 1:node.lineno - 1]
    return "".join(lines)


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


def write_config(copy: Path, modules: list[str], tests: list[str], skip: list[str] | None = None) -> None:
    """mutmut's ``[mutmut]`` section in ``copy/setup.cfg``: mutate ``modules`` only, run ``tests``,
    leave lines matching ``skip`` (default :data:`SKIP_PATTERNS`) unmutated."""
    skip = SKIP_PATTERNS if skip is None else skip
    tops = sorted({m.split("/")[0] for m in modules})
    others = sorted({f.split("/")[0] for f in tracked_files()} - set(tops) - {"setup.cfg"})
    lines = ["[mutmut]", "source_paths=", *[f"    {t}" for t in tops], "only_mutate=",
             *[f"    {m}" for m in modules], "pytest_add_cli_args_test_selection=", *[f"    {t}" for t in tests],
             "pytest_add_cli_args=", "    -p", "    no:cacheprovider", "    -q", "also_copy=",
             *[f"    {o}" for o in others]]
    if skip:
        lines += ["do_not_mutate_patterns=", *[f"    {p}" for p in skip]]
    (copy / "setup.cfg").write_text("\n".join(lines) + "\n")


def tests_for(modules: list[str]) -> list[str]:
    """The test files of :data:`TEST_MAP` for ``modules`` (in order, each once; TESTS for unmapped ones)."""
    out: list[str] = []
    for m in modules:
        out += [t for t in TEST_MAP.get(m, TESTS) if t not in out]
    return out


def dotted(module: str) -> str:
    """``benchmark/metrics/__init__.py`` -> ``benchmark.metrics`` (the prefix of its mutants' names)."""
    name = module.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def default_functions(modules: list[str]) -> list[str]:
    """The mutant globs of a run over ``modules`` without ``--functions``: :data:`FUNCTIONS` for the
    modules listed there, every mutant of the others; [] (every mutant) when none is listed."""
    if not any(m in FUNCTIONS for m in modules):
        return []
    return [g for m in modules for g in FUNCTIONS.get(m, [f"{dotted(m)}.x*"])]


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


#: one intra-op thread for torch/OpenMP/MKL in mutmut and its tests. mutmut forks one child per
#: mutant from a parent that has run the tests; once that parent has entered an OpenMP parallel
#: region (any torch operation on a large tensor: NIQE, SSIM on 512x512 images), the forked child
#: waits forever at its first parallel region (GNU OpenMP is not fork-safe), sleeping, so mutmut's
#: CPU-time limit never fires: fast_exact's mutants hung for 15 minutes at 0 % CPU. With one
#: thread no OpenMP team exists to inherit.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def mutmut_env() -> dict[str, str]:
    """The environment of a mutmut run: this one, without PYTHONPATH (the copy imports its own
    code), with one intra-op thread (:data:`THREAD_ENV`)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(THREAD_ENV)
    return env


def link_shared(shared: Path, copy: Path) -> list[Path]:
    """Make ``../shared`` (data and metric parameters the tests read) reachable from the copy as
    the tests see it: they find it at ``<their checkout>/../shared`` (tests/conftest.py), and
    mutmut runs them from ``<copy>/mutants``, whose parent is the copy itself, so a link beside the
    copy alone is not enough (before 2026-11-30 every test needing ../shared skipped under mutmut,
    and NIQE's code showed as "no tests"). Returns the links made (none when ``shared`` is absent)."""
    links = []
    if shared.exists():
        for where in (copy.parent / "shared", copy / "shared"):  # <copy>/tests/.., <copy>/mutants/tests/..
            if not where.exists():
                os.symlink(shared, where)
                links.append(where)
    return links


def run_mutmut(modules: list[str], tests: list[str], functions: list[str], max_children: int,
               skip: list[str], keep: bool) -> tuple[dict[str, str], dict[str, list[str]], float, str]:
    """One mutmut run in a temporary copy of the checkout: ({mutant: status}, {survivor: changed
    lines}, wall seconds, mutmut's output tail when it failed before giving any status)."""
    box = Path(tempfile.mkdtemp(prefix="srbench-mutation-"))
    tmp = box / "srbench"
    try:
        for f in tracked_files():
            (tmp / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, tmp / f)
        link_shared(ROOT.parent / "shared", tmp)
        for m in modules:
            (tmp / m).write_text(undecorate((tmp / m).read_text()))
        write_config(tmp, modules, tests, skip)
        env = mutmut_env()
        t0 = time.perf_counter()
        run = subprocess.run(["mutmut", "run", "--max-children", str(max_children), *functions], cwd=tmp,
                             env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        res = subprocess.run(["mutmut", "results", "--all", "true"], cwd=tmp, env=env, capture_output=True,
                             text=True)
        status = parse_results(res.stdout)
        if functions:  # statuses of the mutants asked for only (the others are "not checked")
            status = {n: st for n, st in status.items() if any(fnmatch.fnmatchcase(n, f) for f in functions)}
        failed = "" if status or run.returncode == 0 else run.stdout[-3000:] + run.stderr[-3000:]
        diffs = survivor_diffs(tmp, sorted(n for n, st in status.items() if st == "survived"), env)
        return status, diffs, wall, failed
    finally:
        if keep:
            print(f"(copy kept at {tmp})")
        else:
            shutil.rmtree(box, ignore_errors=True)


#: prints {mutant: diff} for the mutant names read from stdin, in one process (``mutmut show`` per
#: survivor starts mutmut once per mutant: minutes for a hundred survivors on a busy machine)
_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
print(json.dumps({n: get_diff_for_mutant(n, path=find_mutant(n).path) for n in json.load(sys.stdin)}))
"""


def survivor_diffs(copy: Path, names: list[str], env: dict[str, str]) -> dict[str, list[str]]:
    """The changed lines (``-`` original, ``+`` mutant) of each mutant, from mutmut's files in ``copy``."""
    if not names:
        return {}
    mutmut_python = Path(shutil.which("mutmut") or sys.executable).with_name("python")
    run = subprocess.run([str(mutmut_python) if mutmut_python.exists() else sys.executable, "-c", _DIFFS],
                         cwd=copy, env=env, input=json.dumps(names), capture_output=True, text=True)
    if run.returncode == 0:
        raw = json.loads(run.stdout.splitlines()[-1])
    else:  # an older mutmut without that module: one ``mutmut show`` per mutant
        raw = {n: subprocess.run(["mutmut", "show", n], cwd=copy, env=env, capture_output=True, text=True).stdout
               for n in names}
    return {n: [ln for ln in raw[n].splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
            for n in names}


def collect(copy: Path, functions: list[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Statuses and survivor diffs of a mutmut copy left by ``--keep`` (or by an interrupted run)."""
    env = mutmut_env()
    res = subprocess.run(["mutmut", "results", "--all", "true"], cwd=copy, env=env, capture_output=True, text=True)
    status = parse_results(res.stdout)
    if functions:
        status = {n: st for n, st in status.items() if any(fnmatch.fnmatchcase(n, f) for f in functions)}
    return status, survivor_diffs(copy, sorted(n for n, st in status.items() if st == "survived"), env)


def summary(status: dict[str, str]) -> dict[str, collections.Counter]:
    """Status counts per module (mutmut's statuses: killed, survived, no tests, timeout, ...)."""
    per: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for name, st in status.items():
        per[module_of(name)][st] += 1
    return per


def format_summary(per: dict[str, collections.Counter]) -> str:
    """The killed/survived table; score = (killed + timeout) / (killed + survived + timeout)."""
    lines = [f"{'module':<36} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} {'timeout':>7} "
             f"{'score':>6}"]
    tot: collections.Counter = collections.Counter()
    for mod in sorted(per):
        c = per[mod]
        tot.update(c)
        tested = c["killed"] + c["survived"] + c["timeout"]
        score = f"{(c['killed'] + c['timeout']) / tested:.0%}" if tested else "-"
        lines.append(f"{mod:<36} {sum(c.values()):>7} {c['killed']:>7} {c['survived']:>8} {c['no tests']:>8} "
                     f"{c['timeout']:>7} {score:>6}")
    tested = tot["killed"] + tot["survived"] + tot["timeout"]
    if tested:
        lines.append(f"{'total':<36} {sum(tot.values()):>7} {tot['killed']:>7} {tot['survived']:>8} "
                     f"{tot['no tests']:>8} {tot['timeout']:>7} {(tot['killed'] + tot['timeout']) / tested:>6.0%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", nargs="+", default=MODULES, help="files to mutate")
    ap.add_argument("--tests", nargs="+", default=None,
                    help="test files that may kill the mutants, one run over all modules (default: each module "
                         "in its own run with its TEST_MAP tests)")
    ap.add_argument("--functions", nargs="*", default=[], help="mutant name globs (mutmut run NAMES)")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--all-lines", action="store_true", help="mutate error messages, logging and prints too")
    ap.add_argument("--json", type=Path, help="write statuses, survivor diffs, tests and timings here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    ap.add_argument("--collect", type=Path, metavar="COPY",
                    help="run nothing: report the statuses in a copy kept by --keep (or left by an interrupted run)")
    args = ap.parse_args(argv)
    if args.collect:
        status, diffs = collect(args.collect, args.functions)
        return report(status, diffs, [{"collected_from": str(args.collect), "mutants": len(status)}], [], args.json)
    runs = [(args.modules, args.tests)] if args.tests else [([m], tests_for([m])) for m in args.modules]
    for modules, tests in runs:
        for m in [*modules, *(t.split("::")[0] for t in tests)]:  # a test may be a node id (file::test)
            if not (ROOT / m).is_file():
                print(f"error: {m} does not exist in {ROOT}", file=sys.stderr)
                return 2
    if shutil.which("mutmut") is None:
        print("error: mutmut is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    skip = [] if args.all_lines else SKIP_PATTERNS
    status: dict[str, str] = {}
    diffs: dict[str, list[str]] = {}
    record = []
    for modules, tests in runs:
        functions = args.functions or default_functions(modules)
        st, df, wall, failed = run_mutmut(modules, tests, functions, args.max_children, skip, args.keep)
        print(f"mutmut over {' '.join(modules)} with {' '.join(tests)}: {len(st)} mutants, {wall:.0f} s wall, "
              f"{args.max_children} worker(s)", flush=True)
        if failed:
            print(failed, file=sys.stderr)
            return 1
        status.update(st)
        diffs.update(df)
        record.append({"modules": modules, "tests": tests, "wall_s": round(wall, 1), "mutants": len(st)})
    return report(status, diffs, record, skip, args.json)


def report(status: dict[str, str], diffs: dict[str, list[str]], record: list[dict], skip: list[str],
           json_path: Path | None) -> int:
    """Print the table and every survivor's diff; write them to ``json_path`` when given."""
    print()
    print(format_summary(summary(status)))
    if diffs:
        print("\nsurvivors (each needs a test or a justification in docs/testing.md):")
    for name, changed in diffs.items():
        print(f"\n{name}\n  " + "\n  ".join(changed))
    if json_path:
        json_path.write_text(json.dumps({"runs": record, "skip_patterns": skip, "status": status,
                                         "survivors": diffs}, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
