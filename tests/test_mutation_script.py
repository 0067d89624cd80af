"""benchmarks/mutation.py: its mutmut configuration and the parsing of mutmut's results (mutmut itself
runs in a separate step, not in the test run)."""

from __future__ import annotations

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
    assert m.tests_for(["benchmark/stability.py"]) == ["tests/test_stability.py"]
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
