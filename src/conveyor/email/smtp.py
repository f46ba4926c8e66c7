"""An SMTP server named by a URL, and sending one message to it with ``aiosmtplib``.

``smtp://host:port`` (plain, or STARTTLS when the server offers it), ``smtps://host:465``
(TLS from the first byte), with optional ``user:password@`` and query options
``?starttls=required|off`` and ``?timeout=seconds``. Passwords are percent-decoded, so any
character can be given. A URL is checked when it is configured, so a typo fails at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from conveyor.errors import ConfigError

ADDRESS = re.compile(r"^[^@\s<>,;\"']{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
MAX_ADDRESS = 254


def check_address(address: str) -> str:
    """``address`` if it is a plain ``local@domain`` mailbox (no display name, no list); else ValueError."""
    if not isinstance(address, str) or len(address) > MAX_ADDRESS or not ADDRESS.match(address):
        raise ValueError(f"{str(address)[:80]!r} is not an email address (local@domain)")
    return address


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to hand mail over (see the module docstring for the URL)."""

    host: str
    port: int
    use_tls: bool = False
    starttls: bool | None = None
    """None: upgrade when the server offers it; True: required; False: never."""
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ConfigError(f"SMTP URL {_redacted(url)!r} is not a valid URL") from None
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(f"SMTP URL must look like smtp://host:port or smtps://host:465, got {_redacted(url)!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "timeout"}
        if unknown:
            raise ConfigError(f"SMTP URL option(s) {', '.join(sorted(unknown))} unknown (starttls, timeout)")
        starttls = {"required": True, "off": False, None: None}.get(query.get("starttls"), "bad")
        if starttls == "bad":
            raise ConfigError("SMTP URL option starttls must be required or off")
        try:
            timeout = float(query.get("timeout", 30.0))
        except ValueError:
            raise ConfigError("SMTP URL option timeout must be seconds") from None
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if tls else 25),
            use_tls=tls,
            starttls=None if tls else starttls,  # type: ignore[arg-type]
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )

    def __str__(self) -> str:
        return f"{'smtps' if self.use_tls else 'smtp'}://{self.host}:{self.port}"


def _redacted(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


async def send_message(server: SmtpServer, message: EmailMessage) -> None:
    """Hand one message to the server; raises ``aiosmtplib.SMTPException`` / ``OSError`` on failure."""
    await aiosmtplib.send(
        message,
        hostname=server.host,
        port=server.port,
        username=server.username,
        password=server.password,
        use_tls=server.use_tls,
        start_tls=server.starttls,
        timeout=server.timeout,
    )
