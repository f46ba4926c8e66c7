"""Finding 5: slow headers and bodies are cut off; event streams are capped per API key.

A few real loopback sockets drip bytes; each waits for the server to close it or answer,
bounded by a deadline (the server under test has 1 s header and body timeouts)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx

from tests.api.procs import wait_until
from tests.security.conftest import Limited

SOCKETS = 3
DEADLINE = 30.0
"""Far above the server's 1 s limits: reaching it means the server never cut the client off."""


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    return socket.create_connection((parts.hostname, parts.port or 80), timeout=5)


def _drip_until_answered(socks: list[socket.socket], drip: bytes) -> dict[int, bytes]:
    """Send one byte of ``drip`` per socket per round until the server answers or closes each;
    each round waits on the sockets (recv with a short timeout), never a bare sleep."""
    answers: dict[int, bytes] = {}
    deadline = time.monotonic() + DEADLINE
    position = 0
    while len(answers) < len(socks):
        assert time.monotonic() < deadline, f"{len(socks) - len(answers)} slow clients were never cut off"
        for i, sock in enumerate(socks):
            if i in answers:
                continue
            try:
                sock.sendall(drip[position % len(drip) : position % len(drip) + 1])
                sock.settimeout(0.1)
                data = sock.recv(4096)
                answers[i] = data  # b"" is a close, else the server's answer
            except TimeoutError:
                continue
            except OSError:
                answers[i] = b""  # reset: closed by the server
        position += 1
    return answers


def test_slow_headers_and_bodies_are_cut_off(limits: Limited) -> None:
    header_socks = [_connect(limits.server.url) for _ in range(SOCKETS)]
    for sock in header_socks:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    body_socks = [_connect(limits.server.url) for _ in range(SOCKETS)]
    head = (
        "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {limits.key}\r\nContent-Length: 100000\r\n\r\n"
    )
    for sock in body_socks:
        sock.sendall(head.encode())
    try:
        closed = _drip_until_answered(header_socks, b"X-Slow: a\r\n")
        assert all(answer == b"" for answer in closed.values()), closed
        answered = _drip_until_answered(body_socks, b' {"task": "ok"')
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answered.values()), answered
    finally:
        for sock in header_socks + body_socks:
            sock.close()
    assert httpx.get(f"{limits.server.url}/healthz", timeout=10).status_code == 200  # still serving others


def test_event_streams_are_capped_per_key(limits: Limited) -> None:
    headers = {"Authorization": f"Bearer {limits.key}"}
    with httpx.Client(base_url=limits.server.url, headers=headers, timeout=30) as http:
        job_id = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 1}, "delay": 3600}).json()["id"]
        path = f"/v1/jobs/{job_id}/events"
        with http.stream("GET", path) as first, http.stream("GET", path) as second:
            assert first.status_code == second.status_code == 200
            over = http.get(path)
            assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
        # closing a stream gives its slot back (once the server has seen the disconnect)

        def opened() -> bool:
            with http.stream("GET", path) as again:
                return again.status_code == 200

        wait_until(opened, what="a stream slot to be free again")
        http.post(f"/v1/jobs/{job_id}:cancel")
