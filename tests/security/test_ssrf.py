"""Finding 1: SSRF through callback_url (any spelling of an internal address, DNS rebinding,
receivers' answers reaching tenants)."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from conveyor.types import JobState
from conveyor.webhooks import check_url
from tests.api.procs import wait_until
from tests.security.conftest import RECEIVER_SECRET_BODY, Stack

INTERNAL = [
    "http://2130706433:8080/",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/",  # hex
    "http://127.1/",  # short dotted form
    "http://0/",  # 0.0.0.0
    "http://017700000001/",  # octal
    "http://127.0.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/",  # mapped 169.254.169.254
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",  # 169.254.169.254
    "http://[fe80::1]/",
    "http://100.64.0.1/",  # CGNAT
    "http://100.127.255.254/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize("url", INTERNAL)
def test_check_url_refuses_every_spelling_of_a_non_public_address(url: str) -> None:
    with pytest.raises(ValueError, match="non-public"):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url  # the explicit opt-in (local development)


def test_check_url_accepts_public_addresses() -> None:
    for url in ("https://hooks.example.com/x", "http://8.8.8.8/", "http://[2606:4700::1]/"):
        assert check_url(url, allow_private=False) == url


def test_submit_with_a_numeric_loopback_callback_is_refused_with_422(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        for url in (f"http://2130706433:{stack.receiver.url.rsplit(':', 1)[1]}/x", "http://2852039166/latest"):
            response = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 1}, "callback_url": url})
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["field"] == "body.callback_url"


class _Sink:
    """A loopback HTTP server that records whether anything reached it."""

    def __init__(self) -> None:
        self.hits = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sink.hits += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_delivery_transport_checks_the_address_it_connects_to() -> None:
    """A host *name* that resolves to loopback passes a literal check; the transport resolves it
    itself, refuses the answer and connects nowhere (the same look-up is the connect's: no rebinding)."""
    from conveyor.webhooks.address import PrivateAddress, vetted_transport

    sink = _Sink()

    async def post(allow_private: bool) -> int:
        async with httpx.AsyncClient(transport=vetted_transport(allow_private), trust_env=False) as client:
            return (await client.post(f"http://localhost:{sink.port}/hook", content=b"{}")).status_code

    try:
        with pytest.raises(PrivateAddress):
            asyncio.run(post(False))
        assert sink.hits == 0
        assert asyncio.run(post(True)) == 200  # the opt-in still connects (to the vetted address)
        assert sink.hits == 1
    finally:
        sink.server.shutdown()
        sink.server.server_close()


def test_a_receivers_answer_never_reaches_the_delivery_error(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        job_id = http.post("/v1/jobs", json={"task": "refused", "args": {"value": 1}}).json()["id"]
    with stack.server.http(stack.admin) as admin:

        def dead() -> list[dict[str, Any]]:
            jobs = admin.get("/v1/jobs", params={"task": "conveyor.webhooks.deliver", "limit": 200}).json()["jobs"]
            mine = [j for j in jobs if j["args"]["job_id"] == job_id]
            return [j for j in mine if j["state"] == JobState.FAILED.value]

        [delivery] = wait_until(dead, what="the refused delivery to fail")
    assert "HTTP 500" in delivery["error"]["message"]
    assert RECEIVER_SECRET_BODY not in str(delivery)
