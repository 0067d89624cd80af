"""srbench entry point: ``python run_bench.py method=<m> dataset=<d> [runs=10 seed=0 ...]``.

The command itself lives in :mod:`benchmark.app` (user errors print ``error: ...`` and exit 2,
``--debug`` shows tracebacks); this file only makes a checkout runnable without installing it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
