"""Issue #13: results folders are data, not code; stored state is never trusted blindly; no
advice deletes good work. Each test here is a row of docs/reliability.md (section 9)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from benchmark.merge import merge
from benchmark.report import build_report
from conftest import make_pairs, run_bench


def _bench(data: Path, out: Path, *extra: str) -> list[str]:
    return ["method=noise_control", "runs=2", "dataset=folder", f"dataset.lr_dir={data / 'LR'}",
            f"dataset.hr_dir={data / 'HR'}", "metrics=[psnr,ssim]", f"output_dir={out}", "device=cpu", *extra]


# ----------------------------------------------------------------------------- 9.1 payloads


class _Touch:
    """A pickle that, when loaded, creates a file (stands for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payloads(tmp: Path) -> dict[str, dict]:
    """The three kinds of issue #13: overwrite a file, truncate a file, run code via a pickle."""
    (tmp / "secret").write_text("attacker's bytes")
    for name in ("victim_copy", "victim_open"):
        (tmp / name).write_text("precious")
    with open(tmp / "payload.pkl", "wb") as f:
        pickle.dump(_Touch(tmp / "pwned"), f)
    return {
        "copyfile": {"_target_": "shutil.copyfile", "src": str(tmp / "secret"), "dst": str(tmp / "victim_copy")},
        "open": {"_target_": "builtins.open", "file": str(tmp / "victim_open"), "mode": "w"},
        "numpy_load": {"_target_": "numpy.load", "file": str(tmp / "payload.pkl"), "allow_pickle": True},
    }


def _untouched(tmp: Path) -> None:
    assert (tmp / "victim_copy").read_text() == "precious"
    assert (tmp / "victim_open").read_text() == "precious"
    assert not (tmp / "pwned").exists()


def _plant(path: Path, payload: dict) -> None:
    res = json.loads(path.read_text())
    res["config"]["dataset"] = payload
    if "generation" in res:  # a manifest: its stored config too
        res["generation"]["method"] = payload
    path.write_text(json.dumps(res))


@pytest.mark.parametrize("kind", ["copyfile", "open", "numpy_load"])
def test_planted_target_payloads_are_never_instantiated_by_report_or_merge(tmp_path, kind):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b", "c"])
    for i in range(2):
        run_bench(_bench(data, out, f"shard.index={i}", "shard.count=2"))
    root = out / "folder" / "noise_control"
    payload = _payloads(tmp_path)[kind]
    for p in sorted(root.glob("results.shard-*.json")) + sorted(root.glob("manifest.shard-*.json")):
        _plant(p, payload)

    merge(out)  # merge works from the plain-data record of the shard manifests
    _untouched(tmp_path)
    merged = json.loads((root / "results.json").read_text())
    assert merged["num_images"] == 3

    _plant(root / "results.json", payload)
    _plant(root / "manifest.json", payload)
    rep = build_report(out, out=tmp_path / "report", images="a")
    _untouched(tmp_path)
    assert (tmp_path / "report" / "table.md").is_file()
    # the LR/HR paths come from the record, so the gallery still shows them
    view = next(v for v in rep.images if v.image == "a")
    assert view.lr is not None and view.hr is not None


def test_report_without_a_data_set_record_says_why_and_still_works(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b"])
    run_bench(_bench(data, out))
    manifest = out / "folder" / "noise_control" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["data"] = {"images": "rm -rf /"}  # malformed: not a list of plain entries
    manifest.write_text(json.dumps(m))
    rep = build_report(out, out=tmp_path / "report", images="a")
    assert any("not a data set record" in n and "manifest.json" in n for n in rep.notes), rep.notes
    assert (tmp_path / "report" / "index.html").is_file()


def test_merge_of_shards_without_a_data_set_record_refuses_naming_the_file(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b"])
    for i in range(2):
        run_bench(_bench(data, out, f"shard.index={i}", "shard.count=2"))
    manifest = out / "folder" / "noise_control" / "manifest.shard-0-of-2.json"
    m = json.loads(manifest.read_text())
    del m["data"]
    manifest.write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"manifest\.shard-0-of-2\.json has no data set record.*rerun"):
        merge(out)
