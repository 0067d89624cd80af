"""Checks that run before Hydra creates any folder (a Hydra callback, see ``conf/bench.yaml``).

Hydra creates its run folder (``${output_dir}/.hydra/...``) before it calls the task, so a
config error found inside :func:`benchmark.runner.run` would already have left an output
folder behind, and a read-only ``output_dir`` would fail inside Hydra with a bare
``PermissionError``. ``on_run_start`` / ``on_multirun_start`` run earlier: the range checks
of :func:`benchmark.config.validate` and the writability of ``output_dir`` are checked there.
(Unknown keys and wrong types fail even earlier, while Hydra composes the config.)
In a sweep the values being swept are checked by each job's own ``run``.

Hydra turns an exception raised by a callback into a warning and carries on, so a failed
check raises :class:`benchmark.errors.Abort` (a ``BaseException``, which Hydra does not catch);
the entry point prints ``error: <why>`` and exits 2 (see :mod:`benchmark.errors`).
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from benchmark.config import validate
from benchmark.errors import Abort
from benchmark.write_errors import check_writable


class Preflight(Callback):
    """Validate the top-level config and the output folder before any work or folder."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate(config)
            check_writable(config.output_dir)
        except (ValueError, OSError) as err:
            raise Abort(err) from err

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.on_run_start(config)
