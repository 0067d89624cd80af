"""srbench entry point: ``python run_bench.py method=<m> dataset=<d> [runs=10 seed=0 ...]``."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchmark.config  # noqa: E402,F401  (registers the typed schema)


@hydra.main(version_base="1.3", config_path="conf", config_name="bench")
def main(cfg: DictConfig) -> None:
    from benchmark.runner import ExcludedValues, run

    try:
        run(cfg)
    except ExcludedValues as err:  # strict=true: results are written; exit 1 with the reason, no traceback
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    try:
        benchmark.config.check_group_choices(sys.argv[1:], Path(__file__).resolve().parent / "conf")
        benchmark.config.check_override_keys(sys.argv[1:])
    except ValueError as err:
        sys.exit(f"error: {err}")
    main()
