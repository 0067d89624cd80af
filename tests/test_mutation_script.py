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
