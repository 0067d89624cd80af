"""Run ``run_bench.py`` with a deterministic pause inside the background PNG writer, so a test can
SIGKILL it while samples wait in the writer's queue.

``python tests/srb_pause_writer.py <run_bench args>`` with ``SRB_WRITE_PAUSE_AT=<n>`` and
``SRB_PAUSE_MARKER=<file>``: the n-th PNG write of the sink (in the writer thread of a pipelined
run) writes the marker and waits to be killed, before writing anything of that sample; the method
goes on until the writer's queue is full. Test-only: production code has no pause hooks; this
wraps the sink's writer function before run_bench.py starts.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from benchmark import sink  # noqa: E402
from srb_helpers import pause_here  # noqa: E402

_real = sink.write_png_atomic
_calls = [0]


def _pausing_write(path, arr):
    _calls[0] += 1
    if _calls[0] == int(os.environ["SRB_WRITE_PAUSE_AT"]):
        pause_here(f"PNG write {_calls[0]} ({path})")
    _real(path, arr)


sink.write_png_atomic = _pausing_write
sys.argv = [str(ROOT / "run_bench.py"), *sys.argv[1:]]
runpy.run_path(str(ROOT / "run_bench.py"), run_name="__main__")
