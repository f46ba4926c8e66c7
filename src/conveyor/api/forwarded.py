"""Where clients reach this service: the base of the absolute URLs it answers with.

Generic long-running-operation pollers (Azure REST guidelines) need an absolute
``Operation-Location``. Its base is, in order: the operator's ``serve --public-url``; else the
request's own scheme and host, where ``X-Forwarded-Proto``/``-Host`` are believed only from the
proxies named by ``--trusted-proxy`` (anyone else could send them to point pollers elsewhere).
"""

from __future__ import annotations

import ipaddress
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

_HOST_RE = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def is_trusted(peer: str | None, trusted: list[str]) -> bool:
    """Whether ``peer`` (an IP address) is one of ``trusted`` (addresses, networks or ``*``)."""
    if peer is None:
        return False
    for entry in trusted:
        if entry == "*":
            return True
        try:
            if ipaddress.ip_address(peer) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            if peer == entry:
                return True
    return False


class TrustedForwardedHost:
    """Take the ``Host`` from ``X-Forwarded-Host`` when a trusted proxy sends it (the first value)."""

    def __init__(self, app: ASGIApp, trusted: list[str]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and is_trusted(client[0] if client else None, self.trusted):
            forwarded = next((v for k, v in scope["headers"] if k == b"x-forwarded-host"), None)
            host = forwarded.decode("latin-1").split(",")[0].strip() if forwarded else ""
            if host and _HOST_RE.match(host):
                headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
                scope = {**scope, "headers": [*headers, (b"host", host.encode())]}
        await self.app(scope, receive, send)


def behind_proxies(app: ASGIApp, trusted: list[str]) -> ASGIApp:
    """``app`` believing X-Forwarded-Proto/-For/-Host from ``trusted`` proxies only."""
    if not trusted:
        return app
    # the host check sees the real peer: uvicorn's middleware then replaces it with X-Forwarded-For
    proxied = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]
    return TrustedForwardedHost(proxied, trusted)  # type: ignore[arg-type]


def public_base(request: Request, public_url: str | None) -> str:
    """The base URL clients use for this service, without a trailing slash."""
    return (public_url or str(request.base_url)).rstrip("/")
