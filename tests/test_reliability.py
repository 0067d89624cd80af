"""The fault catalogue of docs/reliability.md: every fault, its behaviour, and nothing lost.

Runs that must be killed or run side by side are real ``run_bench.py`` processes; their kill
points are deterministic (a test method or a wrapped metric writes a marker file and waits),
never timing guesses.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

from benchmark.images import read_image
from benchmark.write_errors import OutputWriteError
from conftest import ROOT, folder_dir, make_pairs, run_bench, write_png

TESTS = Path(__file__).resolve().parent
RUN_BENCH = ROOT / "run_bench.py"


# ----------------------------------------------------------------------------- helpers


def base(lr: Path, hr: Path | None, out: Path, *extra: str) -> list[str]:
    args = ["dataset=folder", f"dataset.lr_dir={lr}", f"output_dir={out}", "metrics=[psnr,ssim]", "device=cpu"]
    if hr is not None:
        args.append(f"dataset.hr_dir={hr}")
    return args + list(extra)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def cli(args: list[str], cwd: Path, script: Path = RUN_BENCH, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=_env(**env))


def start(args: list[str], cwd: Path, script: Path = RUN_BENCH, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(**env))


def wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Wait until ``proc`` reached its kill point (it wrote ``marker``)."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"process ended (rc {proc.returncode}) before its kill point:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"process did not reach its kill point within {timeout} s")
        time.sleep(0.05)


def sigkill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def kill_part_way(s: dict, marker_name: str, script: Path = RUN_BENCH, extra: tuple[str, ...] = (), **env: str) -> None:
    """Start the run of ``s`` (plus ``extra`` arguments) in a fresh output folder and SIGKILL it at its
    kill point (``env``)."""
    shutil.rmtree(s["root"], ignore_errors=True)
    marker = s["tmp"] / marker_name
    marker.unlink(missing_ok=True)
    proc = start(s["args"] + list(extra), s["tmp"], script, SRB_PAUSE_MARKER=str(marker), **env)
    wait_for(marker, proc)
    sigkill(proc)


def results_without_timing(path: Path) -> dict:
    res = json.loads(path.read_text())
    res.pop("timing")  # wall-clock: the one field two runs of anything differ in
    return res


def pngs(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- 1. interrupted runs


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory):
    """Data, arguments and an uninterrupted reference run (CLI) in the output path the kill tests reuse."""
    tmp = tmp_path_factory.mktemp("kill")
    lr, hr = make_pairs(tmp / "data", ["img_a", "img_b", "img_c"])
    out = tmp / "out"
    args = base(lr, hr, out, "method=noise_control", "method._target_=srb_helpers.Pausing", "runs=4", "batch_size=2")
    p = cli(args, tmp)
    assert p.returncode == 0, p.stdout + p.stderr
    root = folder_dir(out, lr, hr) / "noise_control"
    ref = {"scores": (root / "scores.csv").read_bytes(), "lstd": (root / "lstd.csv").read_bytes(),
           "results": results_without_timing(root / "results.json"), "pngs": pngs(root / "samples")}
    assert len(ref["pngs"]) == 12
    return {"tmp": tmp, "args": args, "root": root, "ref": ref}


def _assert_same_as_reference(setup: dict) -> None:
    root, ref = setup["root"], setup["ref"]
    assert (root / "scores.csv").read_bytes() == ref["scores"]
    assert (root / "lstd.csv").read_bytes() == ref["lstd"]
    assert results_without_timing(root / "results.json") == ref["results"]
    assert pngs(root / "samples") == ref["pngs"]
    assert leftovers(root) == []


# The reference run of kill_setup is pipelined (the default); each killed run below is either
# sequential (pipeline=false: every sample is written before the next method call, so what is on disk at
# the kill point is exact) or pipelined (samples still queued for the writer thread at the kill are lost:
# what is on disk is a prefix of the generation order). Every rerun is the default, pipelined.
GEN_ORDER = ["sample00/img_a.png", "sample01/img_a.png", "sample02/img_a.png", "sample03/img_a.png",
             "sample00/img_b.png", "sample01/img_b.png", "sample02/img_b.png", "sample03/img_b.png"]


def test_sigkill_during_generation_then_rerun_is_identical(kill_setup):
    s = kill_setup
    # batches of 2 runs: calls 1-2 are img_a, 3-4 img_b; stop inside call 4 (img_b, runs 2-3). Sequential,
    # so that the files on disk are exact; the pipelined kill is the next test
    kill_part_way(s, "gen.marker", extra=("pipeline=false",), SRB_PAUSE_AT="4")
    stored = pngs(s["root"] / "samples")
    assert sorted(stored) == sorted(GEN_ORDER[:6])
    assert all(stored[k] == s["ref"]["pngs"][k] for k in stored)  # what was finished is final
    assert not (s["root"] / "results.json").exists()
    p = cli(s["args"], s["tmp"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "generating 6 image-run(s) (6 already stored)" in p.stdout + p.stderr
    _assert_same_as_reference(s)


def test_sigkill_with_samples_queued_for_the_writer_then_rerun_is_identical(kill_setup):
    """Pipelined: the writer thread stops inside its 3rd PNG write while the method goes on and fills
    the writer's queue; SIGKILL then loses every queued sample, and only those, and the rerun makes
    them again."""
    s = kill_setup
    kill_part_way(s, "writer.marker", TESTS / "srb_pause_writer.py", SRB_WRITE_PAUSE_AT="3")
    stored = pngs(s["root"] / "samples")
    assert sorted(stored) == sorted(GEN_ORDER[:2])  # FIFO: writes 1-2 finished, 3 was in progress
    assert all(stored[k] == s["ref"]["pngs"][k] for k in stored)
    assert not (s["root"] / "results.json").exists()
    p = cli(s["args"], s["tmp"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "generating 10 image-run(s) (2 already stored)" in p.stdout + p.stderr
    _assert_same_as_reference(s)


@pytest.mark.parametrize("pipeline", ["false", "true"])
def test_sigkill_during_scoring_then_rerun_is_identical(kill_setup, pipeline):
    s = kill_setup
    # the PSNR scorer is called once per image (one chunk of 4 runs): stop at the second image.
    # Sequential: after generation has finished; pipelined: in the scorer thread, during generation
    kill_part_way(s, "score.marker", TESTS / "srb_pause_scoring.py", extra=(f"pipeline={pipeline}",),
                  SRB_SCORE_PAUSE_AT="2")
    stored = pngs(s["root"] / "samples")
    if pipeline == "false":
        assert len(stored) == 12
    else:
        assert sorted(stored) == sorted((GEN_ORDER + ["sample00/img_c.png", "sample01/img_c.png",
                                                      "sample02/img_c.png", "sample03/img_c.png"])[:len(stored)])
    assert all(stored[k] == s["ref"]["pngs"][k] for k in stored)
    assert not (s["root"] / "scores.csv").exists() and not (s["root"] / "results.json").exists()
    p = cli(s["args"], s["tmp"])
    assert p.returncode == 0, p.stdout + p.stderr
    if len(stored) == 12:
        assert "all 12 image-runs already stored" in p.stdout + p.stderr
    _assert_same_as_reference(s)


def test_sigkill_then_truncated_png_is_regenerated_with_log_line(kill_setup):
    """A file cut short outside srbench's atomic writes (a copy, a full disk, a crash of another
    tool) is found on resume by the rerun process and regenerated, and the log says so."""
    s = kill_setup
    kill_part_way(s, "trunc.marker", extra=("pipeline=false",), SRB_PAUSE_AT="5")  # sequential: exact files
    victim = s["root"] / "samples" / "sample01" / "img_b.png"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    p = cli(s["args"], s["tmp"])
    assert p.returncode == 0, p.stdout + p.stderr
    log = p.stdout + p.stderr
    assert f"stored sample {victim} is truncated" in log and "regenerating it" in log
    assert "generating 5 image-run(s) (7 already stored)" in log
    _assert_same_as_reference(s)


def _truncate_half(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _drop_end_chunk(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-12])  # pixels complete, IEND missing: still "truncated"


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _garbage(p: Path) -> None:
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4 + b"\x00\x00\x00\x00IEND\xaeB`\x82")


def _wrong_size(p: Path) -> None:
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(p)


@pytest.mark.parametrize("damage, message", [
    (_truncate_half, "is truncated"), (_drop_end_chunk, "is truncated"), (_empty, "is truncated"),
    (_garbage, "is unreadable"), (_wrong_size, "is 12x10, expected 64x64"),
])
def test_damaged_stored_sample_is_regenerated_with_log_line(tmp_path, pairs, caplog, monkeypatch, damage, message):
    lr, hr = pairs
    args = base(lr, hr, tmp_path, "method=noise_control", "runs=3")
    run_bench(args)
    root = folder_dir(tmp_path, lr, hr) / "noise_control"
    ref_scores, ref_pngs = (root / "scores.csv").read_bytes(), pngs(root / "samples")
    victim = root / "samples" / "sample02" / "img_c.png"
    damage(victim)
    # some libraries set this process-wide flag, which makes PIL decode truncated files without
    # complaint; the check must not depend on it
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    caplog.set_level("INFO", logger="srbench")
    res = run_bench(args)
    assert f"stored sample {victim} {message}" in caplog.text and "regenerating it" in caplog.text
    assert res["timing"]["image_runs_generated_now"] == 1
    assert (root / "scores.csv").read_bytes() == ref_scores and pngs(root / "samples") == ref_pngs


def test_partial_temporary_file_is_never_taken_as_finished(tmp_path, pairs):
    """A kill inside an atomic write leaves a partial ``.<id>.*.png.tmp`` and no final file."""
    lr, hr = pairs
    args = base(lr, hr, tmp_path, "method=noise_control", "runs=2")
    run_bench(args)
    root = folder_dir(tmp_path, lr, hr) / "noise_control"
    final = root / "samples" / "sample01" / "img_b.png"
    ref = final.read_bytes()
    final.unlink()
    (final.parent / ".img_b.abc123.png.tmp").write_bytes(ref[: len(ref) // 3])
    res = run_bench(args)
    assert res["timing"]["image_runs_generated_now"] == 1 and final.read_bytes() == ref


# ----------------------------------------------------------------------------- 2. write failures


def _fail_fsync_of(monkeypatch, pattern: str, nth: int, code: int = errno.ENOSPC) -> dict:
    """Make the ``nth`` fsync of a file whose name matches ``pattern`` fail with ``code`` (e.g. a full disk)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to see which file an fsync is for")
    real = os.fsync
    seen = {"n": 0}

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if re.search(pattern, name):
            seen["n"] += 1
            if seen["n"] == nth:
                raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_disk_full_during_generation_keeps_finished_samples_and_rerun_continues(tmp_path, pairs, monkeypatch):
    lr, hr = pairs
    ref = run_bench(base(lr, hr, tmp_path / "ref", "method=noise_control", "runs=3", "batch_size=2"))
    ref_root = folder_dir(tmp_path / "ref", lr, hr) / "noise_control"
    args = base(lr, hr, tmp_path / "out", "method=noise_control", "runs=3", "batch_size=2")
    root = folder_dir(tmp_path / "out", lr, hr) / "noise_control"
    _fail_fsync_of(monkeypatch, r"\.png\.tmp$", nth=5)
    with pytest.raises(OutputWriteError) as err:
        run_bench(args)
    msg = str(err.value)
    assert err.value.errno == errno.ENOSPC
    # the 5th PNG is img_b run 1 (img_a: runs 0-2; img_b: runs 0-1 in one batch); named by its final name
    assert f"cannot write {root / 'samples' / 'sample01' / 'img_b.png'}:" in msg
    assert "disk" in msg and "full" in msg and "free space" in msg and "output_dir=" in msg
    done = pngs(root / "samples")
    assert sorted(done) == ["sample00/img_a.png", "sample00/img_b.png", "sample01/img_a.png", "sample02/img_a.png"]
    assert all(done[k] == (ref_root / "samples" / k).read_bytes() for k in done)  # intact
    assert leftovers(root) == [] and not (root / "results.json").exists()
    monkeypatch.undo()
    res = run_bench(args)
    assert res["timing"]["image_runs_generated_now"] == 9 - 4
    assert (root / "scores.csv").read_bytes() == (ref_root / "scores.csv").read_bytes()
    assert res["metrics"] == ref["metrics"] and res["lstd"] == ref["lstd"]


