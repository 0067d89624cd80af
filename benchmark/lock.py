"""One process per (data set, method) output folder, unless they are distinct shards.

Two processes writing the same folder would overwrite each other's samples and results
(and a second ``overwrite=true`` could delete samples the first is scoring). So a run holds

* ``<folder>/.lock``: exclusively for an unsharded run, shared by the shards of a sharded one,
  so a whole run and a shard never overlap while distinct shards run side by side;
* ``<folder>/.lock.shard-I-of-N``: exclusively, for shard I of N (only when N > 1), so the
  same shard cannot run twice; a shard also refuses while a shard of another count N' runs
  (their images would overlap).

Beside each lock its holder writes ``<lock>.info`` (pid, host, start time, command), which a
refused process quotes. The locks are OS locks (filelock: flock, and SQLite's locks for the
shared/exclusive ``.lock``), so a killed process releases them at once and a stale ``.info``
file never blocks anyone. Locks are released when :func:`holds_output_locks`'s function returns
or raises.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import functools
import json
import os
import socket
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import filelock

from benchmark import write_errors

F = TypeVar("F", bound=Callable[..., Any])

LOCK_NAME = ".lock"


class OutputLockedError(RuntimeError):
    """Another process holds the output folder (or the same shard of it)."""


@dataclass
class OutputLock:
    """The locks one run holds on one output folder."""

    folder: Path
    index: int = 0
    count: int = 1
    _held: list[tuple[Any, Path | None]] = field(default_factory=list)  # (lock, its .info file)

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def folder_lock(self) -> Path:
        return self.folder / LOCK_NAME

    @property
    def shard_lock(self) -> Path:
        return self.folder / f"{LOCK_NAME}.shard-{self.index}-of-{self.count}"

    # ------------------------------------------------------------------ acquire / release

    def acquire(self) -> "OutputLock":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise write_errors.explain(self.folder_lock, err) from err
        try:
            if self.sharded:
                self._take_shard()
                self._take_folder(shared=True)
                self._refuse_other_counts()
            else:
                self._take_folder(shared=False)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        for lock, info in reversed(self._held):
            try:
                if info is not None:
                    info.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only folder: a stale .info is harmless, the OS lock is what counts
            lock.release()
            if isinstance(lock, filelock.ReadWriteLock):
                lock.close()
        self._held.clear()

    def _take_shard(self) -> None:
        lock = filelock.FileLock(self.shard_lock, timeout=0, is_singleton=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise self._refusal(self.shard_lock, [self.shard_lock]) from None
        except OSError as err:
            raise write_errors.explain(self.shard_lock, err) from err
        self._register(lock, self.shard_lock)

    def _take_folder(self, shared: bool, recover: bool = True) -> None:
        path = self.folder_lock
        try:
            lock = filelock.ReadWriteLock(path, timeout=0, blocking=False, is_singleton=False)
            if shared:
                lock.acquire_read(timeout=0, blocking=False)
            else:
                lock.acquire_write(timeout=0, blocking=False)
        except sqlite3.DatabaseError as err:
            if recover and _not_a_database(err):
                _recover_damaged_lock(path, err)
                return self._take_folder(shared, recover=False)
            raise write_errors.explain(path, OSError(_sqlite_errno(err), str(err))) from err
        except filelock.Timeout:
            # a shard (shared) is refused only by a whole run (exclusive, described in .lock.info);
            # a whole run by either: name the running shards if there are any
            holders = [path] if shared else (self._running_shards() or [path])
            raise self._refusal(path, holders) from None
        except (OSError, sqlite3.Error) as err:
            os_err = err if isinstance(err, OSError) else OSError(_sqlite_errno(err), str(err))
            raise write_errors.explain(path, os_err) from err
        # only a whole run describes itself in .lock.info; shards describe themselves in their shard lock's
        self._register(lock, path if not shared else None)

    def _refuse_other_counts(self) -> None:
        others = [p for p in self._held_shard_locks() if not p.name.endswith(f"-of-{self.count}")]
        if others:
            raise self._refusal(others[0], others)

    def _running_shards(self) -> list[Path]:
        """Shard locks whose ``.info`` names a live process (a killed holder's .info stays behind).

        Read from the .info files rather than by trying the locks, so that describing a refusal
        never takes, even briefly, a lock that a starting shard is about to take.
        """
        running = []
        for info in sorted(self.folder.glob(f"{LOCK_NAME}.shard-*-of-*.info")):
            try:
                d = json.loads(info.read_text())
            except (OSError, ValueError):
                continue
            if d.get("host") == socket.gethostname() and not _alive(int(d.get("pid", -1))):
                continue
            running.append(info.with_suffix(""))
        return running

    def _held_shard_locks(self) -> list[Path]:
        """Shard lock files of this folder that some process holds now (tried, not guessed)."""
        held = []
        for path in sorted(self.folder.glob(f"{LOCK_NAME}.shard-*-of-*")):
            if path.suffix == ".info" or path == self.shard_lock:
                continue
            probe = filelock.FileLock(path, timeout=0, is_singleton=False)
            try:
                probe.acquire()
            except filelock.Timeout:
                held.append(path)
            except OSError:
                continue
            else:
                probe.release()
        return held

    def _register(self, lock: Any, describe: Path | None) -> None:
        info = Path(f"{describe}.info") if describe is not None else None
        self._held.append((lock, info))
        if info is None:
            return
        data = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv), "shard": f"{self.index} of {self.count}" if self.sharded else None}
        try:
            tmp = info.with_name(info.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=2) + "\n")
            os.replace(tmp, info)
        except OSError as err:
            raise write_errors.explain(info, err) from err

    def _refusal(self, lock: Path, holders: list[Path]) -> OutputLockedError:
        described = [_describe(Path(f"{p}.info")) for p in holders]
        described = [d for d in described if d] or ["another process (it has not described itself yet; "
                                                     "its .info file is missing)"]
        what = f" (this run is shard {self.index} of {self.count})" if self.sharded else ""
        return OutputLockedError(
            f"the output folder {self.folder} is in use{what}: lock {lock} is held by "
            + "; ".join(described)
            + ". Two runs must not write the same (data set, method) folder: wait for the other run to finish "
              "(or stop it), or write elsewhere with output_dir=<dir>, method.name=<other name> or "
              "dataset.name=<other name>. To split one run "
              "over several processes give each a distinct shard.index with the same shard.count."
        )


def _describe(info: Path) -> str | None:
    try:
        d = json.loads(info.read_text())
    except (OSError, ValueError):
        return None
    shard = f", shard {d['shard']}" if d.get("shard") else ""
    return f"pid {d.get('pid')} on host {d.get('host')} since {d.get('started')}{shard} (command: {d.get('command')})"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _not_a_database(err: BaseException) -> bool:
    msg = str(err).lower()
    return "not a database" in msg or "malformed" in msg or "file is encrypted" in msg


def _recover_damaged_lock(path: Path, err: BaseException) -> None:
    """Replace a ``.lock`` that is not a lock database (overwritten, copied half, from another
    tool) by a fresh one, but only when no live process holds a lock on it.

    SQLite's locks are POSIX byte-range locks on the file, so a non-blocking exclusive
    ``lockf`` over the whole file succeeds exactly when no other process holds any of them;
    a live holder named in ``.lock.info`` is never overridden either. Otherwise the run is
    refused naming the file and how to recover it by hand.
    """
    import fcntl
    import logging

    holder = _describe(Path(f"{path}.info"))
    info_pid = _info_pid(Path(f"{path}.info"))
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)
        except OSError:
            busy = True
        else:
            busy = info_pid is not None and info_pid != os.getpid() and _alive(info_pid)
        if busy:
            raise OutputLockedError(
                f"{path} is not a lock database ({err}) and a live process holds it"
                + (f" ({holder})" if holder else "")
                + f": stop that process, then delete {path} and rerun")
        tmp = path.with_name(f"{path.name}.recover.{os.getpid()}.tmp")
        tmp.write_bytes(b"")  # an empty file is a valid, empty SQLite database
        os.replace(tmp, path)
    finally:
        os.close(fd)  # also drops the probe lock
    logging.getLogger("srbench").warning(
        "%s was not a lock database (%s) and no live process held it: replaced it with a fresh lock", path, err)


def _info_pid(info: Path) -> int | None:
    try:
        d = json.loads(info.read_text())
        return int(d["pid"]) if isinstance(d, dict) and d.get("host") == socket.gethostname() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sqlite_errno(err: BaseException) -> int | None:
    msg = str(err).lower()
    if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
        import errno

        return errno.EROFS if "readonly" in msg or "read-only" in msg else errno.EACCES
    return None


# --------------------------------------------------------------------------- scope of a run

_HELD: contextvars.ContextVar[list[OutputLock] | None] = contextvars.ContextVar("srbench_output_locks", default=None)


def holds_output_locks(fn: F) -> F:
    """Decorator: locks taken with :func:`lock_output` inside ``fn`` are released when it returns or raises."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _HELD.set([])
        try:
            return fn(*args, **kwargs)
        finally:
            held = _HELD.get() or []
            _HELD.reset(token)
            for lock in reversed(held):
                lock.release()

    return wrapper  # type: ignore[return-value]


def lock_output(folder: str | os.PathLike, shard: Any = None) -> OutputLock:
    """Lock ``folder`` for this run (see the module doc); raise :class:`OutputLockedError` if it is in use.

    ``shard`` is ``cfg.shard`` (``index``, ``count``) or None. Must be called inside a function
    decorated with :func:`holds_output_locks`, which releases the lock.
    """
    held = _HELD.get()
    if held is None:
        raise RuntimeError("lock_output() must be called inside a function decorated with @holds_output_locks")
    index, count = (int(shard.index), int(shard.count)) if shard is not None else (0, 1)
    lock = OutputLock(Path(folder), index, count).acquire()
    held.append(lock)
    return lock
