"""What the benchmark scripts share: where the shared data lives, the RealSR-subset options and
their check, and how a machine is described in the figures they print."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def add_realsr_options(ap: argparse.ArgumentParser, images: int = 20, runs: int = 10) -> None:
    """``--data`` (a folder with ``test_LR/`` and ``test_HR/``), ``--niqe-params``, ``--images``, ``--runs``."""
    ap.add_argument("--data", type=Path, default=SHARED / "realsr_subset", help="folder with test_LR/ and test_HR/")
    ap.add_argument("--niqe-params", type=Path, default=SHARED / "niqe_pris_params.npz")
    ap.add_argument("--images", type=int, default=images)
    ap.add_argument("--runs", type=int, default=runs)


def realsr_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options of :func:`add_realsr_options` (a missing folder or file, too
    few runs for G-STD/L-STD), or None."""
    for p in (args.data / "test_LR", args.data / "test_HR", args.niqe_params):
        if not p.exists():
            return f"{p} is missing (RealSR subset and NIQE params are expected in ../shared/data)"
    if args.runs < 2 or args.images < 1:
        return "--runs must be >= 2 (G-STD/L-STD) and --images >= 1"
    return None


def cpu_model() -> str:
    """The CPU as /proc/cpuinfo names it (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as uptime prints them."""
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:
        return "unknown"
