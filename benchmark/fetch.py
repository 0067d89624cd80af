"""Downloads shared by data sets and method weights: cache, resume, checksum, offline detection,
progress, atomic unpack.

A :class:`Source` says where one file comes from (a file in a Hugging Face repository, a plain
URL, or a Google Drive id) and what it must be (SHA-256, size). :func:`fetch` makes the file
present in the cache (or at ``dest``) and verified, and returns its path::

    src = Source("StableSR_testsets.zip", hf_repo="Iceclear/StableSR-TestSets", hf_repo_type="dataset",
                 hf_revision="a4a8b2a3594da51ea05b391d7698409747586b9b", sha256="32a6...", size=3055396861)
    path = fetch(src)                     # <cache>/downloads/<sha256[:16]>/StableSR_testsets.zip
    root = unpack(path, dest, members=...)  # atomic: dest appears complete, with a verified marker, or not at all

Behaviour (each one tested in ``tests/test_fetch.py`` against a local HTTP server):

* **Cache.** ``$SRBENCH_CACHE`` (default ``~/.cache/srbench``); downloads go to
  ``<cache>/downloads/<key>/<filename>`` where ``key`` is the first 16 hex digits of the
  expected SHA-256 (or of the source's location when no hash is known). A present file whose
  size and hash match is never downloaded again.
* **Resume.** Bytes arrive in ``<file>.part``; a download that is interrupted (even by SIGKILL)
  continues from the bytes already there with an HTTP ``Range`` request. huggingface_hub's own
  ``hf_hub_download`` is not used for the transfer because, since huggingface_hub 1.x, it writes
  to a per-process temporary file that a killed process leaves behind unused (no resume across
  processes); srbench uses huggingface_hub for what the Hub defines: the file URL
  (``hf_hub_url``, honouring ``HF_ENDPOINT`` at call time), the auth and user-agent headers
  (``build_hf_headers``), and ``HF_HUB_OFFLINE``. pooch was not used for plain URLs for the same
  reason (it restarts an interrupted download from zero).
* **Checksum.** Size and SHA-256 are checked after every download and before a cached file is
  used; a mismatch deletes the bad file and raises :class:`ChecksumError` naming the file, the
  expected and the found values.
* **Offline.** ``HF_HUB_OFFLINE=1`` or ``SRBENCH_OFFLINE=1`` means offline without probing;
  otherwise :func:`offline_reason` tries a TCP connection to each host.
* **Progress.** A tqdm bar on a terminal (stderr is a TTY); otherwise one line when a download
  starts and one when it ends (logs stay readable).
* **Atomic unpack.** :func:`unpack` extracts into a hidden sibling folder, runs a check, writes
  the verified marker (:data:`MARKER`), and only then renames the folder into place: a killed
  unpack leaves only a hidden ``.<name>.partial-*`` folder, never a half set under the real name.

Google Drive sources go through gdown (``resume=True``), kept thin: the same ``.part`` file,
size and SHA-256 checks apply.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import time
import uuid
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlparse

log = logging.getLogger("srbench")

OFFLINE_ENV = ("HF_HUB_OFFLINE", "SRBENCH_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}
MARKER = ".srbench_verified.json"  # written last into an unpacked folder: its presence means "complete and checked"
CHUNK = 1 << 20
NET_CHUNK = 1 << 16  # written to the .part file as it arrives, so a kill loses at most this much


class FetchError(RuntimeError):
    """A download failed (network error, HTTP error); the message names the source and the file."""


class ChecksumError(ValueError):
    """A file's size or SHA-256 differs from what its :class:`Source` declares."""


from benchmark.errors import MissingFilesError  # noqa: E402  (the project's user error for absent files)
from benchmark.store import atomic_write_json  # noqa: E402


class OfflineError(MissingFilesError):
    """A file is missing and cannot be downloaded now (offline); the message says how to get it.
    A ``FileNotFoundError`` (through MissingFilesError), reported as a user error."""


