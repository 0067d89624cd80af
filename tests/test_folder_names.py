"""Issue 16 item 3: a ``dataset=folder`` data set is named after its folders (or ``dataset.name``),
so the results of two folders never share ``<output_dir>/<name>/<method>/``; results stored
under the old fixed name ``folder/`` stay readable by report and merge."""

from __future__ import annotations

import hashlib
import json

import pytest

from benchmark.data import FolderDataset, folder_name
from benchmark.merge import merge
from benchmark.report import collect
from conftest import ROOT, compose, folder_dir, make_pairs, run_bench


def _by_hand(lr: str, hr: str, slug: str) -> str:
    """The documented name: slug, then 6 hex digits of SHA-256 over "<lr>\\0<hr>"."""
    key = lr + "\0" + hr
    return slug + "-" + hashlib.sha256(key.encode()).hexdigest()[:6]


def test_name_is_the_last_two_folder_components_and_a_hash_of_both_paths(tmp_path):
    assert folder_name("/data/RealSR/test_LR", "/data/RealSR/test_HR") == \
        _by_hand("/data/RealSR/test_LR", "/data/RealSR/test_HR", "RealSR-test_LR")
    assert folder_name("/data/RealSR/test_LR") == _by_hand("/data/RealSR/test_LR", "", "RealSR-test_LR")
    # characters a folder name should not carry become "_"; a trailing slash changes nothing
    assert folder_name("/x/my data (v2)/LR/") == _by_hand("/x/my data (v2)/LR", "", "my_data_v2-LR")
    assert folder_name("/LR") == _by_hand("/LR", "", "LR")
    # same last components elsewhere, or the same LR against another HR folder: other names
    names = {folder_name("/a/x/LR", "/a/x/HR"), folder_name("/b/x/LR", "/b/x/HR"), folder_name("/a/x/LR", "/c/HR"),
             folder_name("/a/x/LR")}
    assert len(names) == 4
    # relative paths are resolved against the current directory, as the run reads them
    (tmp_path / "d" / "LR").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        assert folder_name("d/LR") == folder_name(tmp_path / "d" / "LR")


def test_readme_example_name_is_what_srbench_derives():
    assert f"`<output_dir>/{folder_name('/data/RealSR/test_LR')}/<method>/`" in (ROOT / "README.md").read_text()


def test_config_and_data_set_agree_and_dataset_name_wins(tmp_path):
    lr, hr = make_pairs(tmp_path / "set" / "x", ["a"])
    cfg = compose(["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}"])
    derived = _by_hand(str(lr.resolve()), str(hr.resolve()), "x-LR")
    assert cfg.dataset.name == derived  # hydra.run.dir and the preflight's folder checks read this
    assert FolderDataset(str(lr), str(hr)).name == derived
    assert compose(["dataset=folder", f"dataset.lr_dir={lr}", "dataset.name=mine"]).dataset.name == "mine"
    assert compose(["dataset=folder"]).dataset.name == "folder"  # lr_dir unset: the preflight names that key


def test_two_folders_never_collide_and_a_clash_suggests_dataset_name(tmp_path):
    out = tmp_path / "out"
    # the same last folder components in two places, as two copies of one benchmark layout
    sets = [make_pairs(tmp_path / place / "bench", ["a", "b"], seed=i) for i, place in enumerate(("one", "two"))]
    common = ["method=noise_control", "runs=2", "metrics=[psnr]", "device=cpu", f"output_dir={out}"]
    results = [run_bench(common + ["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}"])
               for lr, hr in sets]
    folders = [folder_dir(out, lr, hr) for lr, hr in sets]
    assert folders[0] != folders[1]
    for (lr, hr), folder, res in zip(sets, folders, results):
        on_disk = json.loads((folder / "noise_control" / "results.json").read_text())
        assert on_disk["dataset"] == res["dataset"] == folder.name \
            == _by_hand(str(lr.resolve()), str(hr.resolve()), "bench-LR")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(f.name for f in folders)
    # the same name for other pixels (dataset.name given twice): refused, and the message says how to part them
    lr, hr = sets[1]
    with pytest.raises(ValueError, match=r"different configuration.*dataset\.name=<new name>"):
        run_bench(common + ["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
                            f"dataset.name={folders[0].name}"])


def test_results_under_the_old_folder_name_are_still_read_by_report_and_merge(tmp_path):
    """Before issue 16 every folder data set was named ``folder``; such results stay usable."""
    lr, hr = make_pairs(tmp_path / "d", ["a", "b", "c"])
    old = ["dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "dataset.name=folder",
           "method=noise_control", "runs=2", "metrics=[psnr]", "device=cpu"]
    run_bench(old + [f"output_dir={tmp_path / 'plain'}"])
    df = collect(tmp_path / "plain")
    assert set(df["dataset"]) == {"folder"} and (tmp_path / "plain" / "folder" / "noise_control").is_dir()
    for i in range(2):
        run_bench(old + [f"output_dir={tmp_path / 'sharded'}", f"shard.index={i}", "shard.count=2"])
    written = merge(tmp_path / "sharded")
    assert written == [tmp_path / "sharded" / "folder" / "noise_control" / "results.json"]
    merged = json.loads(written[0].read_text())
    plain = json.loads((tmp_path / "plain" / "folder" / "noise_control" / "results.json").read_text())
    assert merged["dataset"] == "folder" and merged["num_images"] == 3
    assert merged["metrics"]["psnr"]["mean"] == pytest.approx(plain["metrics"]["psnr"]["mean"], abs=1e-12)
