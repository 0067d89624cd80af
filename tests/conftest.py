"""Shared fixtures: tiny synthetic data sets, Hydra composition, paths to ../shared."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REALSR = SHARED / "data" / "realsr_subset"
NIQE_NPZ = SHARED / "data" / "niqe_pris_params.npz"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the demo set and converted files out of the user's home during tests."""
    cache = tmp_path_factory.getbasetemp() / "srbench_cache"
    monkeypatch.setenv("SRBENCH_CACHE", str(cache))


@pytest.fixture(autouse=True)
def _torch_home_restored():
    """``weights_dir=`` sets TORCH_HOME for the whole process (benchmark.weights.apply_weights_dir:
    what a run needs); an in-process run in one test must not move later tests' weight lookups."""
    saved = os.environ.get("TORCH_HOME")
    yield
    if saved is None:
        os.environ.pop("TORCH_HOME", None)
    else:
        os.environ["TORCH_HOME"] = saved


@pytest.fixture(autouse=True)
def _sigint_restored():
    """Python's SIGINT handler in the test process before and after every test.

    A signal ignored in a process stays ignored in the programs it starts (POSIX ``exec``), and a
    Python program whose SIGINT is ignored at start-up never installs its KeyboardInterrupt
    handler: a test that sends SIGINT to srbench would then wait for a run that cannot be
    interrupted. pytest starts with SIGINT ignored when a shell without job control runs it in the
    background (``pytest ... &`` in a script: POSIX sh, "Asynchronous Lists"), and a library may set
    it to ignored during a test; both are undone here, so srbench starts with SIGINT at its default.
    """
    import signal

    def restore():
        if signal.getsignal(signal.SIGINT) != signal.default_int_handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    restore()
    yield
    restore()


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def make_pairs(root: Path, ids: Iterable[str], lr_size: tuple[int, int] = (16, 16), scale: int = 4,
               seed: int = 0, hr: bool = True) -> tuple[Path, Path]:
    """Random smooth LR/HR pairs (HR = scale x LR) under root/LR and root/HR."""
    rng = np.random.default_rng(seed)
    for i in ids:
        h, w = lr_size
        hr_img = (rng.random((h * scale, w * scale, 3)) * 200 + 28).astype(np.uint8)
        lr_img = np.asarray(Image.fromarray(hr_img).resize((w, h), Image.Resampling.BICUBIC))
        write_png(root / "LR" / f"{i}.png", lr_img)
        if hr:
            write_png(root / "HR" / f"{i}.png", hr_img)
    return root / "LR", root / "HR"


def compose(overrides: list[str]):
    """Compose conf/bench.yaml with overrides, as run_bench.py does (from $SRBENCH_CONF when set)."""
    from hydra import compose as _compose

    import benchmark.config  # noqa: F401  (registers the schema)
    from benchmark import searchpath

    with searchpath.initialize():  # srbench's search path, as the app's
        return _compose(config_name="bench", overrides=overrides)


def folder_dir(out: Path, lr: Path, hr: Path | None = None) -> Path:
    """``<out>/<name>``: where the results of a ``dataset=folder`` run on ``lr`` (and ``hr``) go without
    ``dataset.name`` (the name :func:`benchmark.data.folder_name` derives; its own test checks it by hand)."""
    from benchmark.data import folder_name

    return Path(out) / folder_name(lr, hr)


def run_bench(overrides: list[str]):
    from benchmark.runner import run

    return run(compose(overrides))


@pytest.fixture
def pairs(tmp_path):
    lr, hr = make_pairs(tmp_path / "data", ["img_a", "img_b", "img_c"])
    return lr, hr


CALIBRA_IDS = ["I03", "I04", "I06", "I08", "I19"]


def calibra() -> Path:
    """pyiqa's installed ResultsCalibra folder (five TID2013 pairs: dist_dir/, ref_dir/)."""
    import pyiqa

    return Path(pyiqa.__file__).resolve().parent.parent / "ResultsCalibra"


def pair(i: str):
    """(distorted, reference) of calibration image ``i`` as [1, 3, H, W] tensors in [0, 1]."""
    from benchmark.images import read_image, to_tensor

    d = calibra()
    return (to_tensor(read_image(d / "dist_dir" / f"{i}.bmp")).unsqueeze(0),
            to_tensor(read_image(d / "ref_dir" / f"{i}.bmp")).unsqueeze(0))


def skip_missing_weights(files: Iterable[Path], fetch: str) -> None:
    """Skip a test whose real weight files are absent, naming each file and the command that fetches it.

    With ``SRBENCH_REQUIRE_WEIGHTS=1`` (set on machines that ran ``python -m benchmark weights
    metrics=paper --download``) a missing file FAILS the test instead, so calibration tests cannot
    silently skip where they are meant to run.
    """
    missing = [str(f) for f in files if not Path(f).is_file()]
    if not missing:
        return
    msg = f"needs {', '.join(missing)} (fetch with: {fetch})"
    if os.environ.get("SRBENCH_REQUIRE_WEIGHTS", "") not in ("", "0"):
        pytest.fail("SRBENCH_REQUIRE_WEIGHTS=1 but a weight file is missing: " + msg)
    pytest.skip(msg)


def requires(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"needs {path} (../shared beside the checkout)")


os.environ.setdefault("HYDRA_FULL_ERROR", "1")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless Chromium the HTML report tests drive, or a skip that says how to install one."""
    from browser import find_chromium

    exe = find_chromium()
    if exe is None:
        pytest.skip("chromium not found on PATH (install Debian's chromium: apt-get install chromium; "
                    ".ci/run tries this; or set SRBENCH_CHROMIUM)")
    return exe