@dataclass(frozen=True)
class Source:
    """Where one file comes from and what it must be.

    Exactly one of ``hf_repo``, ``url`` and ``gdrive_id`` is set.

    Attributes:
        filename: name of the file on disk (the cache keeps it under this name).
        sha256: expected SHA-256 (64 hex digits) of the file's bytes; None skips the hash check
            (then the source should be treated as unverified and say so where it is listed).
        size: expected size in bytes, checked before hashing (cheap) when given.
        hf_repo: Hugging Face repository id, e.g. ``"Iceclear/StableSR-TestSets"``.
        hf_path: path of the file inside the repository (default: ``filename``).
        hf_revision: branch, tag or (best, immutable) commit hash.
        hf_repo_type: ``"model"``, ``"dataset"`` or ``"space"``.
        url: a plain http(s) URL.
        gdrive_id: a Google Drive file id (downloaded with gdown).
        mirror: True when the location is a third-party copy of the authors' file (listings say so).
        license: the licence under which the file is published (shown to the user).
        note: free text for listings (e.g. where the hash comes from).
    """

    filename: str
    sha256: str | None = None
    size: int | None = None
    hf_repo: str | None = None
    hf_path: str | None = None
    hf_revision: str = "main"
    hf_repo_type: str = "model"
    url: str | None = None
    gdrive_id: str | None = None
    mirror: bool = False
    license: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        given = [k for k in ("hf_repo", "url", "gdrive_id") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"Source {self.filename!r} needs exactly one of hf_repo, url, gdrive_id; got {given or 'none'}")
        if self.sha256 is not None and (len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)):
            raise ValueError(f"Source {self.filename!r}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        if "/" in self.filename or self.filename in ("", ".", ".."):
            raise ValueError(f"Source filename must be a plain file name, got {self.filename!r}")

    @property
    def kind(self) -> str:
        """``"hf"``, ``"url"`` or ``"gdrive"``."""
        return "hf" if self.hf_repo else "url" if self.url else "gdrive"

    @property
    def location(self) -> str:
        """The URL the file is downloaded from (for the Hub: resolved against ``HF_ENDPOINT`` now)."""
        if self.kind == "hf":
            from huggingface_hub import hf_hub_url

            return hf_hub_url(self.hf_repo, self.hf_path or self.filename, repo_type=self.hf_repo_type,
                              revision=self.hf_revision, endpoint=_hf_endpoint())
        if self.kind == "url":
            return str(self.url)
        return f"https://drive.google.com/uc?id={self.gdrive_id}"

    @property
    def key(self) -> str:
        """Cache sub-folder: the hash prefix when known (content-addressed), else a hash of the location."""
        if self.sha256:
            return self.sha256[:16]
        ident = f"{self.hf_repo}@{self.hf_revision}:{self.hf_path or self.filename}" if self.kind == "hf" else (
            self.url or f"gdrive:{self.gdrive_id}")
        return "u" + hashlib.sha256(ident.encode()).hexdigest()[:15]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- locations


def cache_dir() -> Path:
    """srbench's cache root: ``$SRBENCH_CACHE`` or ``~/.cache/srbench`` (read at call time)."""
    return Path(os.environ.get("SRBENCH_CACHE") or Path.home() / ".cache" / "srbench").expanduser()


def default_path(source: Source) -> Path:
    """Where :func:`fetch` keeps ``source`` when no ``dest`` is given."""
    return cache_dir() / "downloads" / source.key / source.filename


def _hf_endpoint() -> str:
    # huggingface_hub reads HF_ENDPOINT once at import; srbench reads it at call time so a test
    # (or a user who exports it late) can point the Hub at a mirror.
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


# ----------------------------------------------------------------------------- network


def offline_reason(sources: Iterable[Source | str] = (), timeout: float = 3.0) -> str | None:
    """Why nothing can be downloaded now, or None when every host answers.

    ``HF_HUB_OFFLINE`` / ``SRBENCH_OFFLINE`` set to 1/true/yes/on means offline without probing.
    Otherwise a TCP connection is tried to the host (and port) of each source's location
    (``Source`` or URL string); with no sources the Hub endpoint is probed.
    """
    for var in OFFLINE_ENV:
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}={os.environ[var]} is set"
    urls = [s.location if isinstance(s, Source) else s for s in sources] or [_hf_endpoint()]
    seen: set[tuple[str, int]] = set()
    for u in urls:
        p = urlparse(u)
        if not p.hostname:
            continue
        addr = (p.hostname, p.port or (80 if p.scheme == "http" else 443))
        if addr in seen:
            continue
        seen.add(addr)
        try:
            socket.create_connection(addr, timeout=timeout).close()
        except OSError as err:
            return f"{addr[0]}:{addr[1]} is not reachable ({err})"
    return None


