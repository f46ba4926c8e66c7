"""A real HTTP receiver on 127.0.0.1 for the webhook tests, in a thread of the test process.

It records every request (path, headers, raw body) and answers each path from a script of
status codes (then 200), so a test can make an endpoint fail a few times or stay down.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    """What the receiver answered."""

    def verify(self, secret: str) -> Any:
        """The parsed payload if the signature is valid for ``secret``; raises otherwise."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.scripts: dict[str, list[int]] = defaultdict(list)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    script = receiver.scripts[self.path]
                    status = script.pop(0) if script else 200
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"no")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with these statuses (then 200 again)."""
        with self.lock:
            self.scripts[path].extend(statuses)

    def received(self, path: str | None = None, job_id: str | None = None) -> list[Received]:
        """Requests so far, optionally only those to ``path`` / about job ``job_id``."""
        with self.lock:
            found = list(self.requests)
        if path is not None:
            found = [r for r in found if r.path == path]
        if job_id is not None:
            found = [r for r in found if f'"id":"{job_id}"'.encode() in r.body]
        return found
