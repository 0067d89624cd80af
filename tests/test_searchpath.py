"""Configs are found through Hydra's search path (benchmark/searchpath.py): the fast readers equal
Hydra's own composition, and a config directory added by a Hydra SearchPathPlugin is seen by the
registries, the command-line checks and the composition alike."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from hydra import compose
from omegaconf import OmegaConf

import benchmark.config  # noqa: F401  (registers bench_schema)
from benchmark import searchpath
from conftest import ROOT


def test_primary_entry_is_the_checkout_conf_or_the_installed_package(monkeypatch, tmp_path):
    monkeypatch.delenv(searchpath.ENV, raising=False)
    assert searchpath.primary() == str((ROOT / "conf").resolve())  # a checkout uses its own files
    monkeypatch.setenv(searchpath.ENV, str(tmp_path))
    assert searchpath.primary() == str(tmp_path.resolve())
    monkeypatch.setenv(searchpath.ENV, "pkg://srbench_conf")
    assert searchpath.primary() == "pkg://srbench_conf"


def test_group_names_are_the_yaml_files_of_each_group():
    for group in ("method", "dataset", "metrics"):
        assert searchpath.group_names(group) == sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))
    assert searchpath.group_names("nope") == []


@pytest.mark.parametrize("group", ["method", "dataset", "metrics"])
def test_merged_equals_hydra_composition(group):
    """The registries' and metric presets' fast reader gives what Hydra composes for ``<group>=<name>``."""
    names = searchpath.group_names(group)
    with searchpath.initialize():
        for name in names:
            hydra_node = OmegaConf.to_container(compose(config_name="bench", overrides=[f"{group}={name}"])[group],
                                                resolve=False)
            assert searchpath.merged(group, name) == hydra_node, f"{group}/{name}"
    assert searchpath.merged(group, "no_such_config") is None


def test_text_and_load_read_the_file_with_its_comments():
    text = searchpath.text("method", "precomputed")
    assert text == (ROOT / "conf" / "method" / "precomputed.yaml").read_text()
    own, defaults = searchpath.load("method", "bsrgan")
    assert defaults == ["gan", "_self_"] and own["name"] == "bsrgan" and "_target_" not in own
    assert searchpath.load("", "bench")[1][:2] == ["bench_schema", {"method": "noise_control"}]
    assert searchpath.text("method", "nope") is None and searchpath.load("method", "nope") is None


PLUGIN = '''
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class ExtraConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="srb-test", path="file://{conf}")
'''


def test_a_search_path_plugin_adds_configs_everywhere(tmp_path):
    """A plug-in package adds conf/<group>/ files without touching srbench's: listed, checked and composed."""
    conf = tmp_path / "extra_conf"
    (conf / "method").mkdir(parents=True)
    (conf / "method" / "bicubic_plugin.yaml").write_text("defaults:\n  - bicubic\n  - _self_\nname: bicubic_plugin\n")
    plugin = tmp_path / "site" / "hydra_plugins" / "srb_test_searchpath"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text(textwrap.dedent(PLUGIN).format(conf=conf))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path / "site")])}
    env.pop(searchpath.ENV, None)
    code = textwrap.dedent('''
        from hydra import compose
        import benchmark.config
        from benchmark import searchpath
        from benchmark.config import check_group_choices
        from methods import METHODS
        check_group_choices(["method=bicubic_plugin"])
        print("names", "bicubic_plugin" in METHODS.names(), METHODS.get("bicubic_plugin").__name__)
        with searchpath.initialize():
            cfg = compose(config_name="bench", overrides=["method=bicubic_plugin"])
        print("composed", cfg.method.name, cfg.method._target_)
    ''')
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "names True Bicubic" in out.stdout
    assert "composed bicubic_plugin methods.bicubic.Bicubic" in out.stdout