def is_online(sources: Iterable[Source | str] = (), timeout: float = 3.0) -> bool:
    """True when :func:`offline_reason` finds no reason to be offline."""
    return offline_reason(sources, timeout) is None


# ----------------------------------------------------------------------------- checks


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, source: Source) -> None:
    """Raise :class:`ChecksumError` when ``path``'s size or SHA-256 differs from ``source``'s."""
    size = path.stat().st_size
    if source.size is not None and size != source.size:
        raise ChecksumError(f"{path}: size {size} bytes, expected {source.size} bytes for {source.filename} "
                            f"from {source.location}")
    if source.sha256 is not None:
        found = sha256_file(path)
        if found != source.sha256:
            raise ChecksumError(f"{path}: SHA-256 {found}, expected {source.sha256} for {source.filename} "
                                f"from {source.location}")


def is_present(source: Source, dest: Path | None = None, check_hash: bool = False) -> bool:
    """True when the file is at ``dest`` (default: its cache path) with the right size (and hash)."""
    path = Path(dest) if dest is not None else default_path(source)
    if not path.is_file():
        return False
    if source.size is not None and path.stat().st_size != source.size:
        return False
    if check_hash and source.sha256 is not None:
        return sha256_file(path) == source.sha256
    return True


# ----------------------------------------------------------------------------- progress


class _Progress:
    """tqdm on a terminal; one line at the start and one at the end otherwise."""

    def __init__(self, name: str, total: int | None, done: int, enabled: bool | None) -> None:
        self.name, self.total, self.start_bytes, self.t0 = name, total, done, time.monotonic()
        self.done = done
        tty = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        if tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=name, file=sys.stderr, leave=True)
        else:
            resumed = f", resuming at {_human(done)}" if done else ""
            print(f"downloading {name} ({_human(total)}{resumed})", file=sys.stderr, flush=True)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def close(self, ok: bool) -> None:
        if self.bar is not None:
            self.bar.close()
        elif ok:
            dt = max(time.monotonic() - self.t0, 1e-6)
            print(f"downloaded {self.name}: {_human(self.done)} in {dt:.1f} s "
                  f"({_human(int((self.done - self.start_bytes) / dt))}/s)", file=sys.stderr, flush=True)


def _human(n: int | None) -> str:
    if n is None:
        return "size unknown"
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if x < 1024 or unit == "TiB":
            return f"{int(x)} B" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"


# ----------------------------------------------------------------------------- download


