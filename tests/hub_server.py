"""A local HTTP server on 127.0.0.1 in the Hugging Face Hub's URL layout, for download tests.

``HubServer`` serves byte strings at ``/{repo}/resolve/{revision}/{path}`` (models),
``/datasets/{repo}/resolve/...`` (data sets) and at any plain path, answers HEAD, GET and
``Range: bytes=N-`` requests (206; 416 past the end), sends the headers huggingface_hub reads
(``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag``, ``X-Linked-Size``, ``Content-Length``), and
records every request as (method, path, Range header). ``delay`` slows the body down (seconds
per chunk of :attr:`chunk` bytes) so a test can kill a client part-way; ``ignore_range`` makes it
answer 200 with the whole file, as a server without range support. Point huggingface_hub (and
srbench.fetch) at it with ``HF_ENDPOINT=server.url``.

It is the one test server of the project: :class:`weight_server.FileServer` extends it with the
Hub's Git LFS headers and repository errors (by overriding :meth:`HubServer.lookup`). Started
and stopped by the tests (a context manager); every socket has a timeout, so its life is bounded.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


class HubServer:
    """Serve :attr:`files` (``{url path: bytes}``) on 127.0.0.1 at an ephemeral port."""

    protocol_version = "HTTP/1.1"
    handler_timeout = 10  # seconds: a stuck client cannot hold a handler thread for ever
    chunk = 1 << 14  # bytes written between two ``delay`` sleeps

    def __init__(self, delay: float = 0.0) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.delay = delay
        self.ignore_range = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------- content
    def add_hf(self, repo: str, path: str, data: bytes, revision: str = "main", repo_type: str = "model") -> None:
        prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
        self.files[f"/{prefix}{repo}/resolve/{revision}/{path}"] = data

    def add_url(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url + path

    def lookup(self, path: str) -> tuple[bytes | None, dict[str, str]]:
        """(body, headers) for a request path (unquoted, no query); body None: 404 with those headers."""
        data = self.files.get(path)
        if data is None:
            return None, {"X-Error-Code": "EntryNotFound"}
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        return data, {"ETag": etag, "X-Linked-Etag": etag, "X-Linked-Size": str(len(data)), "X-Repo-Commit": "0" * 40}

    # --------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "HubServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = server.protocol_version
            timeout = server.handler_timeout

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _head(self, code: int, headers: dict[str, str], length: int) -> None:
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def _serve(self, body: bool) -> None:
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((self.command, path, rng))
                data, headers = server.lookup(unquote(path))  # huggingface_hub quotes file names (+ -> %2B)
                if data is None:
                    self._head(404, headers, 0)
                    return
                partial = bool(rng) and not server.ignore_range and rng.startswith("bytes=")
                start = int(rng[6:].split("-")[0]) if partial else 0
                if partial and start >= len(data):
                    self._head(416, {"Content-Range": f"bytes */{len(data)}"}, 0)
                    return
                if partial:
                    headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}", **headers}
                self._head(206 if partial else 200, {**headers, "Accept-Ranges": "bytes"}, len(data) - start)
                if not body:
                    return
                view = memoryview(data)[start:]
                try:
                    for i in range(0, len(view), server.chunk):
                        self.wfile.write(view[i:i + server.chunk])
                        if server.delay:
                            self.wfile.flush()
                            time.sleep(server.delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed part way: what the resume tests do

            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                self._serve(True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve(False)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
