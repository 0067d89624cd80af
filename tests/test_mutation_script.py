"""benchmarks/mutation.py: its mutmut configuration and the parsing of mutmut's results (mutmut itself
runs in a separate step, not in the test run)."""

from __future__ import annotations

import fnmatch
import importlib.util
from pathlib import Path

from conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "benchmarks" / "mutation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_default_modules_and_tests_exist():
    m = _script()
    for f in [*m.MODULES, *m.TESTS]:
        assert (ROOT / f).is_file(), f


def test_results_parsing_and_module_names():
    m = _script()
    text = ("    benchmark.stability.x_gstd__mutmut_3: survived\n"
            "    benchmark.report.tables.x_rank__mutmut_12: killed\n"
            "    benchmark.results.xǁResultǁfrom_scores__mutmut_1: no tests\n"
            "warning: something else: here\n")
    got = m.parse_results(text)
    assert got == {"benchmark.stability.x_gstd__mutmut_3": "survived",
                   "benchmark.report.tables.x_rank__mutmut_12": "killed",
                   "benchmark.results.xǁResultǁfrom_scores__mutmut_1": "no tests"}
    assert [m.module_of(k) for k in got] == ["benchmark.stability", "benchmark.report.tables", "benchmark.results"]


def test_config_mutates_only_the_chosen_files(tmp_path: Path):
    m = _script()
    m.write_config(tmp_path, ["benchmark/stability.py"], ["tests/test_stability.py"])
    cfg = (tmp_path / "setup.cfg").read_text()
    assert "only_mutate=\n    benchmark/stability.py\n" in cfg
    assert "pytest_add_cli_args_test_selection=\n    tests/test_stability.py\n" in cfg
    assert "    methods\n" in cfg and "    conf\n" in cfg  # copied, not mutated


def test_each_module_has_its_own_existing_tests():
    m = _script()
    assert set(m.TEST_MAP) == set(m.MODULES)
    for mod, tests in m.TEST_MAP.items():
        assert tests and all((ROOT / t.split("::")[0]).is_file() for t in tests), mod
        for t in tests:  # a node id names a test function of its file
            if "::" in t:
                file, name = t.split("::")
                assert f"def {name}(" in (ROOT / file).read_text(), t
    assert m.tests_for(["benchmark/scoring.py"]) == ["tests/test_scoring.py"]
    assert m.tests_for(["benchmark/stability.py"]) == ["tests/test_stability.py",
                                                      "tests/test_stored_state.py::test_running_moments_equal_the_two_pass_std"]
    both = m.tests_for(["benchmark/metrics/pyiqa_metrics.py", "benchmark/metrics/fast_exact.py"])
    assert len(both) == len(set(both)) and set(m.TEST_MAP["benchmark/metrics/fast_exact.py"]) <= set(both)


def test_skip_patterns_leave_messages_and_logging_unmutated_but_not_code(tmp_path: Path):
    import re

    m = _script()
    skipped = ['        raise ValueError(f"metric {name!r} failed")', '    log.warning("metric %s skipped", name)',
               "    warnings.warn(msg)", '    print(f"merged: {p}")']
    kept = ['    if spec.kind == "set":', "    worse = (b - v) if hib else (v - b)",
            '    rows.append((SET_IMAGE, r, seeds[r], name, value))', "    raised = x > 0",
            '    catalog.warning_count += 1']
    hit = lambda line: any(re.search(p, line) for p in m.SKIP_PATTERNS)
    assert all(hit(line) for line in skipped)
    assert not any(hit(line) for line in kept)
    m.write_config(tmp_path, ["benchmark/stability.py"], ["tests/test_stability.py"])
    cfg = (tmp_path / "setup.cfg").read_text()
    assert "do_not_mutate_patterns=\n" + "".join(f"    {p}\n" for p in m.SKIP_PATTERNS) in cfg
    m.write_config(tmp_path, ["benchmark/stability.py"], ["tests/test_stability.py"], skip=[])  # --all-lines
    assert "do_not_mutate_patterns" not in (tmp_path / "setup.cfg").read_text()


def test_shared_is_reachable_from_the_copy_and_from_mutmuts_mutants_folder(tmp_path: Path):
    """The tests find ../shared as ``Path(conftest).parents[1].parent / "shared"``; mutmut runs them
    from <copy>/mutants, so both <copy>/tests and <copy>/mutants/tests must see it."""
    shared = tmp_path / "shared_src"
    (shared / "data").mkdir(parents=True)
    (shared / "data" / "x.npz").write_bytes(b"x")
    copy = tmp_path / "box" / "srbench"
    copy.mkdir(parents=True)
    mutation = _script()
    links = mutation.link_shared(shared, copy)
    assert len(links) == 2
    for conftest in (copy / "tests" / "conftest.py", copy / "mutants" / "tests" / "conftest.py"):
        seen = conftest.parents[1].parent / "shared"  # what tests/conftest.py computes
        assert (seen / "data" / "x.npz").read_bytes() == b"x"
    assert mutation.link_shared(tmp_path / "absent", tmp_path / "other" / "srbench") == []


