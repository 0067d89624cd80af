"""benchmark.fetch against a local HTTP server in the Hub's URL layout (no internet)."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from benchmark import fetch as F
from hub_server import HubServer

ROOT = Path(__file__).resolve().parents[1]
REPO = "someone/tiny-set"


def blob(n: int, seed: int = 0) -> bytes:
    # incompressible, position-dependent bytes: a resumed file with a gap or overlap hashes differently
    out, h = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


def hf_source(data: bytes, **kw) -> F.Source:
    return F.Source("tiny.bin", hf_repo=REPO, hf_repo_type="dataset", hf_revision="main",
                    sha256=hashlib.sha256(data).hexdigest(), size=len(data), **kw)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SRBENCH_OFFLINE", raising=False)
    with HubServer() as s:
        monkeypatch.setenv("HF_ENDPOINT", s.url)
        yield s


def test_hub_download_verifies_and_caches(server, capsys):
    data = blob(200_000)
    server.add_hf(REPO, "tiny.bin", data, repo_type="dataset")
    src = hf_source(data)
    assert src.location == f"{server.url}/datasets/{REPO}/resolve/main/tiny.bin"
    path = F.fetch(src, progress=False)
    assert path == F.default_path(src) and path.read_bytes() == data
    assert path.parent.name == hashlib.sha256(data).hexdigest()[:16]
    err = capsys.readouterr().err
    assert "downloading tiny.bin" in err and "downloaded tiny.bin" in err  # one-line progress off a TTY
    n = len(server.requests)
    assert F.fetch(src) == path and len(server.requests) == n  # cached: no request
    assert not path.with_name("tiny.bin.part").exists()


def test_plain_url_to_dest(server, tmp_path):
    data = blob(5000, 1)
    url = server.add_url("/files/w.pth", data)
    src = F.Source("w.pth", url=url, sha256=hashlib.sha256(data).hexdigest())
    out = F.fetch(src, tmp_path / "x" / "w.pth", progress=False)
    assert out == tmp_path / "x" / "w.pth" and out.read_bytes() == data


def test_corrupted_download_is_deleted_and_named(server):
    data = blob(10_000, 2)
    server.add_hf(REPO, "tiny.bin", data[:-1] + b"\x00", repo_type="dataset")  # same size, other bytes
    src = hf_source(data)
    with pytest.raises(F.ChecksumError) as e:
        F.fetch(src, progress=False)
    assert "tiny.bin" in str(e.value) and src.sha256 in str(e.value)
    assert not F.default_path(src).exists() and not F.default_path(src).with_name("tiny.bin.part").exists()


def test_altered_cached_file_is_fetched_again(server):
    data = blob(10_000, 3)
    server.add_hf(REPO, "tiny.bin", data, repo_type="dataset")
    src = hf_source(data)
    path = F.fetch(src, progress=False)
    path.write_bytes(b"x" * len(data))
    assert F.fetch(src, progress=False).read_bytes() == data


def test_missing_file_on_server(server):
    src = hf_source(b"abc")
    with pytest.raises(F.FetchError, match="HTTP 404"):
        F.fetch(src, progress=False)


def test_offline_names_file_source_and_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = hf_source(b"abc")
    with pytest.raises(F.OfflineError) as e:
        F.fetch(src)
    msg = str(e.value)
    assert "HF_HUB_OFFLINE=1" in msg and "tiny.bin" in msg and str(F.default_path(src)) in msg
    assert not F.is_online([src])


def test_unreachable_host_is_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with HubServer() as s:
        url = s.url
    monkeypatch.setenv("HF_ENDPOINT", url)  # server stopped: nothing listens on the port
    reason = F.offline_reason([hf_source(b"abc")], timeout=1.0)
    assert reason is not None and "not reachable" in reason


def test_resume_after_killed_download(server, tmp_path):
    data = blob(600_000, 4)
    server.add_hf(REPO, "tiny.bin", data, repo_type="dataset")
    server.delay = 0.02  # ~16 KiB per 20 ms: the child is killed well before the end
    src = hf_source(data)
    part = F.default_path(src).with_name("tiny.bin.part")
    code = ("from benchmark.fetch import Source, fetch; "
            f"fetch(Source('tiny.bin', hf_repo={REPO!r}, hf_repo_type='dataset', sha256={src.sha256!r}, "
            f"size={len(data)}), progress=False)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size >= 100_000):
            assert child.poll() is None, "the child ended before it could be killed"
            assert time.monotonic() < deadline, "no bytes arrived"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    kept = part.stat().st_size
    assert 100_000 <= kept < len(data) and not F.default_path(src).exists()  # nothing looks complete
    server.delay = 0.0
    server.requests.clear()
    path = F.fetch(src, progress=False)
    assert path.read_bytes() == data
    assert ("GET", f"/datasets/{REPO}/resolve/main/tiny.bin", f"bytes={kept}-") in server.requests


def test_server_ignoring_range_restarts_from_zero(server):
    data = blob(50_000, 5)
    server.add_hf(REPO, "tiny.bin", data, repo_type="dataset")
    server.ignore_range = True
    src = hf_source(data)
    part = F.default_path(src).with_name("tiny.bin.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])
    assert F.fetch(src, progress=False).read_bytes() == data


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, v in files.items():
            z.writestr(k, v)
    return buf.getvalue()


def test_unpack_is_atomic_and_marks_verified(tmp_path):
    arc = tmp_path / "a.zip"
    arc.write_bytes(_zip({"top/set/a.txt": b"aa", "top/set/sub/b.txt": b"bbb", "top/other/c.txt": b"c"}))
    dest = tmp_path / "out" / "set"

    def refuse(folder: Path):
        assert (folder / "a.txt").is_file() and not dest.exists()  # checked before it is visible
        raise ValueError("refused")

    keep = lambda name: name.split("top/set/", 1)[1] if name.startswith("top/set/") else None  # noqa: E731
    with pytest.raises(ValueError, match="refused"):
        F.unpack(arc, dest, members=keep, check=refuse)
    assert not dest.exists() and not list(dest.parent.glob(".set.partial-*"))
    (dest.parent / ".set.partial-dead").mkdir()  # as a killed unpack leaves it
    F.unpack(arc, dest, members=keep, marker={"name": "set"})
    assert F.tree_listing(dest) == {"a.txt": 2, "sub/b.txt": 3}
    assert F.read_marker(dest)["name"] == "set" and not list(dest.parent.glob(".set.partial-*"))
    assert F.check_against_marker(dest, hashes=True) == []
    (dest / "a.txt").write_bytes(b"xy")  # same size, other bytes
    assert F.check_against_marker(dest) == []
    assert any("altered file" in p and "a.txt" in p for p in F.check_against_marker(dest, hashes=True))
    (dest / "sub" / "b.txt").unlink()
    (dest / "junk.txt").write_bytes(b"j")
    probs = F.check_against_marker(dest)
    assert any("missing file" in p and "b.txt" in p for p in probs)
    assert any("unexpected file" in p and "junk.txt" in p for p in probs)


def test_unpack_refuses_unsafe_members(tmp_path):
    arc = tmp_path / "a.zip"
    arc.write_bytes(_zip({"../evil.txt": b"x"}))
    with pytest.raises(ValueError, match="outside"):
        F.unpack(arc, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_source_validation():
    with pytest.raises(ValueError, match="exactly one"):
        F.Source("a", url="http://x/a", hf_repo="r/x")
    with pytest.raises(ValueError, match="sha256"):
        F.Source("a", url="http://x/a", sha256="ABC")


def test_gdrive_goes_through_gdown_with_resume_and_is_checked(monkeypatch):
    gdown = pytest.importorskip("gdown")
    data = blob(3000, 6)
    calls = []

    def fake_download(id, output, quiet, resume):  # noqa: A002  (gdown's own argument name)
        calls.append((id, resume))
        Path(output).write_bytes(data)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    monkeypatch.setattr(F, "offline_reason", lambda sources=(), timeout=3.0: None)
    src = F.Source("g.bin", gdrive_id="abc123", sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    assert F.fetch(src, progress=False).read_bytes() == data and calls == [("abc123", True)]
    bad = F.Source("h.bin", gdrive_id="abc123", sha256="0" * 64)
    with pytest.raises(F.ChecksumError):
        F.fetch(bad, progress=False)
