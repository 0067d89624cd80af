"""Clear errors for failed writes into the output folder.

A failed write (read-only folder, full disk, quota) surfaces deep inside ``tempfile`` or
PIL with a temporary file name and no hint. Every write of srbench goes through
:func:`benchmark.store.atomic_write_bytes` or :func:`benchmark.images.write_png_atomic`;
both turn an ``OSError`` into an :class:`OutputWriteError` that names the file that was
being written, says what to do, and reminds that finished work is kept (writes are atomic,
so nothing half-written is ever taken for a finished file, and a rerun resumes).
"""

from __future__ import annotations

import errno
import shutil
import os
from pathlib import Path
from typing import Any

_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
_FULL = {errno.ENOSPC, errno.EDQUOT}


class OutputWriteError(OSError):
    """Writing into the output folder failed. ``errno`` is the original one."""


def _fix(folder: Path, code: int | None) -> str:
    if code in _NOT_WRITABLE:
        return (f"the folder {folder} is not writable: make it writable (chmod u+w, or remount it read-write), "
                f"or write elsewhere with output_dir=<dir>")
    if code in _FULL:
        return (f"the disk holding {folder} is full (or over quota): free space on it, or write to another disk "
                f"with output_dir=<dir>")
    return f"check the folder {folder} and the disk holding it, or write elsewhere with output_dir=<dir>"


def explain(path: str | os.PathLike, err: OSError) -> OutputWriteError:
    """An :class:`OutputWriteError` for a failed write of ``path`` (the final name, not a temporary one)."""
    if isinstance(err, OutputWriteError):
        return err
    path = Path(path)
    reason = err.strerror or str(err)
    return OutputWriteError(
        err.errno,
        f"cannot write {path}: {reason}. Fix: {_fix(path.parent, err.errno)}. Files finished before this one are "
        f"kept (writes are atomic); rerun the same command afterwards and it continues where it stopped.",
    )


def nearest_existing(folder: Path) -> Path:
    """``folder`` or its closest existing ancestor (where a new folder would be created)."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(folder: str | os.PathLike) -> None:
    """Raise :class:`OutputWriteError` when ``folder`` could not be created or written into.

    Uses ``os.access``, which reports read-only file systems (EROFS) even to root, and
    creates nothing, so a failed check leaves no folder behind.
    """
    folder = Path(folder)
    base = nearest_existing(folder)
    if not base.is_dir():
        raise OutputWriteError(errno.ENOTDIR, f"output_dir={folder}: {base} exists and is not a folder; "
                                              f"choose another output_dir=<dir>")
    if not os.access(base, os.W_OK | os.X_OK):
        code = errno.EROFS if _read_only_fs(base) else errno.EACCES
        raise OutputWriteError(code, f"output_dir={folder} cannot be written: {base} is "
                                     f"{'on a read-only file system' if code == errno.EROFS else 'not writable'}. "
                                     f"Fix: {_fix(base, code)}.")
    usage = _disk_usage(base)
    if usage is not None and usage.total == 0:  # procfs, sysfs: no storage at all, not a full disk
        raise OutputWriteError(errno.EACCES, f"output_dir={folder} cannot be written: {base} is on a virtual file "
                                             f"system with no storage (such as /proc or /sys). Fix: choose a folder "
                                             f"on a disk with output_dir=<dir>.")
    free = usage.free if usage is not None else None
    if free is not None and free < MIN_FREE_BYTES:
        raise OutputWriteError(errno.ENOSPC, f"output_dir={folder} cannot be written: the disk holding {base} has "
                                             f"{free} bytes free (srbench needs at least {MIN_FREE_BYTES} to start). "
                                             f"Fix: {_fix(base, errno.ENOSPC)}.")


MIN_FREE_BYTES = 1 << 20  # below this even Hydra's config files and the manifest may not fit


def _disk_usage(path: Path) -> Any:
    """``shutil.disk_usage(path)`` (total, used, free in bytes), or None where the OS cannot tell."""
    try:
        return shutil.disk_usage(path)
    except OSError:
        return None


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # statvfs is POSIX only
        return False
