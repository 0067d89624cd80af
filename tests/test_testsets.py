"""Published test sets: fetch, verify, offline stop, altered sets, `python -m benchmark data`
(against a local HTTP server in the Hub's layout; no internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from benchmark import fetch as F
from benchmark import testsets as T
from benchmark.data import DatasetError
from conftest import REALSR, requires
from hub_server import HubServer


def png(side: int, value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def stablesr_zip(lr_side: int = 128, drop_hr: str | None = None) -> bytes:
    """A tiny archive in StableSR_testsets.zip's layout: two sets, two pairs each."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for folder in ("RealSRVal_crop128", "DrealSRVal_crop128"):
            for i, stem in enumerate(("Canon_001_LR4", "Nikon_002_LR4")):
                z.writestr(f"StableSR_testsets/{folder}/test_LR/{stem}.png", png(lr_side, 10 + i))
                if stem != drop_hr:
                    z.writestr(f"StableSR_testsets/{folder}/test_HR/{stem}.png", png(512, 20 + i))
        z.writestr("__MACOSX/StableSR_testsets/._junk", b"x")
    return buf.getvalue()


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRBENCH_CACHE", str(tmp_path / "cache"))  # fetched sets must not leak between tests


@pytest.fixture
def hub(monkeypatch):
    """Serve ``data`` as the StableSR archive; the realsr/drealsr specs point at it (2 pairs)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("SRBENCH_REALSR", "SRBENCH_DREALSR"):
        monkeypatch.delenv(var, raising=False)
    with HubServer() as s:
        monkeypatch.setenv("HF_ENDPOINT", s.url)

        def serve(data: bytes) -> None:
            src = dataclasses.replace(T.STABLESR_ZIP, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            s.add_hf(src.hf_repo, src.filename, data, revision=src.hf_revision, repo_type="dataset")
            for name in ("realsr", "drealsr"):
                monkeypatch.setitem(T.SETS, name, dataclasses.replace(T.SETS[name], source=src, pairs=2))

        s.serve = serve
        yield s


def test_fetch_verifies_and_a_run_finds_it(hub, capsys):
    hub.serve(stablesr_zip())
    assert T.cli(["fetch", "realsr"]) == 0
    root = T.SETS["realsr"].default_root()
    assert f"realsr: verified at {root}" in capsys.readouterr().out
    assert sorted(F.tree_listing(root)) == ["test_HR/Canon_001_LR4.png", "test_HR/Nikon_002_LR4.png",
                                            "test_LR/Canon_001_LR4.png", "test_LR/Nikon_002_LR4.png"]
    marker = F.read_marker(root)
    assert marker["set"] == "realsr" and marker["source"]["hf_repo"] == "Iceclear/StableSR-TestSets"
    assert T.status(T.SETS["realsr"]) == "verified" and T.cli(["verify", "realsr"]) == 0
    ds = T.RealSRDataset()  # no root, no variable: srbench's cache
    assert [s.id for s in ds.samples()] == ["Canon_001_LR4", "Nikon_002_LR4"]
    assert all(s.lr_size == (128, 128) for s in ds.samples())
    assert T.cli(["list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in ("realsr", "drealsr", "div2k_stablesr", "div2k_bicubic", "imagenet1k_bicubic",
                                  "synthetic", "demo", "folder"))
    assert "verified" in out and "S-Lab License 1.0" in out


def test_missing_set_is_fetched_by_the_run_when_online(hub):
    hub.serve(stablesr_zip())
    ds = T.DRealSRDataset()
    assert len(ds.samples()) == 2 and T.status(T.SETS["drealsr"]) == "verified"


def test_odd_set_is_refused_with_each_file_named(hub):
    hub.serve(stablesr_zip(lr_side=100, drop_hr="Nikon_002_LR4"))
    with pytest.raises(ValueError) as e:
        T.fetch_set("realsr")
    msg = str(e.value)
    assert "missing HR partner" in msg and "Nikon_002_LR4" in msg
    assert "odd LR image" in msg and "100x100, expected 128x128" in msg
    root = T.SETS["realsr"].default_root()
    assert not root.exists() and not list(root.parent.glob(".realsr.partial-*"))  # nothing half-made is left


def test_offline_stops_before_work_with_command_folder_and_override(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SRBENCH_DREALSR", raising=False)
    with pytest.raises(FileNotFoundError) as e:
        T.DRealSRDataset()
    msg = str(e.value)
    assert "python -m benchmark data fetch drealsr" in msg and str(T.SETS["drealsr"].default_root()) in msg
    assert "dataset.root=" in msg and "SRBENCH_DREALSR=" in msg and "HF_HUB_OFFLINE=1" in msg
    assert T.cli(["fetch", "drealsr"]) == 1


def test_altered_set_names_missing_and_odd_files(hub):
    hub.serve(stablesr_zip())
    root = T.fetch_set("realsr")
    (root / "test_HR" / "Nikon_002_LR4.png").unlink()
    (root / "test_LR" / "extra.png").write_bytes(png(128, 0))
    with pytest.raises(DatasetError) as e:
        T.RealSRDataset()
    msg = str(e.value)
    assert "missing file" in msg and "test_HR/Nikon_002_LR4.png" in msg
    assert "unexpected file" in msg and "extra.png" in msg and "data fetch realsr" in msg
    assert T.status(T.SETS["realsr"]).startswith("MODIFIED") and T.cli(["verify", "realsr"]) == 1


def test_given_root_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="StableSR-TestSets.*dataset.root="):
        T.RealSRDataset(str(tmp_path / "none"))


@requires(REALSR)
def test_shared_realsr_pairs_pass_the_layout_and_size_checks():
    errors, warnings = T.check_set(T.SETS["realsr"], REALSR, strict=True)
    assert errors == [] and warnings and "holds 20 pairs" in warnings[0]  # the published set has 100
    assert len(T.RealSRDataset(str(REALSR)).samples()) == 20


def test_copy_unpacked_by_hand_into_the_cache_is_used_offline(monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SRBENCH_REALSR", raising=False)
    root = T.SETS["realsr"].default_root()
    for d, side in (("test_LR", 128), ("test_HR", 512)):
        (root / d).mkdir(parents=True)
        (root / d / "a.png").write_bytes(png(side, 7))
    with caplog.at_level("WARNING", logger="srbench"):
        ds = T.RealSRDataset()
    assert [s.id for s in ds.samples()] == ["a"] and "was not fetched by srbench" in caplog.text
    assert T.status(T.SETS["realsr"]) == "present (not verified by srbench)"
