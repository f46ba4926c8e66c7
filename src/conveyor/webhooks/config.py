"""What an application configures: the endpoints to notify, and how deliveries are retried.

Secrets stay in the application's configuration (code or environment), never in the engine:
a delivery job stores only the endpoint's name, and the worker that runs it looks the secret
up in its own copy of the app. Per-submit callbacks (``callback_url`` on ``POST /v1/jobs``) are
signed with ``callback_secret``; they are refused while it is unset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from conveyor.errors import ConfigError
from conveyor.types import RetryPolicy
from conveyor.webhooks.address import is_public, literal_address

EVENTS = ("job.succeeded", "job.failed", "job.canceled")
CALLBACK = "callback"
"""Endpoint name of per-submit callbacks (reserved)."""
MAX_URL_LENGTH = 2048
DELIVERY_RETRY = RetryPolicy(base_delay=5.0, factor=2.0, max_delay=3600.0, jitter=True)


def check_url(url: str, *, allow_private: bool = False) -> str:
    """Return ``url`` if it is an absolute http(s) URL Conveyor may POST to; raise ValueError.

    Without ``allow_private`` a host that spells a non-public IP address in any form
    (``127.1``, ``2130706433``, ``0x7f000001``, ``[::ffff:127.0.0.1]``, 169.254.169.254, ...)
    or ``localhost`` is refused. Host names are resolved, and their addresses checked again,
    when the request is sent (``webhooks/address.py``): this check is only the early answer.
    """
    if not isinstance(url, str) or not url:
        raise ValueError("must be a non-empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    host = parts.hostname
    if not host:
        raise ValueError("must name a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; the request is signed instead")
    if not allow_private:
        address = literal_address(host)
        name = host.rstrip(".").lower()
        if name == "localhost" or name.endswith(".localhost") or (address is not None and not is_public(address)):
            raise ValueError("must not point at a loopback, private, link-local or otherwise non-public address")
    return url


def redact_url(url: str | None) -> str:
    """``url`` fit for logs and error messages: no user info, query or fragment (tokens live there)."""
    if not url:
        return "-"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid url>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}{'?...' if parts.query else ''}"


def check_secret(secret: str) -> str:
    """A Standard Webhooks secret: ``whsec_`` followed by base64 of 24-64 random bytes."""
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise ConfigError("a webhook secret must look like whsec_<base64>")
    try:
        Webhook(secret)
    except Exception:
        raise ConfigError("a webhook secret must be whsec_ followed by base64") from None
    return secret


@dataclass(frozen=True)
class WebhookEndpoint:
    """A receiver notified when jobs end.

    ``events`` picks which of job.succeeded / job.failed / job.canceled it gets; ``tenant``
    limits it to one tenant's jobs (None: every tenant); ``tasks`` to some task names (empty:
    all). ``name`` identifies the endpoint in delivery jobs and idempotency keys; it defaults to
    the URL, so give one explicitly if the URL may change while deliveries are pending.
    """

    url: str
    secret: str
    events: tuple[str, ...] = EVENTS
    tenant: str | None = None
    tasks: tuple[str, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        try:
            check_url(self.url, allow_private=True)  # the address rule is the settings' (allow_private_endpoints)
        except ValueError as exc:
            raise ConfigError(f"webhook url {redact_url(self.url)!r} {exc}") from None
        check_secret(self.secret)
        unknown = set(self.events) - set(EVENTS)
        if unknown or not self.events:
            raise ConfigError(f"webhook events must be among {', '.join(EVENTS)}; got {sorted(unknown) or 'none'}")
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if not self.name:
            object.__setattr__(self, "name", "endpoint-" + hashlib.sha256(self.url.encode()).hexdigest()[:12])
        if self.name == CALLBACK:
            raise ConfigError(f"webhook name {CALLBACK!r} is reserved for per-submit callbacks")

    def wants(self, event: str, tenant: str, task: str) -> bool:
        return (
            event in self.events
            and (self.tenant is None or self.tenant == tenant)
            and (not self.tasks or task in self.tasks)
        )


@dataclass(frozen=True)
class WebhookSettings:
    """Every webhook option of an app: ``Conveyor(webhooks=WebhookSettings(...))``.

    ``Conveyor(webhooks=[endpoint, ...])`` is the short form with default delivery options.
    ``max_attempts`` and ``retry`` drive the delivery jobs (exponential backoff, then the dead
    letter set); ``timeout`` bounds one HTTP request.

    Deliveries reach public addresses only: every host is resolved when a request is sent and
    the request goes to the address that was checked. ``allow_private_endpoints=True`` lets the
    operator's own ``endpoints`` reach loopback / private addresses (an internal receiver,
    local development); ``allow_private_callbacks=True`` does the same for tenants'
    ``callback_url`` and is meant for local development only (it re-opens SSRF).
    """

    endpoints: tuple[WebhookEndpoint, ...] = ()
    callback_secret: str | None = None
    allow_private_callbacks: bool = False
    allow_private_endpoints: bool = False
    max_attempts: int = 10
    retry: RetryPolicy = field(default_factory=lambda: DELIVERY_RETRY)
    timeout: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ConfigError("two webhook endpoints have the same name; give each a distinct name=")
        if self.callback_secret is not None:
            check_secret(self.callback_secret)
        if not self.allow_private_endpoints:
            for endpoint in self.endpoints:
                try:
                    check_url(endpoint.url)
                except ValueError as exc:
                    raise ConfigError(
                        f"webhook endpoint {endpoint.name!r} {exc} "
                        "(set allow_private_endpoints=True for an internal receiver)"
                    ) from None
        if self.max_attempts < 1:
            raise ConfigError("webhook max_attempts must be at least 1")
        if self.timeout <= 0:
            raise ConfigError("webhook timeout must be positive seconds")

    @classmethod
    def of(cls, value: WebhookSettings | Iterable[WebhookEndpoint]) -> WebhookSettings:
        return value if isinstance(value, WebhookSettings) else cls(endpoints=tuple(value))

    @property
    def callbacks(self) -> bool:
        return self.callback_secret is not None

    def allow_private(self, name: str) -> bool:
        """Whether deliveries to endpoint ``name`` may reach non-public addresses."""
        return self.allow_private_callbacks if name == CALLBACK else self.allow_private_endpoints

    def endpoint(self, name: str) -> WebhookEndpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)

    def secret_of(self, name: str) -> str | None:
        if name == CALLBACK:
            return self.callback_secret
        endpoint = self.endpoint(name)
        return endpoint.secret if endpoint else None
