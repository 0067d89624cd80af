"""The weights doctor (`python -m benchmark weights`) and the network checks behind the runner."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmark import doctor, weights
from benchmark.weights import WeightFile
from conftest import ROOT

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
    assert rc == 1 and set(table) == PAPER_FILES
    assert table["vgg16-397923af.pth"][:3] == ["present", "2.9", "KiB"]
    assert all(r[0] == "MISSING" for n, r in table.items() if n != "vgg16-397923af.pth")
    assert str(tmp_path / "th" / "hub" / "pyiqa" / "musiq_koniq_ckpt-e95806b9.pth") in out
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in out
    assert "7 file(s) missing" in out and "python -m benchmark weights metrics=paper --download" in out


def test_doctor_weights_dir_and_no_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "elsewhere"))
    assert doctor.doctor(["metrics=[psnr,ssim]"]) == 0
    assert "need no files" in capsys.readouterr().out
    assert doctor.doctor(["metrics=[fid]", f"weights_dir={tmp_path / 'w'}"]) == 1
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
    assert doctor.doctor(["metrics=[musiq]", "--download"]) == 1
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
    assert out.returncode == 1, out.stderr
    assert "niqe_modelparameters.mat" in out.stdout and "MISSING" in out.stdout
    help_ = subprocess.run([sys.executable, "-m", "benchmark", "--help"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert "weights" in help_.stdout


def test_run_stops_before_generation_when_method_files_are_missing_offline(tmp_path, monkeypatch):
    from methods.noise_control import NoiseControl

    from conftest import make_pairs, run_bench

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
    assert not (tmp_path / "out" / "folder").exists()
    want.parent.mkdir()
    want.write_bytes(b"w")
    assert run_bench(args)["metrics"]["psnr"]["mean"] is not None
