"""The benchmark command (``python run_bench.py ...``, or ``srbench ...`` once installed with
``pip install .``): checks before Hydra, then the Hydra app.

Every error a user can fix is printed as ``error: <message>`` with exit status 2 and no
traceback, wherever it is found: in the command line (unknown names and keys, checked here
before Hydra composes anything), while Hydra composes the config, in the preflight callback,
or inside the run (a locked folder, stale samples, a mis-sized output). Ctrl-C prints one line
saying what was stored and that the same command resumes. ``--debug`` (or
``HYDRA_FULL_ERROR=1``) shows the traceback instead. See :mod:`benchmark.errors`.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from omegaconf import DictConfig


def task(cfg: DictConfig) -> None:
    """The Hydra task: one (method, data set) run.

    A user error of a single run goes to the entry point as :class:`benchmark.errors.Abort`. In a
    sweep it is printed with the job's overrides as it happens and raised as usual, so the
    launcher carries on with the other jobs and re-raises the first failure at the end.
    """
    from benchmark import errors
    from benchmark.runner import run

    errors.note_output(None)  # set by run once it holds its output folder
    try:
        run(cfg)
    except Exception as exc:
        if not errors.is_user_error(exc):
            raise
        if not _in_sweep():
            raise errors.Abort(exc) from exc  # straight to the entry point, past Hydra's job-failure printing
        from hydra.core.hydra_config import HydraConfig

        print(f"error in job {' '.join(HydraConfig.get().overrides.task)}: {errors.message(exc)}", file=sys.stderr)
        raise


def _in_sweep() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # noqa: BLE001
        return False


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the benchmark command with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    0 success, 2 user error (the message says what to fix), 130 interrupted by Ctrl-C.
    """
    import hydra

    import benchmark.config as config
    from benchmark import errors, searchpath

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = errors.debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]

    def go() -> None:
        # Hydra's primary search-path entry: the checkout's conf/, or pkg://srbench_conf of `pip install .`
        conf = searchpath.primary()
        config.check_group_choices(argv, conf)
        config.check_override_keys(argv)
        config.check_override_values(argv)
        config.check_nested_keys(argv, conf)
        # Hydra prints a (shortened) traceback for every exception and exits 1 unless this is set;
        # with it set, exceptions reach errors.guarded, which reports user errors in one line.
        os.environ["HYDRA_FULL_ERROR"] = "1"
        sys.argv = [prog or sys.argv[0]] + argv  # hydra.main reads the command line from sys.argv
        hydra.main(version_base="1.3", config_path=conf, config_name="bench")(task)()

    return errors.guarded(go, debug)