def test_mutmut_runs_with_one_intra_op_thread_and_the_copys_own_imports(monkeypatch):
    """Forked mutant processes deadlock in OpenMP once the parent ran a parallel region: the run's
    environment pins one thread, and drops PYTHONPATH so the copy imports its own (mutated) code."""
    mutation = _script()
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    env = mutation.mutmut_env()
    assert "PYTHONPATH" not in env
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"


_DECORATED = '''import functools

CALLS = []


def trace(tag):
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            CALLS.append(tag)
            return fn(*a, **k)
        return wrapper
    return deco


@trace("outer")
@trace(
    "inner")
def area(w, h=2):
    return w * h


class Box:
    def __init__(self, w):
        self.w = w

    # a comment above the decorator
    @property
    def double(self) -> int:
        return 2 * self.w

    @double.setter
    def double(self, v):
        self.w = v // 2

    @staticmethod
    def unit():
        return 1

    @classmethod
    def make(cls):
        return cls(3)

    def plain(self):
        @trace("nested")
        def inner():
            return self.w
        return inner()
'''


def test_undecorate_splits_decorators_so_mutmut_mutates_the_body_and_keeps_what_python_builds():
    """mutmut 3 skips decorated functions (@property, @torch.no_grad()): in the copy each one's
    body becomes an undecorated function and the name is bound to the decorators applied to it,
    bottom-up, as Python does (the language reference, "Function definitions")."""
    import ast

    m = _script()
    out = m.undecorate(_DECORATED)
    before, after = {}, {}
    exec(compile(_DECORATED, "before", "exec"), before)
    exec(compile(out, "after", "exec"), after)
    for ns in (before, after):
        assert ns["area"](3) == 6 and ns["CALLS"] == ["outer", "inner"]  # outer wraps inner
        box = ns["Box"](5)
        assert box.double == 10 and isinstance(vars(ns["Box"])["double"], property)
        box.double = 8
        assert box.w == 4 and ns["Box"].unit() == 1 and ns["Box"].make().w == 3 and box.plain() == 4
        assert ns["CALLS"][-1] == "nested"
    tree = ast.parse(out)
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    # every module-level function and method left decorated is a lone @staticmethod/@classmethod
    # (mutmut mutates those); nested functions (mutmut mutates only top-level ones) are left alone
    assert [ast.unparse(d) for d in funcs["unit"].decorator_list] == ["staticmethod"]
    assert [ast.unparse(d) for d in funcs["make"].decorator_list] == ["classmethod"]
    assert [ast.unparse(d) for d in funcs["inner"].decorator_list] == ["trace('nested')"]
    for name in ("area", "double", "double_2"):  # the setter's body gets a name of its own
        assert name not in funcs and not funcs[m.UNDECORATED + name].decorator_list
    assert "area = trace('outer')(trace('inner')(_undecorated_area))" in ast.unparse(tree)
    assert "double = property(_undecorated_double)" in ast.unparse(tree)
    assert "double = double.setter(_undecorated_double_2)" in ast.unparse(tree)
    assert m.undecorate(out) == out  # nothing left to split


def test_only_the_seeding_functions_of_the_sink_are_mutated_by_default():
    """The sink decides one number, the seed of each run; its writer and progress bar do not."""
    m = _script()
    assert m.dotted("benchmark/metrics/__init__.py") == "benchmark.metrics"
    assert m.dotted("benchmark/report/tables.py") == "benchmark.report.tables"
    assert m.default_functions(["benchmark/stability.py"]) == []  # every mutant
    sink = m.default_functions(["benchmark/sink.py"])
    names = ["benchmark.sink.x_run_seed__mutmut_1", "benchmark.sink.xǁSampleSinkǁseed__mutmut_2",
             "benchmark.sink.xǁSampleSinkǁgenerators__mutmut_3"]
    others = ["benchmark.sink.xǁSampleSinkǁput_batch__mutmut_1", "benchmark.sink.xǁPNGWriterǁ_loop__mutmut_1",
              "benchmark.sink.xǁSampleSinkǁseeded__mutmut_1"]
    hit = lambda n, globs: any(fnmatch.fnmatchcase(n, g) for g in globs)
    assert all(hit(n, sink) for n in names) and not any(hit(n, sink) for n in others)
    both = m.default_functions(["benchmark/stability.py", "benchmark/sink.py"])  # one --tests run over both
    assert hit("benchmark.stability.x_gstd__mutmut_3", both) and hit(names[0], both) and not hit(others[0], both)
