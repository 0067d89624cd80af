"""A local HTTP server (127.0.0.1 only) in the URL layouts the method sources use, for download tests.

* the Hugging Face Hub's file layout: ``HEAD``/``GET /{repo}/resolve/{revision}/{path}`` with the
  headers huggingface_hub's ``get_hf_file_metadata`` reads (``X-Repo-Commit``, ``ETag`` — the
  file's SHA-256 for a Git LFS file, as the Hub sends it in ``X-Linked-Etag`` — ``X-Linked-Size``,
  ``Content-Length``), and the Hub's 404 with ``X-Error-Code: EntryNotFound`` /
  ``RepositoryNotFound``; point ``HF_ENDPOINT`` at :attr:`FileServer.url`;
* plain URLs (release assets): ``GET /files/{path}``.

Both honour ``Range: bytes=N-`` (206), so resumed downloads can be checked; :attr:`requests`
records every (method, path, Range) the server saw. ``throttle`` slows bodies down so a test
can kill a download part way. Started and stopped by the tests (a context manager), with a
bounded lifetime: every socket has a timeout.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FileServer:
    """Serve ``hub[(repo, path)]`` and ``files[path]`` bytes on 127.0.0.1 (an ephemeral port)."""

    def __init__(self, hub: dict[tuple[str, str], bytes] | None = None, files: dict[str, bytes] | None = None,
                 lfs_min: int = 1024) -> None:
        self.hub = dict(hub or {})
        self.files = dict(files or {})
        self.lfs_min = lfs_min  # files at least this large are served as Git LFS files (SHA-256 ETag)
        self.requests: list[tuple[str, str, str | None]] = []
        self.throttle: float = 0.0  # seconds to sleep per 4 KiB chunk of a body
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FileServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 30  # a stuck client cannot keep a handler thread alive for long

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _lookup(self) -> tuple[bytes | None, dict[str, str]]:
                from urllib.parse import unquote

                path = unquote(self.path.split("?", 1)[0])  # huggingface_hub quotes file names (+ -> %2B)
                if path.startswith("/files/"):
                    return owner.files.get(path[len("/files/"):]), {}
                parts = path.lstrip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, rel = "/".join(parts[:2]), "/".join(parts[4:])
                    if not any(r == repo for r, _ in owner.hub):
                        return None, {"X-Error-Code": "RepositoryNotFound"}
                    data = owner.hub.get((repo, rel))
                    if data is None:
                        return None, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}
                    headers = {"X-Repo-Commit": COMMIT}
                    if len(data) >= owner.lfs_min:
                        headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
                        headers["X-Linked-Size"] = str(len(data))
                        headers["ETag"] = f'"{hashlib.sha256(data).hexdigest()}"'
                    else:
                        headers["ETag"] = f'"{hashlib.sha1(data).hexdigest()}"'
                    return data, headers
                return None, {}

            def _respond(self, body: bool) -> None:
                rng = self.headers.get("Range")
                owner.requests.append((self.command, self.path, rng))
                data, headers = self._lookup()
                if data is None:
                    self.send_response(404)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[len("bytes="):-1])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                try:
                    for i in range(start, len(data), 4096):
                        self.wfile.write(data[i:i + 4096])
                        if owner.throttle:
                            self.wfile.flush()
                            time.sleep(owner.throttle)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed part way: what the resume tests do

            def do_HEAD(self) -> None:  # noqa: N802  (http.server's naming)
                self._respond(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._respond(body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def tree_bytes(root) -> dict[str, bytes]:
    """Every file under ``root`` as {relative posix path: bytes}."""
    from pathlib import Path

    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}  # benchmark.fetch's lock files
