"""The benchmark as a command: ``srbench [override ...]`` (installed) or ``python run_bench.py``.

Both are the same Hydra application: config ``bench`` from :func:`benchmark.config.conf_dir`
(the checkout's ``conf/``, or the ``srbench_conf`` package that ``pip install .`` installs), the
same overrides, ``-m`` sweeps and launchers. Unknown config names and top-level keys are
refused before Hydra starts, listing what exists.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from benchmark.config import check_group_choices, check_override_keys, conf_dir
from benchmark.runner import run


def srbench(cfg: DictConfig) -> None:
    """The Hydra task: one (method, data set) run (one job of a ``-m`` sweep)."""
    run(cfg)


def main() -> None:
    """Entry point of ``srbench`` and ``run_bench.py``: check the command line, then run Hydra."""
    argv = sys.argv[1:]
    try:
        check_group_choices(argv, conf_dir())
        check_override_keys(argv)
    except ValueError as err:
        sys.exit(f"error: {err}")
    hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="bench")(srbench)()


if __name__ == "__main__":
    main()
