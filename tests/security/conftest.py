"""Real servers for the security tests (as tests/api): ``conveyor serve`` processes over TCP.

``stack``: the security app with a worker node, a webhook receiver and keys of two tenants and
an admin. ``limits``: a second server (no workers) with short slow-client limits, a stream cap
of 2 per key and 127.0.0.1 as its trusted proxy.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.api.procs import Env, Server

APP = "tests.security.secure_app:app"
RECEIVER_SECRET_BODY = "RECEIVER-INTERNAL-DETAIL-7731"


@dataclass
class Receiver:
    """Answers 200, or 500 with a telltale body to deliveries about the ``refused`` task."""

    paths: list[str] = field(default_factory=list)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.paths.append(self.path)
                refused = b'"task":"refused"' in body
                answer = RECEIVER_SECRET_BODY.encode() if refused else b"ok"
                self.send_response(500 if refused else 200)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stack:
    env: Env
    server: Server
    receiver: Receiver
    admin: str
    tenant_a: str
    tenant_b: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("security")
    receiver = Receiver().start()
    environment = Env(f"sqlite:///{tmp / 'conveyor.db'}", tmp)
    os.environ["SECURITY_RECEIVER"] = receiver.url
    try:
        admin = environment.create_key("admin", tenant="ops")
        tenant_a = environment.create_key("submit", "read", tenant="a")
        tenant_b = environment.create_key("submit", "read", tenant="b")
        server = environment.serve("--workers", "1", "--concurrency", "2", app=APP)
        yield Stack(environment, server, receiver, admin, tenant_a, tenant_b)
    finally:
        environment.stop_all()
        os.environ.pop("SECURITY_RECEIVER", None)
        receiver.stop()


@dataclass
class Limited:
    env: Env
    server: Server
    key: str


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    environment = Env(f"sqlite:///{tmp / 'conveyor.db'}", tmp)
    try:
        key = environment.create_key("admin", tenant="ops")
        server = environment.serve(
            "--header-timeout", "1", "--body-timeout", "1", "--max-streams-per-key", "2",
            "--trusted-proxy", "127.0.0.1",
            app=APP,
        )  # fmt: skip
        yield Limited(environment, server, key)
    finally:
        environment.stop_all()