def _http_download(url: str, part: Path, headers: dict[str, str], name: str, expected: int | None,
                   progress: bool | None, timeout: float) -> None:
    """Append the bytes of ``url`` missing from ``part`` (HTTP Range), until the server ends."""
    import requests

    done = part.stat().st_size if part.exists() else 0
    if expected is not None and done == expected:
        return
    if expected is not None and done > expected:  # a larger part file cannot be a prefix of the file
        part.unlink()
        done = 0
    h = dict(headers)
    if done:
        h["Range"] = f"bytes={done}-"
    try:
        with requests.get(url, headers=h, stream=True, timeout=timeout, allow_redirects=True) as r:
            if r.status_code == 416 and done:  # nothing left to send: the part file is whole (checked later)
                return
            if r.status_code == 200 and done:  # the server ignored Range: start again from zero
                done = 0
                part.unlink()
            if r.status_code not in (200, 206):
                raise FetchError(f"download of {name} from {url} failed: HTTP {r.status_code} {r.reason}")
            total = expected
            if total is None:
                length = r.headers.get("Content-Length")
                total = done + int(length) if length and length.isdigit() else None
            bar = _Progress(name, total, done, progress)
            ok = False
            try:
                with open(part, "ab") as f:
                    for chunk in r.iter_content(NET_CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
                    f.flush()
                    os.fsync(f.fileno())
                ok = True
            finally:
                bar.close(ok)
    except requests.RequestException as err:
        raise FetchError(f"download of {name} from {url} failed ({type(err).__name__}: {err}); "
                         f"{_human(part.stat().st_size if part.exists() else 0)} kept in {part}, "
                         "the next attempt resumes from there") from err


def _gdrive_download(source: Source, part: Path, progress: bool | None) -> None:
    try:
        import gdown
    except ImportError as err:
        raise FetchError(f"{source.filename} is on Google Drive (id {source.gdrive_id}); install gdown "
                         "(`pip install gdown`) to download it") from err
    quiet = not (sys.stderr.isatty() if progress is None else progress)
    if quiet:
        print(f"downloading {source.filename} from Google Drive id {source.gdrive_id} ({_human(source.size)})",
              file=sys.stderr, flush=True)
    out = gdown.download(id=source.gdrive_id, output=str(part), quiet=quiet, resume=True)
    if out is None:
        raise FetchError(f"download of {source.filename} from Google Drive id {source.gdrive_id} failed "
                         "(gdown returned nothing: the file may be private or over its download quota)")


def fetch(source: Source, dest: str | os.PathLike | None = None, *, progress: bool | None = None,
          timeout: float = 60.0, offline_ok: bool = True) -> Path:
    """Make ``source`` present and verified at ``dest`` (default: its cache path); return the path.

    Args:
        source: what to fetch.
        dest: the file path to place it at; None keeps it in the cache (:func:`default_path`).
        progress: True forces a progress bar, False one-line messages; None picks by whether
            stderr is a terminal.
        timeout: seconds to wait for the server to answer (per connection and per read).
        offline_ok: when True and the file is already present and verified, no network is used.

    Raises:
        OfflineError: the file is missing and the network is unreachable (or an offline variable
            is set); the message names the file, its source and the path it is expected at.
        ChecksumError: the downloaded (or cached) file has the wrong size or SHA-256; the bad
            file is deleted so the next attempt downloads it again.
        FetchError: the download failed; the partial file is kept and the next call resumes it.
    """
    from filelock import FileLock

    path = Path(dest).expanduser() if dest is not None else default_path(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.is_file() and offline_ok:
            try:
                verify_file(path, source)
                return path
            except ChecksumError as err:
                log.warning("cached file is bad, downloading it again: %s", err)
                path.unlink()
        reason = offline_reason([source])
        if reason is not None:
            raise OfflineError(
                f"{source.filename} is missing at {path} and cannot be downloaded ({reason}). "
                f"On a machine with network it comes from {source.location}"
                + (f" (SHA-256 {source.sha256})" if source.sha256 else "")
                + f"; copy it to {path} (or set SRBENCH_CACHE to a cache that holds it).")
        part = path.with_name(path.name + ".part")
        if source.kind == "gdrive":
            _gdrive_download(source, part, progress)
        else:
            headers: dict[str, str] = {}
            if source.kind == "hf":
                from huggingface_hub.utils import build_hf_headers

                headers = build_hf_headers(library_name="srbench")
            _http_download(source.location, part, headers, source.filename, source.size, progress, timeout)
        try:
            verify_file(part, source)
        except ChecksumError:
            part.unlink(missing_ok=True)  # a wrong file is no prefix to resume from
            raise
        os.replace(part, path)
        return path


# ----------------------------------------------------------------------------- unpack


def _safe_member(name: str) -> bool:
    p = Path(name)
    return not (p.is_absolute() or ".." in p.parts or name.startswith(("/", "\\")))


def unpack(archive: str | os.PathLike, dest: str | os.PathLike, *,
           members: Callable[[str], str | None] | None = None,
           check: Callable[[Path], dict[str, Any] | None] | None = None,
           marker: dict[str, Any] | None = None) -> Path:
    """Extract a zip archive into ``dest`` atomically; return ``dest``.

    Args:
        archive: a ``.zip`` file.
        dest: the folder to create. An existing ``dest`` is replaced only after the new one is
            complete.
        members: maps each member name to its path under ``dest`` (None skips the member); default
            keeps every member at its own path.
        check: called with the extracted (still hidden) folder before it is moved into place;
            raise to refuse it (the hidden folder is deleted). A returned dict is stored in the
            marker under ``"check"``.
        marker: extra data for the verified marker (``dest/`` :data:`MARKER`).

    Raises:
        ValueError: the archive is not a zip, has an unsafe member path, or yields no member.
    """
    archive, dest = Path(archive), Path(dest).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.partial-*"):  # left by a killed unpack
        shutil.rmtree(stale, ignore_errors=True)
    tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile as err:
            raise ValueError(f"{archive} is not a valid zip archive ({err}); delete it and fetch again") from err
        n = 0
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                if not _safe_member(info.filename):
                    raise ValueError(f"{archive}: member {info.filename!r} would be written outside the target folder")
                rel = members(info.filename) if members else info.filename
                if rel is None:
                    continue
                if not _safe_member(rel):
                    raise ValueError(f"{archive}: member {info.filename!r} maps to unsafe path {rel!r}")
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                n += 1
        if n == 0:
            raise ValueError(f"{archive}: no member matched; the archive does not hold what was expected")
        info_check = check(tmp) if check else None
        write_marker(tmp, {**(marker or {}), "archive": archive.name,
                           **({"check": info_check} if info_check else {})})
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def tree_listing(root: Path) -> dict[str, int]:
    """``{relative path: size in bytes}`` of every file under ``root`` except the marker (sorted)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MARKER:
            out[p.relative_to(root).as_posix()] = p.stat().st_size
    return out


def write_marker(root: Path, data: dict[str, Any]) -> None:
    """Write the verified marker: ``data`` plus the listing (path -> size) and SHA-256 of each file."""
    listing = tree_listing(root)
    files = {rel: {"size": size, "sha256": sha256_file(root / rel)} for rel, size in listing.items()}
    atomic_write_json(root / MARKER, {**data, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                      "files": files})


def read_marker(root: Path) -> dict[str, Any] | None:
    """The verified marker of ``root``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def check_against_marker(root: Path, hashes: bool = False) -> list[str]:
    """Problems of ``root`` against its marker: missing, extra, resized (and, with ``hashes``,
    altered) files. An empty list means the folder is as it was when verified."""
    data = read_marker(root)
    if data is None:
        return [f"{root} has no verified marker {MARKER} (never verified, or unpacked by hand)"]
    want = data.get("files", {})
    have = tree_listing(root)
    problems = [f"missing file {root / rel}" for rel in sorted(set(want) - set(have))]
    problems += [f"unexpected file {root / rel} (not in the verified set)" for rel in sorted(set(have) - set(want))]
    for rel in sorted(set(want) & set(have)):
        if have[rel] != want[rel]["size"]:
            problems.append(f"altered file {root / rel}: {have[rel]} bytes, verified with {want[rel]['size']} bytes")
        elif hashes and sha256_file(root / rel) != want[rel]["sha256"]:
            problems.append(f"altered file {root / rel}: SHA-256 differs from the verified one")
    return problems
