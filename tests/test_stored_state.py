"""Issue #13: results folders are data, not code; stored state is never trusted blindly; no
advice deletes good work. Each test here is a row of docs/reliability.md (section 9)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from benchmark.merge import merge
from benchmark.report import build_report
from conftest import folder_dir, make_pairs, run_bench


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
    root = folder_dir(out, data / "LR", data / "HR") / "noise_control"
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
    manifest = folder_dir(out, data / "LR", data / "HR") / "noise_control" / "manifest.json"
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
    manifest = folder_dir(out, data / "LR", data / "HR") / "noise_control" / "manifest.shard-0-of-2.json"
    m = json.loads(manifest.read_text())
    del m["data"]
    manifest.write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"manifest\.shard-0-of-2\.json has no data set record.*rerun"):
        merge(out)


# ----------------------------------------------------------------------------- 9.x seeds


def test_last_seed_beyond_the_stored_range_is_refused_before_any_work(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a"])
    top = 2**63 - 1  # signed 64-bit: the seed column of scores.csv
    p = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), *_bench(data, out, f"seed={top}")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert f"seed + runs - 1 = {top + 1} exceeds {top}" in p.stderr and f"seed <= {top - 1}" in p.stderr, p.stderr
    assert not out.exists()  # before any work: not even Hydra's folder
    # the largest allowed first seed works and its seeds reach scores.csv exactly
    res = run_bench(_bench(data, out, f"seed={top - 1}"))
    assert res["seed"] == top - 1
    import pandas as pd

    seeds = pd.read_csv(folder_dir(out, data / "LR", data / "HR") / "noise_control" / "scores.csv")["seed"]
    assert sorted(set(int(s) for s in seeds)) == [top - 1, top]


# ----------------------------------------------------------------------------- no advice deletes good work


def _pngs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_unsharded_run_beside_finished_identical_shards_says_merge_and_keeps_every_sample(tmp_path, caplog):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b", "c"])
    for i in range(2):
        run_bench(_bench(data, out, f"shard.index={i}", "shard.count=2"))
    root = folder_dir(out, data / "LR", data / "HR") / "noise_control"
    before = _pngs(root / "samples")
    with pytest.raises(ValueError) as err:
        run_bench(_bench(data, out))
    msg = str(err.value)
    assert "python -m benchmark merge" in msg and "same generation configuration" in msg
    assert "overwrite" not in msg  # no destructive advice for valid samples
    # even overwrite=true keeps samples of the identical configuration
    with pytest.raises(ValueError, match="benchmark merge"):
        run_bench(_bench(data, out, "overwrite=true"))
    assert _pngs(root / "samples") == before
    # following the advice: merge, then the unsharded command reuses every sample
    merge(out)
    res = run_bench(_bench(data, out))
    assert res["timing"]["image_runs_generated_now"] == 0
    assert _pngs(root / "samples") == before


def test_unsharded_run_beside_unfinished_identical_shard_reuses_its_samples(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b", "c"])
    run_bench(_bench(data, out, "shard.index=0", "shard.count=2"))  # shard 1 never ran
    res = run_bench(_bench(data, out))
    assert res["timing"]["image_runs_generated_now"] == 2  # only image b's two runs (shard 1's image)


def test_stale_config_advice_says_what_overwrite_deletes(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b"])
    run_bench(_bench(data, out))
    with pytest.raises(ValueError, match=r"overwrite=true to delete them \(samples/ \(4 file\(s\)\) and scores\.csv"):
        run_bench(_bench(data, out, "method.sigma=0.5"))


def test_precomputed_path_inside_its_own_result_folder_is_refused_up_front(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b"])
    run_bench(_bench(data, tmp_path / "made"))
    # the official-looking layout copied into the folder srbench will write for method=precomputed
    inputs = folder_dir(out, data / "LR", data / "HR") / "precomputed" / "samples"
    import shutil

    shutil.copytree(folder_dir(tmp_path / "made", data / "LR", data / "HR") / "noise_control" / "samples", inputs)
    before = _pngs(inputs)
    args = ["method=precomputed", f"method.path={inputs}", "dataset=folder", f"dataset.lr_dir={data / 'LR'}",
            f"dataset.hr_dir={data / 'HR'}", "metrics=[psnr]", f"output_dir={out}", "device=cpu"]
    for extra in ([], ["overwrite=true"]):
        with pytest.raises(ValueError, match=r"method\.path .* lies inside the result folder .*overwrite=true clears"):
            run_bench(args + extra)
        assert _pngs(inputs) == before
    assert not (folder_dir(out, data / "LR", data / "HR") / "precomputed" / "manifest.json").exists()


def _baseline_setup(tmp_path):
    from report_fixtures import write_results

    from benchmark.regression import main

    write_results(tmp_path / "res")
    base = tmp_path / "baseline.json"
    assert main([str(tmp_path / "res"), "--baseline", str(base), "--update-baseline"]) == 0
    return main, base


def test_update_baseline_with_a_filter_replaces_only_the_selected_entries(tmp_path, capsys):
    import copy

    from report_fixtures import fixed_results, write_results

    main, base = _baseline_setup(tmp_path)
    before = {(e["dataset"], e["method"]): e for e in json.loads(base.read_text())["entries"]}
    assert len(before) == 5
    res = copy.deepcopy(fixed_results())
    for r in res:
        r["lstd"] = 0.5 if r["lstd"] is not None else None
    write_results(tmp_path / "new", res)
    assert main([str(tmp_path / "new"), "--baseline", str(base), "--update-baseline", "--methods", "ccsr"]) == 0
    assert "kept 3 baseline entries" in capsys.readouterr().out
    after = {(e["dataset"], e["method"]): e for e in json.loads(base.read_text())["entries"]}
    assert set(after) == set(before)
    for key, e in after.items():
        assert e["lstd"] == (0.5 if key[1] == "ccsr" else before[key]["lstd"])
    # the explicit flag replaces everything with the selection
    assert main([str(tmp_path / "new"), "--baseline", str(base), "--update-baseline", "--methods", "ccsr",
                 "--replace-baseline"]) == 0
    assert {(e["dataset"], e["method"]) for e in json.loads(base.read_text())["entries"]} == {
        ("RealSR", "ccsr"), ("DRealSR", "ccsr")}


@pytest.mark.parametrize("damage, message", [
    (lambda b: b.pop("entries"), "has no list 'entries'"),
    (lambda b: b["entries"][0].__setitem__("runs", "ten"), "'runs' is 'ten', expected an integer"),
    (lambda b: b["entries"][0]["metrics"]["psnr"].pop("higher_is_better"),
     "metric 'psnr' has higher_is_better None, expected true or false"),
])
def test_malformed_baseline_exits_2_naming_the_file_and_fix(tmp_path, capsys, damage, message):
    main, base = _baseline_setup(tmp_path)
    data = json.loads(base.read_text())
    damage(data)
    base.write_text(json.dumps(data))
    assert main([str(tmp_path / "res"), "--baseline", str(base)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(base) in err and "--replace-baseline" in err
    # --update-baseline does not silently drop what the damaged file held ...
    assert main([str(tmp_path / "res"), "--baseline", str(base), "--update-baseline", "--methods", "ccsr"]) == 2
    assert "pass --replace-baseline" in capsys.readouterr().err and json.loads(base.read_text()) == data
    # ... unless asked to
    assert main([str(tmp_path / "res"), "--baseline", str(base), "--update-baseline", "--replace-baseline"]) == 0
    assert main([str(tmp_path / "res"), "--baseline", str(base)]) == 0


# ----------------------------------------------------------------------------- damaged state


@pytest.mark.parametrize("content, found", [('{"generation_hash": "ab', "cannot read"), ("[1, 2]", "JSON list")])
@pytest.mark.parametrize("sharded", [False, True])
def test_damaged_manifest_names_the_file_and_the_fix(tmp_path, content, found, sharded):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b"])
    shard = ["shard.index=0", "shard.count=2"] if sharded else []
    run_bench(_bench(data, out, *shard))
    root = folder_dir(out, data / "LR", data / "HR") / "noise_control"
    manifest = root / ("manifest.shard-0-of-2.json" if sharded else "manifest.json")
    manifest.write_text(content)
    before = _pngs(root / "samples")
    with pytest.raises(ValueError) as err:
        run_bench(_bench(data, out, *shard))
    msg = str(err.value)
    assert str(manifest) in msg and found in msg
    assert ("delete it, then rerun that shard" in msg) if sharded else ("restore manifest.json" in msg)
    assert _pngs(root / "samples") == before


def _two_shards(tmp_path, ids=("a", "b", "c"), *extra):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, list(ids))
    for i in range(2):
        run_bench(_bench(data, out, f"shard.index={i}", "shard.count=2", *extra))
    return data, out, folder_dir(out, data / "LR", data / "HR") / "noise_control"


def test_merge_takes_the_folder_lock_and_removes_temporaries_of_a_killed_merge(tmp_path):
    from benchmark.lock import OutputLock, OutputLockedError

    data, out, root = _two_shards(tmp_path)
    shard = OutputLock(root, 1, 2).acquire()  # a shard still (or again) running in the folder
    try:
        with pytest.raises(OutputLockedError, match=r"lock .*\.lock is held"):
            merge(out)
    finally:
        shard.release()
    assert not (root / "results.json").exists()
    # what a merge killed inside its atomic writes leaves behind
    left = [root / ".results.k1l2ed.json.tmp", root / ".scores.x9.csv.tmp"]
    for p in left:
        p.write_text("half")
    merge(out)
    assert not any(p.exists() for p in left)
    assert json.loads((root / "results.json").read_text())["num_images"] == 3


def test_shards_keep_their_own_timing_and_merge_sums_it(tmp_path):
    data, out, root = _two_shards(tmp_path)
    assert not (root / "timing.json").exists()
    per_shard = [json.loads((root / f"timing.shard-{i}-of-2.json").read_text())["image_runs"] for i in range(2)]
    assert per_shard == [4, 2]  # images a, c (2 runs each) and b
    merged = merge(out)
    res = json.loads((root / "results.json").read_text())
    assert res["timing"]["image_runs_timed"] == 3 * 2  # images x runs, never more


def test_lock_file_that_is_not_a_lock_database_is_recovered_unless_a_live_process_holds_it(tmp_path, caplog):
    import subprocess
    import sys

    from benchmark.lock import OutputLockedError

    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a"])
    run_bench(_bench(data, out))
    lock = folder_dir(out, data / "LR", data / "HR") / "noise_control" / ".lock"
    lock.write_bytes(b"this is not an SQLite database, but long enough to have a header" * 4)
    # a live process holds a POSIX lock on it: never overridden
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR)\n"
        "fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputLockedError) as err:
            run_bench(_bench(data, out, "runs=3"))
        assert str(lock) in str(err.value)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    # nobody holds it: replaced with a fresh lock, the run proceeds and keeps its samples
    with caplog.at_level("WARNING", logger="srbench"):
        res = run_bench(_bench(data, out, "runs=3"))
    assert res["timing"]["image_runs_generated_now"] == 1
    assert any("was not a lock database" in r.getMessage() and "replaced it" in r.getMessage() for r in caplog.records)


def test_full_disk_at_start_is_a_clear_error_before_any_folder(tmp_path):
    """A really full file system (a 1 MiB tmpfs filled up, in a user namespace)."""
    import shutil as sh
    import subprocess
    import sys

    from conftest import ROOT

    if sh.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("needs user namespaces (unshare -rm) to mount a small tmpfs")
    data = tmp_path / "data"
    make_pairs(data, ["a"])
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (f'mount -t tmpfs -o size=1m tmpfs "{disk}" && (dd if=/dev/zero of="{disk}/fill" bs=4k 2>/dev/null; true) '
              f'&& exec "$@"')
    p = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, str(ROOT / "run_bench.py"),
                        *_bench(data, disk / "out")], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"})
    assert p.returncode != 0
    assert f"output_dir={disk / 'out'} cannot be written" in p.stderr and "bytes free" in p.stderr, p.stderr
    assert "disk holding" in p.stderr and "output_dir=<dir>" in p.stderr and "Traceback" not in p.stderr


# ----------------------------------------------------------------------------- report


def test_report_assets_of_ids_with_the_same_slug_stay_apart(tmp_path):
    """日本 and 中国 both slug to "x": each must keep its own pictures in the HTML."""
    import numpy as np

    from benchmark.images import read_image
    from conftest import write_png

    data, out = tmp_path / "data", tmp_path / "out"
    rng = np.random.default_rng(3)
    for name, level in (("日本", 40), ("中国", 200)):  # two clearly different images
        hr = np.clip(rng.normal(level, 5, (64, 64, 3)), 0, 255).astype(np.uint8)
        write_png(data / "HR" / f"{name}.png", hr)
        write_png(data / "LR" / f"{name}.png", hr[::4, ::4].copy())
    run_bench(_bench(data, out))
    rep = build_report(out, out=tmp_path / "report", images="日本,中国")
    views = {v.image: v for v in rep.images}
    assert views["日本"].lr != views["中国"].lr and views["日本"].hr != views["中国"].hr
    for name in ("日本", "中国"):
        v = views[name]
        assert np.array_equal(read_image(rep.out / v.hr), read_image(data / "HR" / f"{name}.png"))
        best = next(m for m in v.methods if m["method"] == "noise_control")
        sample = folder_dir(out, data / "LR", data / "HR") / "noise_control" / "samples" / f"sample{best['best_run']:02d}" / f"{name}.png"
        assert np.array_equal(read_image(rep.out / best["best"]), read_image(sample))
    figures = [f for v in rep.images for f in v.figures]
    assert len(figures) == len(set(figures))


def test_one_missing_sample_does_not_abort_the_report(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b"])
    run_bench(_bench(data, out, "runs=3"))
    (folder_dir(out, data / "LR", data / "HR") / "noise_control" / "samples" / "sample02" / "a.png").unlink()
    rep = build_report(out, out=tmp_path / "report", images="a,b")
    a = next(v for v in rep.images if v.image == "a")
    b = next(v for v in rep.images if v.image == "b")
    assert "missing" in a.methods[0] and "sample02" in a.methods[0]["missing"]
    assert any("a stored sample of a cannot be read" in n for n in rep.notes)
    assert b.methods[0].get("best") and b.figures  # the other image is complete
    assert (tmp_path / "report" / "index.html").is_file()


def test_report_plots_are_written_atomically(tmp_path, monkeypatch):
    """A failure while a figure is rendered leaves no partial file under the final name."""
    import matplotlib.figure

    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a"])
    run_bench(_bench(data, out))
    real = matplotlib.figure.Figure.savefig

    def half_then_die(self, fname, *a, **k):
        real(self, fname, *a, **k)
        if hasattr(fname, "write"):
            raise OSError("killed while rendering")
        raise AssertionError("a plot was rendered straight into its final file")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_then_die)
    with pytest.raises(OSError, match="killed while rendering"):
        build_report(out, out=tmp_path / "report", html=False)
    plots = tmp_path / "report" / "plots"
    assert not plots.exists() or not [p for p in plots.iterdir() if not p.name.endswith(".tmp")]


def test_report_on_a_read_only_results_folder_points_to_out(tmp_path):
    import shutil as sh
    import subprocess
    import sys

    from conftest import ROOT

    if sh.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("needs user namespaces (unshare -rm) for a read-only bind mount")
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a"])
    run_bench(_bench(data, out))
    q = str(out)
    pre = ["unshare", "-rm", "sh", "-c", f'mount --bind "{q}" "{q}" && mount -o remount,bind,ro "{q}" && exec "$@"', "sh"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    p = subprocess.run([*pre, sys.executable, "-m", "benchmark", "report", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, env=env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"cannot write the report into {out / 'report'}" in p.stderr and "out=<dir>" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    p = subprocess.run([*pre, sys.executable, "-m", "benchmark", "report", str(out), f"out={tmp_path / 'rep'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "rep" / "index.html").is_file()


# ----------------------------------------------------------------------------- decompression bombs


def _png_header_only(path: Path, width: int, height: int, bit_depth: int) -> Path:
    """A PNG whose IHDR declares ``width x height`` (RGB) with a tiny IDAT: what a bomb's header says,
    without the megabytes of its body (the limit must act on the header, before decoding)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_decompression_bombs_are_listed_with_the_data_set_problems_from_their_headers(tmp_path, monkeypatch):
    import tracemalloc

    from benchmark import images
    from benchmark.data import FolderDataset
    from benchmark.images import read_image

    monkeypatch.setattr(images, "_max_pixels", images._max_pixels)  # the runs below set it: restored afterwards
    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["good"])
    bomb16 = _png_header_only(data / "LR" / "bomb16.png", 16000, 16000, 16)  # the OpenCV path
    bomb8 = _png_header_only(data / "LR" / "bomb8.png", 16000, 16000, 8)  # the PIL path
    tracemalloc.start()
    with pytest.raises(ValueError) as err:
        FolderDataset(str(data / "LR"), str(data / "HR")).samples()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    msg = str(err.value)
    for p in (bomb16, bomb8):
        assert f"cannot read image {p}: it declares 16000x16000 = 256000000 pixels, more than max_pixels=89478485" in msg
    assert "2 problem(s)" in msg
    assert peak < 50 * 2**20  # nothing of the declared size was allocated
    # the same through a run: refused before any work, one limit configurable for every decoder
    (bomb16.unlink(), bomb8.unlink())
    with pytest.raises(ValueError, match=r"good\.png: it declares 64x64 = 4096 pixels, more than max_pixels=1000"):
        run_bench(_bench(data, out, "max_pixels=1000"))
    assert not folder_dir(out, data / "LR", data / "HR").exists()
    assert run_bench(_bench(data, out, "max_pixels=4096"))["num_images"] == 1
    assert read_image(data / "HR" / "good.png").shape == (64, 64, 3)