def test_failed_write_of_scores_names_the_file_and_rerun_finishes(tmp_path, pairs, monkeypatch):
    lr, hr = pairs
    args = base(lr, hr, tmp_path, "method=noise_control", "runs=2")
    root = folder_dir(tmp_path, lr, hr) / "noise_control"
    _fail_fsync_of(monkeypatch, r"\.scores\..*\.csv\.tmp$", nth=1, code=errno.EIO)
    with pytest.raises(OutputWriteError, match=re.escape(f"cannot write {root / 'scores.csv'}:")):
        run_bench(args)
    assert len(pngs(root / "samples")) == 6 and leftovers(root) == []
    assert not (root / "scores.csv").exists() and not (root / "results.json").exists()
    monkeypatch.undo()
    res = run_bench(args)
    assert res["timing"]["image_runs_generated_now"] == 0 and (root / "results.json").is_file()


def test_unwritable_output_folder_simulated(tmp_path, pairs, monkeypatch):
    """EACCES from every file creation under the output folder (as for a folder without write
    permission); runs everywhere, unlike the real read-only test below, which needs privileges."""
    import tempfile

    lr, hr = pairs
    args = base(lr, hr, tmp_path, "method=noise_control", "runs=2")
    run_bench(args)
    root = folder_dir(tmp_path, lr, hr) / "noise_control"
    before = pngs(root / "samples")
    real = tempfile.mkstemp

    def mkstemp(*a, dir=None, **k):
        if dir is not None and str(dir).startswith(str(root)):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(OutputWriteError) as err:
        run_bench(base(lr, hr, tmp_path, "method=noise_control", "runs=3"))
    assert err.value.errno == errno.EACCES
    assert f"cannot write {root / 'manifest.json'}" in str(err.value) and "not writable" in str(err.value)
    monkeypatch.undo()
    assert pngs(root / "samples") == before
    res = run_bench(base(lr, hr, tmp_path, "method=noise_control", "runs=3"))
    assert res["timing"]["image_runs_generated_now"] == 3


