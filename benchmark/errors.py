"""User errors and how the entry points report them.

A *user error* is something the person running srbench can fix: a missing data set or
weight file, a typo in a key, a mis-sized image, a locked output folder. It is reported as
one ``error: <message>`` block on stderr and exit status 2, with no traceback, at every
stage (before Hydra starts, while it composes the config, and inside the run). Anything
else is a bug and keeps its traceback. ``--debug`` on the command line (or
``HYDRA_FULL_ERROR=1``, Hydra's own switch) shows the traceback of user errors too.

Raise :class:`UserError` (a ``ValueError``, so ``except ValueError`` and
``pytest.raises(ValueError)`` keep working) or :class:`MissingFilesError` (also a
``FileNotFoundError``) with a message that names what was expected, what was found and how
to fix it. The project's older user errors (``ValueError``/``FileNotFoundError`` raised by
srbench's own code, :class:`~benchmark.lock.OutputLockedError`,
:class:`~benchmark.write_errors.OutputWriteError`, Hydra/OmegaConf config errors) are
recognised as user errors too, see :func:`is_user_error`.

Ctrl-C prints one line saying what was stored and that the same command resumes
(:func:`note_output` tells it which folder the run writes to).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from benchmark.lock import OutputLockedError
from benchmark.write_errors import OutputWriteError

EXIT_USER_ERROR = 2  # argparse's convention for usage errors; 1 stays "the gate failed"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # holds benchmark/ and methods/
_OUR_PACKAGES = tuple(str(_PACKAGE_ROOT / p) + os.sep for p in ("benchmark", "methods"))


class UserError(ValueError):
    """An error the user fixes (config, files, data); printed without a traceback.

    The message says what was expected, what was found and how to fix it.
    """


class MissingFilesError(UserError, FileNotFoundError):
    """Files a run needs are absent (data set, weights); the message lists each with its fix."""

    def __str__(self) -> str:  # OSError's str() would prefix "[Errno ...]" when given several args
        return str(self.args[0]) if self.args else ""


class Abort(BaseException):
    """Carries a user error through code that swallows ``Exception`` (Hydra's callbacks turn
    those into warnings); :func:`guarded` reports ``error`` and exits 2."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


# ----------------------------------------------------------------------------- classification


def _raised_in_our_code(exc: BaseException) -> bool:
    """True when the innermost frame of ``exc``'s traceback lies in benchmark/ or methods/.

    A ValueError raised by srbench itself is a user error by the project's rule (house style 6);
    one raised deep inside numpy or torch is far more likely a bug and keeps its traceback.
    """
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return True  # raised and never propagated (e.g. built by hand): trust the type
    return os.path.abspath(last.tb_frame.f_code.co_filename).startswith(_OUR_PACKAGES)


def _config_error_types() -> tuple[type, ...]:
    """Hydra and OmegaConf exceptions that mean "the command line or a YAML file is wrong"."""
    types: list[type] = []
    try:
        from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

        types += [ConfigCompositionException, MissingConfigException, OverrideParseException]
    except ImportError:  # pragma: no cover - hydra is a dependency
        pass
    try:
        from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError

        types += [ConfigKeyError, MissingMandatoryValue, ValidationError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is reported as ``error: ...`` (exit 2) rather than as a bug with a traceback."""
    if isinstance(exc, UserError):
        return True
    if isinstance(exc, (OutputLockedError, OutputWriteError) + _config_error_types()):
        return True
    if isinstance(exc, (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)):
        return _raised_in_our_code(exc)
    return False


def message(exc: BaseException) -> str:
    """The text after ``error: ``: the exception's message, and its cause's for config errors."""
    text = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and type(exc).__module__.startswith("hydra") and str(cause).strip():
        if str(cause).strip() not in text:
            text += "\n" + str(cause).strip()
    return text


# ----------------------------------------------------------------------------- Ctrl-C


_OUTPUT: dict[str, Path] = {}


def note_output(folder: Path | str | None) -> None:
    """Record the folder the current run stores samples in (for the Ctrl-C message); None clears it."""
    if folder is None:
        _OUTPUT.pop("folder", None)
    else:
        _OUTPUT["folder"] = Path(folder)


def interrupted_message() -> str:
    """One line: what the interrupted run left on disk and that rerunning resumes it."""
    folder = _OUTPUT.get("folder")
    if folder is None:
        return "interrupted before any sample was stored; nothing to resume"
    n = sum(1 for _ in (folder / "samples").glob("sample*/*.png")) if (folder / "samples").is_dir() else 0
    return (f"interrupted: {n} sample(s) are stored in {folder}; run the same command again to resume "
            f"(finished image-runs are kept, scores are computed at the end)")


# ----------------------------------------------------------------------------- entry points


def debug_requested(argv: Sequence[str]) -> bool:
    """``--debug`` on the command line or ``HYDRA_FULL_ERROR=1`` in the environment."""
    return "--debug" in argv or os.environ.get("HYDRA_FULL_ERROR", "").strip() not in ("", "0")


def guarded(fn: Callable[[], int | None], debug: bool) -> int:
    """Run an entry point: user errors print ``error: ...`` and return 2, Ctrl-C prints one line
    and returns 130; with ``debug`` every exception keeps its traceback (the caller re-raises).

    Bugs (anything :func:`is_user_error` rejects) are re-raised unchanged.
    """
    try:
        rc = fn()
        return 0 if rc is None else int(rc)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\n{interrupted_message()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except Abort as abort:
        if debug:
            raise abort.error from abort
        print(f"error: {message(abort.error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BaseException as exc:  # noqa: BLE001  (classified below; bugs are re-raised)
        if debug or not is_user_error(exc):
            raise
        print(f"error: {message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