# ----------------------------------------------------------------------------- stale imports


def test_changed_precomputed_sources_are_imported_again_never_scored_from_old_copies(tmp_path, caplog):
    import shutil as sh

    import pandas as pd

    data = tmp_path / "data"
    make_pairs(data, ["a", "b"])
    run_bench(_bench(data, tmp_path / "made", "runs=2"))
    made = folder_dir(tmp_path / "made", data / "LR", data / "HR") / "noise_control" / "samples"
    src = tmp_path / "outputs"
    sh.copytree(made, src)

    def args(out: Path) -> list[str]:
        return ["method=precomputed", f"method.path={src}", "dataset=folder", f"dataset.lr_dir={data / 'LR'}",
                f"dataset.hr_dir={data / 'HR'}", "metrics=[psnr]", f"output_dir={out}", "device=cpu"]

    first = run_bench(args(tmp_path / "out"))
    # the method's outputs change in place (same path string): image a of run 1 becomes the HR image
    sh.copyfile(data / "HR" / "a.png", src / "sample01" / "a.png")
    with caplog.at_level("WARNING", logger="srbench"):
        again = run_bench(args(tmp_path / "out"))
    changed = [r.getMessage() for r in caplog.records if "changed since it was imported" in r.getMessage()]
    assert len(changed) == 1 and "sample01/a.png" in changed[0]  # only the changed file is imported again
    fresh = run_bench(args(tmp_path / "fresh"))  # the truth: a first import of the files as they are now
    scores = lambda out: pd.read_csv(folder_dir(out, data / "LR", data / "HR") / "precomputed" / "scores.csv")  # noqa: E731
    assert scores(tmp_path / "out").equals(scores(tmp_path / "fresh"))
    assert again["metrics"]["psnr"]["mean"] == fresh["metrics"]["psnr"]["mean"] != first["metrics"]["psnr"]["mean"]