def _read_only_prefix(folder: Path) -> list[str] | None:
    """A command prefix under which ``folder`` is really read-only, or None when this machine cannot."""
    if os.geteuid() != 0:
        return []  # chmod is enough for a normal user
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    q = str(folder)
    return ["unshare", "-rm", "sh", "-c", f'mount --bind "{q}" "{q}" && mount -o remount,bind,ro "{q}" && exec "$@"',
            "sh"]


def test_read_only_output_folder_real(tmp_path, pairs):
    lr, hr = pairs
    out = tmp_path / "out"
    root = folder_dir(out, lr, hr) / "noise_control"
    p = cli(base(lr, hr, out, "method=noise_control", "runs=2"), tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    before = pngs(root / "samples")
    prefix = _read_only_prefix(root)
    if prefix is None:
        pytest.skip("running as root without user namespaces (unshare -rm): cannot make a folder read-only")

    def run_read_only(folder: Path, args: list[str]) -> subprocess.CompletedProcess:
        pre = _read_only_prefix(folder)
        if pre == []:
            modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
            for d in modes:
                d.chmod(0o555)
            try:
                return cli(args, tmp_path)
            finally:
                for d, m in modes.items():
                    d.chmod(m)
        return subprocess.run([*pre, sys.executable, str(RUN_BENCH), *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300, env=_env())

    # the (data set, method) folder is read-only: clear error naming a file in it, nothing lost
    p = run_read_only(root, base(lr, hr, out, "method=noise_control", "runs=3"))
    log = p.stdout + p.stderr
    assert p.returncode != 0
    assert re.search(rf"cannot write {re.escape(str(root))}/\S+: .*(Read-only|Permission denied|readonly)", log), log
    assert "make it writable" in log and "output_dir=<dir>" in log
    assert pngs(root / "samples") == before
    # the whole output_dir is read-only: refused before Hydra creates any folder in it
    fresh = tmp_path / "ro_out"
    fresh.mkdir()
    p = run_read_only(fresh, base(lr, hr, fresh / "results", "method=noise_control", "runs=2"))
    assert p.returncode != 0 and f"output_dir={fresh / 'results'} cannot be written" in p.stderr, p.stderr
    assert list(fresh.iterdir()) == []
    # writable again: the rerun continues from what was stored
    p = cli(base(lr, hr, out, "method=noise_control", "runs=3"), tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads((root / "results.json").read_text())["timing"]["image_runs_generated_now"] == 3


# ----------------------------------------------------------------------------- 3. bad method output


FAULTS = [("has_nan", "non-finite"), ("has_inf", "non-finite"), ("range", r"\[0, 1\]"), ("shape", "shape"),
          ("channels", "shape"), ("dtype", "dtype")]


@pytest.mark.parametrize("fault, what", FAULTS)
def test_bad_method_output_writes_nothing_for_that_run(tmp_path, pairs, fault, what):
    lr, hr = pairs
    args = base(lr, hr, tmp_path, "method=bicubic", "method._target_=srb_helpers.Broken", f"+method.fault={fault}",
                "+method.bad_seed=2", "method.name=broken", "runs=3", "batch_size=3")
    with pytest.raises(ValueError, match=what) as err:
        run_bench(args)
    msg = str(err.value)
    assert "'broken'" in msg and "'img_a'" in msg and re.search(r"seeds? \[?(\d+, )*2\b", msg), msg
    root = folder_dir(tmp_path, lr, hr) / "broken"
    # the batch held runs 0-2 of img_a: none of them, and nothing after, is written
    assert pngs(root) == {} and leftovers(root) == []
    assert not (root / "scores.csv").exists() and not (root / "results.json").exists()


def test_bad_output_in_later_batch_keeps_earlier_runs_only(tmp_path, pairs):
    lr, hr = pairs
    args = base(lr, hr, tmp_path, "method=bicubic", "method._target_=srb_helpers.Broken", "+method.fault=has_nan",
                "+method.bad_seed=2", "method.name=broken", "runs=3", "batch_size=1")
    with pytest.raises(ValueError, match=r"method 'broken' returned non-finite values .* for image 'img_a', seed 2"):
        run_bench(args)
    assert sorted(pngs(folder_dir(tmp_path, lr, hr) / "broken")) == ["samples/sample00/img_a.png", "samples/sample01/img_a.png"]


# ----------------------------------------------------------------------------- 4. concurrent use


def test_second_process_on_same_folder_is_refused_naming_lock_and_holder(tmp_path, pairs):
    lr, hr = pairs
    args = base(lr, hr, tmp_path / "out", "method=noise_control", "method._target_=srb_helpers.Pausing", "runs=2")
    marker = tmp_path / "first.marker"
    first = start(args, tmp_path, SRB_PAUSE_AT="1", SRB_PAUSE_MARKER=str(marker))
    try:
        wait_for(marker, first)
        second = cli(args, tmp_path)
        log = second.stdout + second.stderr
        lock = folder_dir(tmp_path / "out", lr, hr) / "noise_control" / ".lock"
        assert second.returncode != 0
        assert f"lock {lock} is held by pid {first.pid} on host {socket.gethostname()} since " in log, log
        assert "shard.index" in log  # says how to run side by side legitimately
    finally:
        sigkill(first)
    # a killed holder releases the lock at once: the next run goes ahead (and resumes)
    third = cli(args, tmp_path)
    assert third.returncode == 0, third.stdout + third.stderr


def test_distinct_shards_run_side_by_side_same_shard_or_whole_run_refused(tmp_path, pairs):
    lr, hr = pairs
    args = base(lr, hr, tmp_path / "out", "method=noise_control", "method._target_=srb_helpers.Pausing", "runs=2")
    folder = folder_dir(tmp_path / "out", lr, hr) / "noise_control"
    marker = tmp_path / "shard0.marker"
    first = start([*args, "shard.index=0", "shard.count=2"], tmp_path, SRB_PAUSE_AT="1", SRB_PAUSE_MARKER=str(marker))
    try:
        wait_for(marker, first)
        other_shard = cli([*args, "shard.index=1", "shard.count=2"], tmp_path)
        # the refused ones side by side
        others = {
            "same_shard": start([*args, "shard.index=0", "shard.count=2"], tmp_path),
            "whole_run": start(args, tmp_path),
            "other_count": start([*args, "shard.index=1", "shard.count=3"], tmp_path),
        }
        logs = {k: p.communicate(timeout=300)[0] for k, p in others.items()}
        rcs = {k: p.returncode for k, p in others.items()}
    finally:
        sigkill(first)
    holder = f"held by pid {first.pid} on host {socket.gethostname()}"
    assert other_shard.returncode == 0 and "is in use" not in other_shard.stderr, other_shard.stderr
    assert rcs["same_shard"] != 0 and f"lock {folder / '.lock.shard-0-of-2'} is {holder}" in logs["same_shard"]
    assert rcs["whole_run"] != 0 and f"lock {folder / '.lock'} is {holder}" in logs["whole_run"], logs["whole_run"]
    assert rcs["other_count"] != 0 and f"lock {folder / '.lock.shard-0-of-2'} is {holder}" in logs["other_count"]


def test_lock_is_released_after_an_error_in_the_same_process(tmp_path, pairs):
    lr, hr = pairs
    broken = ["method=bicubic", "method._target_=srb_helpers.Broken", "method.name=broken", "runs=2"]
    with pytest.raises(ValueError, match="non-finite"):
        run_bench(base(lr, hr, tmp_path, *broken, "+method.fault=has_nan", "+method.bad_seed=0"))
    # the same folder right away, in the same process: no "in use"
    res = run_bench(base(lr, hr, tmp_path, *broken, "+method.fault=none", "overwrite=true"))
    assert res["runs"] == 2


# ----------------------------------------------------------------------------- 5. determinism


def test_nondeterministic_deterministic_method_fails_the_check(tmp_path, pairs):
    lr, hr = pairs
    args = base(lr, hr, tmp_path, "method=bicubic", "method._target_=srb_helpers.Flaky", "method.name=flaky")
    res = run_bench(args)  # without the check the flaw goes unnoticed: one run, no G-STD
    assert res["runs"] == 1 and res["lstd"] is None
    with pytest.raises(ValueError, match=r"method 'flaky' is declared deterministic but gave different outputs "
                                         r"for image 'img_a'.*values differ.*use_deterministic_algorithms"):
        run_bench([*args, "check_determinism=true"])


def test_determinism_check_passes_for_bicubic_also_on_resume(tmp_path, pairs, caplog):
    lr, hr = pairs
    caplog.set_level("INFO", logger="srbench")
    run_bench(base(lr, hr, tmp_path, "method=bicubic", "check_determinism=true"))
    run_bench(base(lr, hr, tmp_path, "method=bicubic", "check_determinism=true"))  # all stored: loads itself
    assert caplog.text.count("check_determinism: bicubic gave identical outputs") == 2


def test_determinism_check_compares_with_the_stored_sample(tmp_path, pairs):
    lr, hr = pairs
    run_bench(base(lr, hr, tmp_path, "method=bicubic"))
    stored = folder_dir(tmp_path, lr, hr) / "bicubic" / "samples" / "sample00" / "img_b.png"
    arr = read_image(stored).copy()
    arr[0, 0] ^= 1  # as if an earlier process had computed a slightly different value
    write_png(stored, arr)
    with pytest.raises(ValueError, match=r"'bicubic' .* for image 'img_b' .*differs from the stored .*img_b\.png "
                                         r"in 3 8-bit value"):
        run_bench(base(lr, hr, tmp_path, "method=bicubic", "check_determinism=true"))


# ----------------------------------------------------------------------------- 6. protocol edge cases


def test_single_run_gives_null_stability_with_warning(tmp_path, pairs, caplog):
    lr, hr = pairs
    caplog.set_level("WARNING", logger="srbench")
    res = run_bench(base(lr, hr, tmp_path, "method=noise_control", "runs=1"))
    assert "runs=1: G-STD and L-STD are undefined" in caplog.text
    on_disk = json.loads((folder_dir(tmp_path, lr, hr) / "noise_control" / "results.json").read_text())
    for r in (res, on_disk):
        assert r["lstd"] is None and r["metrics"]["psnr"]["gstd"] is None and r["metrics"]["ssim"]["gstd"] is None
        assert isinstance(r["metrics"]["psnr"]["mean"], float)
    assert '"gstd": null' in (folder_dir(tmp_path, lr, hr) / "noise_control" / "results.json").read_text()


def test_crop_border_of_half_the_image_is_an_error_just_below_is_not(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["big"], lr_size=(16, 16))
    make_pairs(tmp_path / "d", ["small"], lr_size=(8, 12), seed=1)  # SR 32x48
    with pytest.raises(ValueError, match=r"crop_border=16 removes the whole image for: small;") as err:
        run_bench(base(lr, hr, tmp_path / "o", "method=bicubic", "crop_border=16"))
    assert "big" not in str(err.value)  # 64x64 keeps 32x32
    assert not folder_dir(tmp_path / "o", lr, hr).exists()  # before any work
    # 2 rows of 32x48 left: PSNR is defined
    res = run_bench(base(lr, hr, tmp_path / "o", "method=bicubic", "crop_border=15", "metrics=[psnr]"))
    assert res["metrics"]["psnr"]["num_images"] == 2


def test_metric_that_cannot_score_a_small_crop_names_metric_and_size(tmp_path):
    """SSIM's 11x11 window does not fit 2 rows: the value is excluded with a reason naming the metric,
    the image and its size after the crop (issue 12's per-image failure policy, no bare conv2d error);
    under strict=true the run then stops with a user error, after results.json is written."""
    import json

    from benchmark.runner import ExcludedValues

    lr, hr = make_pairs(tmp_path / "d", ["small"], lr_size=(8, 12))  # SR 32x48, cropped 2x18
    with pytest.raises(ExcludedValues, match=r"1 value\(s\) excluded.*strict=false"):
        run_bench(base(lr, hr, tmp_path / "o", "method=bicubic", "crop_border=15", "metrics=[ssim]"))
    res = json.loads((folder_dir(tmp_path / "o", lr, hr) / "bicubic" / "results.json").read_text())
    (exc,) = res["metrics"]["ssim"]["excluded"]
    assert exc["image"] == "small" and exc["run"] == 0
    assert exc["reason"].startswith("ssim: ") and "11x11" in exc["reason"] and "18x2 after crop_border=15" in exc["reason"]
    assert res["metrics"]["ssim"]["mean"] is None and res["metrics"]["ssim"]["num_values"] == 0


def test_image_smaller_than_min_size_is_named(tmp_path):
    lr, hr = make_pairs(tmp_path / "d", ["ok"], lr_size=(24, 24))
    make_pairs(tmp_path / "d", ["tiny"], lr_size=(16, 30), seed=1)
    with pytest.raises(ValueError, match=r"method 'sized' needs LR images of at least 20 px per side; "
                                         r"too small: tiny \(30x16\)$"):
        run_bench(base(lr, hr, tmp_path / "o", "method=bicubic", "method._target_=srb_helpers.Sized",
                       "+method.min_size=20", "method.name=sized"))
    assert not folder_dir(tmp_path / "o", lr, hr).exists()


def test_images_of_different_sizes_lstd_by_hand(tmp_path):
    """L-STD per image uses that image's own size (the official script used the first one's)."""
    lr, hr = make_pairs(tmp_path / "d", ["a_square"], lr_size=(16, 16))  # SR 64x64, cropped 56x56
    make_pairs(tmp_path / "d", ["b_wide"], lr_size=(12, 20), seed=1)  # SR 48x80, cropped 40x72
    res = run_bench(base(lr, hr, tmp_path / "o", "method=bicubic", "method._target_=srb_helpers.Square",
                         "method.name=square", "+method.side=8", "runs=2", "crop_border=4"))
    # seeds 0 and 1: an 8x8 square inside the crop is 0 in one run and 1 in the other (std 0.5), the rest 0
    a, b = 0.5 * 64 / (56 * 56), 0.5 * 64 / (40 * 72)
    per_image = pd.read_csv(folder_dir(tmp_path / "o", lr, hr) / "square" / "lstd.csv").set_index("image")["lstd"]
    assert per_image["a_square"] == pytest.approx(a, abs=1e-12)
    assert per_image["b_wide"] == pytest.approx(b, abs=1e-12)
    assert res["lstd"] == pytest.approx((a + b) / 2, abs=1e-12)
    assert res["lstd"] != pytest.approx(a, abs=1e-6)  # what using the first image's size for all would give


# ----------------------------------------------------------------------------- 7. config errors


@pytest.mark.parametrize("override, expected", [
    # wrong types in srbench's words (issue 16): key, value given, what is expected; not Hydra's merge error
    ("runs=abc", ["runs=abc: expected an integer, got 'abc'"]),
    ("crop_border=1.5", ["crop_border=1.5: expected an integer, got 1.5"]),
    ("strict=maybe", ["strict=maybe: expected true or false, got 'maybe'"]),
    ("check_determinism=maybe", ["check_determinism=maybe: expected true or false, got 'maybe'"]),
    ("rnus=3", ["unknown key 'rnus'", "did you mean 'runs'", "allowed top-level keys: batch_size, check_determinism"]),
    ("runs=-1", ["runs=-1", "runs must be an integer >= 1"]),
    ("runs=0", ["runs=0", "runs must be an integer >= 1"]),
    ("batch_size=0", ["batch_size=0", "batch_size must be an integer >= 1"]),
    ("seed=-3", ["seed=-3", "seed must be an integer >= 0"]),
    ("device=tpu", ["device=tpu", "one of auto, cpu, cuda, cuda:N, mps"]),
    # a name is one folder of output_dir/<dataset>/<method>: a path would write outside output_dir
    ("dataset.name=../../evil", ["dataset.name=../../evil: a dataset name is one folder inside output_dir"]),
    ("method.name=..", ["method.name=..: a method name is one folder inside output_dir"]),
    ("method.name=a\\b", ["method.name=a\\b: a method name is one folder"]),
])
def test_config_error_names_key_and_allowed_values_before_any_work(tmp_path, override, expected):
    out = tmp_path / "out"
    p = cli([override, f"output_dir={out}"], tmp_path)
    assert p.returncode != 0
    for text in expected:
        assert text in p.stderr, p.stderr
    assert not out.exists()  # no output folder, not even Hydra's


# ----------------------------------------------------------------------------- 8. the catalogue


def test_reliability_doc_names_only_existing_tests():
    """Every test id in docs/reliability.md exists (collected by pytest), and every row has one."""
    doc = (ROOT / "docs" / "reliability.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("|") and not re.match(r"^\|\s*-", line)][1:]
    assert len(rows) >= 25
    ids = []
    for row in rows:
        found = re.findall(r"`(tests/[\w/]+\.py::[^`]+)`", row)
        assert found, f"row without a test: {row}"
        ids += found
    files = sorted({i.split("::")[0] for i in ids})
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    collected = set(p.stdout.split())
    collected_functions = {c.split("[")[0] for c in collected}
    missing = [i for i in ids if i not in collected and i not in collected_functions]
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_output_dir_on_a_virtual_file_system_is_not_called_a_full_disk():
    """/proc reports 0 bytes free because it has no storage at all: say so, not "the disk is full"."""
    from benchmark.write_errors import OutputWriteError, check_writable

    with pytest.raises(OutputWriteError) as err:
        check_writable("/proc/srbench-out")
    msg = str(err.value)
    assert "virtual file system" in msg and "output_dir=<dir>" in msg and "full" not in msg
