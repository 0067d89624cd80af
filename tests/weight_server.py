"""A local HTTP server (127.0.0.1 only) in the URL layouts the method sources use, for download tests.

* the Hugging Face Hub's file layout: ``HEAD``/``GET /{repo}/resolve/{revision}/{path}`` with the
  headers huggingface_hub's ``get_hf_file_metadata`` reads (``X-Repo-Commit``, ``ETag`` — the
  file's SHA-256 for a Git LFS file, as the Hub sends it in ``X-Linked-Etag`` — ``X-Linked-Size``,
  ``Content-Length``), and the Hub's 404 with ``X-Error-Code: EntryNotFound`` /
  ``RepositoryNotFound``; point ``HF_ENDPOINT`` at :attr:`FileServer.url`;
* plain URLs (release assets): ``GET /files/{path}``.

One server serves both this and :mod:`hub_server`: ``FileServer`` extends ``HubServer``, which
honours ``Range: bytes=N-`` (206, 416 past the end), so resumed downloads can be checked, records
every (method, path, Range) in :attr:`requests`, and slows bodies down (``throttle``) so a test
can kill a download part way. Started and stopped by the tests (a context manager), with a
bounded lifetime: every socket has a timeout.
"""

from __future__ import annotations

import hashlib

from hub_server import HubServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FileServer(HubServer):
    """Serve ``hub[(repo, path)]`` and ``files[path]`` bytes on 127.0.0.1 (an ephemeral port).

    :class:`hub_server.HubServer` with the Hub's answers for model repositories: Git LFS headers
    (SHA-256 ETag, ``X-Linked-*``) only for files of at least ``lfs_min`` bytes (a plain git file's
    ETag is its SHA-1), 404 ``RepositoryNotFound`` for an unknown repository, and plain URLs under
    ``/files/`` without Hub headers. Ranges, 416, request log and slow bodies come from HubServer.
    """

    protocol_version = "HTTP/1.0"
    handler_timeout = 30  # a stuck client cannot keep a handler thread alive for long
    chunk = 4096

    def __init__(self, hub: dict[tuple[str, str], bytes] | None = None, files: dict[str, bytes] | None = None,
                 lfs_min: int = 1024) -> None:
        super().__init__()
        self.hub = dict(hub or {})
        self.lfs_min = lfs_min  # files at least this large are served as Git LFS files (SHA-256 ETag)
        for path, data in (files or {}).items():
            self.files[f"/files/{path}"] = data

    @property
    def throttle(self) -> float:
        """Seconds to sleep per 4 KiB chunk of a body (HubServer's ``delay``)."""
        return self.delay

    @throttle.setter
    def throttle(self, value: float) -> None:
        self.delay = value

    def lookup(self, path: str) -> tuple[bytes | None, dict[str, str]]:
        if path.startswith("/files/"):
            return self.files.get(path), {}
        parts = path.lstrip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, rel = "/".join(parts[:2]), "/".join(parts[4:])
            if not any(r == repo for r, _ in self.hub):
                return None, {"X-Error-Code": "RepositoryNotFound"}
            data = self.hub.get((repo, rel))
            if data is None:
                return None, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}
            headers = {"X-Repo-Commit": COMMIT}
            if len(data) >= self.lfs_min:
                headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
                headers["X-Linked-Size"] = str(len(data))
                headers["ETag"] = f'"{hashlib.sha256(data).hexdigest()}"'
            else:
                headers["ETag"] = f'"{hashlib.sha1(data).hexdigest()}"'
            return data, headers
        return None, {}


def tree_bytes(root) -> dict[str, bytes]:
    """Every file under ``root`` as {relative posix path: bytes}."""
    from pathlib import Path

    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}  # benchmark.fetch's lock files