# ----------------------------------------------------------------------------- memory independent of N


def test_running_moments_equal_the_two_pass_std():
    import numpy as np

    from benchmark.stability import RunningMoments

    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, (23, 9, 7, 3)).astype(np.float64) / 255.0 + 1e3  # offset: cancellation-prone
    for chunks in ([23], [1] * 23, [5, 5, 5, 5, 3], [2, 7, 1, 13]):
        m, i = RunningMoments(), 0
        for k in chunks:
            m.update(stack[i:i + k])
            i += k
        np.testing.assert_allclose(m.std(), np.std(stack, axis=0, ddof=0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(m.mean, stack.mean(axis=0), rtol=1e-12)


def test_streamed_scoring_equals_scoring_all_runs_at_once(tmp_path):
    import numpy as np
    import pandas as pd
    import torch

    from benchmark import stability
    from benchmark.data import FolderDataset
    from benchmark.images import read_image
    from benchmark.scoring import plan_metrics, score
    from benchmark.store import Store
    from conftest import compose

    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b"], lr_size=(12, 10))
    run_bench(_bench(data, out, "runs=5"))
    cfg = compose(_bench(data, out, "runs=5"))
    samples = FolderDataset(str(data / "LR"), str(data / "HR")).samples()
    store = Store(out, folder_dir(out, data / "LR", data / "HR").name, "noise_control")
    plan = plan_metrics(cfg, True, torch.device("cpu"))
    seeds = list(range(5))
    results = {c: score(samples, store, 5, seeds, plan, 4, torch.device("cpu"), chunk=c) for c in (1, 2, 5)}
    for c in (1, 2):
        pd.testing.assert_frame_equal(results[c][0], results[5][0], rtol=1e-10)
        pd.testing.assert_frame_equal(results[c][1], results[5][1], rtol=1e-10)
    # and the streamed L-STD is the one-pass definition over all runs at once
    for smp, (_, v) in zip(samples, results[2][1].itertuples(index=False)):
        runs = [read_image(store.sample_path(smp.id, r)) for r in range(5)]
        assert v == pytest.approx(stability.lstd_image(runs, 4), rel=1e-12)


def test_run_whose_samples_cannot_fit_on_disk_or_in_memory_is_refused_before_any_work(tmp_path, monkeypatch):
    from benchmark import resources

    data, out = tmp_path / "data", tmp_path / "out"
    make_pairs(data, ["a", "b"])  # SR 64x64: 12288 bytes a sample
    monkeypatch.setattr(resources, "_free_bytes", lambda folder: 1_000_000)
    with pytest.raises(ValueError, match=r"2 image\(s\) x 100 run\(s\) need about 0\.00 GiB.*has 0\.00 GiB free"
                                         r".*output_dir=<dir>") as err:
        run_bench(_bench(data, out, "runs=100"))
    assert not (folder_dir(out, data / "LR", data / "HR") / "noise_control" / "samples").exists()
    assert resources.estimate([s for s in _samples(data)], 100, 4, 2, 16)[0] == 2 * 64 * 64 * 3 * 100
    monkeypatch.setattr(resources, "_free_bytes", lambda folder: None)
    monkeypatch.setattr(resources, "_available_memory", lambda: 1000)
    with pytest.raises(ValueError, match=r"scoring 2 image\(s\) x 3 run\(s\) needs about .* of memory"):
        run_bench(_bench(data, out, "runs=3"))
    monkeypatch.setattr(resources, "_available_memory", lambda: None)
    assert run_bench(_bench(data, out, "runs=3"))["runs"] == 3


def _samples(data: Path):
    from benchmark.data import FolderDataset

    return FolderDataset(str(data / "LR"), str(data / "HR")).samples()
