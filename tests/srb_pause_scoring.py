"""Run ``run_bench.py`` with a deterministic pause inside scoring, so a test can SIGKILL it there.

``python tests/srb_pause_scoring.py <run_bench args>`` with ``SRB_SCORE_PAUSE_AT=<n>`` and
``SRB_PAUSE_MARKER=<file>``: the n-th call of the PSNR scorer (one call per image, after
generation has finished) writes the marker and waits to be killed. Test-only: production
code has no pause hooks; this wraps the registered PSNR metric before run_bench.py starts.
"""

from __future__ import annotations

import dataclasses
import os
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from benchmark.metrics import METRICS  # noqa: E402
from srb_helpers import pause_here  # noqa: E402

_spec = METRICS.get("psnr")


def _pausing_factory(options, device):
    scorer = _spec.factory(options, device)
    calls = [0]

    def score(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(os.environ["SRB_SCORE_PAUSE_AT"]):
            pause_here(f"psnr call {calls[0]}")
        return scorer(*args, **kwargs)

    return score


METRICS._items["psnr"] = dataclasses.replace(_spec, factory=_pausing_factory)
sys.argv = [str(ROOT / "run_bench.py"), *sys.argv[1:]]
runpy.run_path(str(ROOT / "run_bench.py"), run_name="__main__")
