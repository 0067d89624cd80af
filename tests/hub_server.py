"""A local HTTP server on 127.0.0.1 in the Hugging Face Hub's URL layout, for download tests.

``HubServer`` serves byte strings at ``/{repo}/resolve/{revision}/{path}`` (models),
``/datasets/{repo}/resolve/...`` (data sets) and at any plain path, answers HEAD, GET and
``Range`` requests (206), sends the headers huggingface_hub reads (``X-Repo-Commit``, ``ETag``,
``X-Linked-Etag``, ``X-Linked-Size``, ``Content-Length``), and records every request. ``delay``
slows the body down (seconds per 16 KiB) so a test can kill a client part-way. Point
huggingface_hub (and srbench.fetch) at it with ``HF_ENDPOINT=server.url``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubServer:
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

    # --------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> "HubServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # a stuck client cannot hold a handler thread for ever

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _serve(self, body: bool) -> None:
                path = self.path.split("?")[0]
                server.requests.append((self.command, path, self.headers.get("Range")))
                data = server.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and not server.ignore_range and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
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
                etag = hashlib.sha256(data).hexdigest()
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("X-Repo-Commit", "0" * 40)
                self.end_headers()
                if not body:
                    return
                view = memoryview(data)[start:]
                step = 1 << 14
                try:
                    for i in range(0, len(view), step):
                        self.wfile.write(view[i:i + step])
                        if server.delay:
                            time.sleep(server.delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                self._serve(True)

            def do_HEAD(self) -> None:
                self._serve(False)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
