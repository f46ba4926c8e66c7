"""A webhook receiver that misbehaves on purpose, one behaviour per path (a real HTTP server).

``/e500`` always answers 500; ``/e429`` answers 429 with ``Retry-After: 2`` once, then 200;
``/e410`` answers 410 Gone; ``/redirect`` answers 302 to ``/target`` (which must never be
reached); ``/hang`` reads the request and never answers; ``/stream`` answers 200 and then
streams a body that never ends; ``/ok`` answers 200. Every request's arrival time is recorded.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RETRY_AFTER = 2


class HostileReceiver:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.stopping = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                path = self.path
                with receiver.lock:
                    receiver.arrivals[path].append(time.monotonic())
                    seen = len(receiver.arrivals[path])
                if path == "/e500":
                    self._answer(500)
                elif path == "/e429":
                    self._answer(429, {"Retry-After": str(RETRY_AFTER)}) if seen == 1 else self._answer(200)
                elif path == "/e410":
                    self._answer(410)
                elif path == "/redirect":
                    host = self.headers.get("host", "127.0.0.1")
                    self._answer(302, {"Location": f"http://{host}/target"})
                elif path == "/hang":
                    receiver.stopping.wait(120)
                elif path == "/stream":
                    self.send_response(200)
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    while not receiver.stopping.wait(0.05):
                        try:
                            self.wfile.write(b"1\r\nx\r\n")
                            self.wfile.flush()
                        except OSError:
                            return
                else:
                    self._answer(200)

            def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"no" if status >= 300 else b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HostileReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def times(self, path: str) -> list[float]:
        with self.lock:
            return list(self.arrivals[path])
