"""Which addresses a webhook may reach, and an HTTP transport that connects only to vetted ones.

A URL's host can name a loopback or internal address in many spellings: ``2130706433``,
``0x7f000001``, ``127.1`` and ``0`` are all 127.0.0.1 or 0.0.0.0 to the C resolver, and
``[::ffff:127.0.0.1]`` is IPv4 in IPv6 clothes. Rather than recognise spellings, the host is
resolved the way a connect would resolve it (``getaddrinfo``) and every address it yields must
be public. The check and the connect are one step: ``VettedNetwork.connect_tcp`` resolves,
refuses non-public answers, and connects to the very address it checked, so a DNS answer that
changes between a check and a connect (DNS rebinding) cannot redirect the request. TLS still
uses the URL's host name for SNI and certificate checks, and the Host header is unchanged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_LEGACY_IPV4 = set("0123456789abcdefxABCDEFX.")


class PrivateAddress(ValueError):
    """The host resolves to a loopback, private, link-local, CGNAT, reserved or unspecified address."""


def literal_address(host: str) -> Address | None:
    """The IP address ``host`` spells, in any form the C resolver accepts (``127.1``,
    ``2130706433``, ``0x7f000001``, octal), or None for a host name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and set(host) <= _LEGACY_IPV4:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded(address: Address) -> Address:
    """The IPv4 address carried inside an IPv6 one (mapped, 6to4, NAT64), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in ipaddress.IPv6Network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.teredo is not None:
            return address.teredo[1]
    return address


def is_public(address: Address) -> bool:
    """True for a globally routable unicast address (``is_global`` excludes private, loopback,
    link-local incl. 169.254.169.254, CGNAT 100.64/10, unspecified, reserved, documentation)."""
    inner = _embedded(address)
    for candidate in {address, inner}:
        if not candidate.is_global or candidate.is_multicast or candidate.is_unspecified:
            return False
    return True


def check_addresses(host: str, addresses: Iterable[Address]) -> None:
    """Raise PrivateAddress unless every address is public (one private answer is enough to refuse)."""
    for address in addresses:
        if not is_public(address):
            raise PrivateAddress(f"host {host!r} resolves to the non-public address {address}")


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to, as a TCP connect would look it up."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    found: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


async def vetted_addresses(host: str, port: int, allow_private: bool) -> list[Address]:
    """Resolve ``host`` and refuse it unless every answer is public (or ``allow_private``)."""
    literal = literal_address(host)
    addresses = [literal] if literal is not None else await resolve(host, port)
    if not allow_private:
        check_addresses(host, addresses)
    return addresses


class VettedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, except that ``connect_tcp`` connects only to a vetted address."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await vetted_addresses(host, port, self.allow_private)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host!r} has no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def vetted_transport(allow_private: bool) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go only to addresses ``VettedNetwork`` accepted.

    httpx has no public knob for the network backend, so the transport's pool is replaced by
    an equivalent one built on ``VettedNetwork`` (no proxy: deliveries never use $HTTP_PROXY).
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        network_backend=VettedNetwork(allow_private),
    )
    return transport
