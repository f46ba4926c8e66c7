"""What an application configures: the endpoints to notify, and how deliveries are retried.

Secrets stay in the application's configuration (code or environment), never in the engine:
a delivery job stores only the endpoint's name, and the worker that runs it looks the secret
up in its own copy of the app. Per-submit callbacks (``callback_url`` on ``POST /v1/jobs``) are
signed with ``callback_secret``; they are refused while it is unset.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from conveyor.errors import ConfigError
from conveyor.types import RetryPolicy

EVENTS = ("job.succeeded", "job.failed", "job.canceled")
CALLBACK = "callback"
"""Endpoint name of per-submit callbacks (reserved)."""
MAX_URL_LENGTH = 2048
DELIVERY_RETRY = RetryPolicy(base_delay=5.0, factor=2.0, max_delay=3600.0, jitter=True)


def check_url(url: str, *, allow_private: bool = True) -> str:
    """Return ``url`` if it is an absolute http(s) URL Conveyor may POST to; raise ValueError.

    With ``allow_private=False`` a literal loopback, private or link-local IP address is refused
    (a tenant must not make the worker call the cloud metadata service or an internal admin
    port). Host names are not resolved here, see docs/webhooks.md.
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
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if host == "localhost" or (
            address is not None
            and (address.is_private or address.is_loopback or address.is_link_local or address.is_unspecified)
        ):
            raise ValueError("must not point at a loopback, private or link-local address")
    return url


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
            check_url(self.url)
        except ValueError as exc:
            raise ConfigError(f"webhook url {self.url!r} {exc}") from None
        check_secret(self.secret)
        unknown = set(self.events) - set(EVENTS)
        if unknown or not self.events:
            raise ConfigError(f"webhook events must be among {', '.join(EVENTS)}; got {sorted(unknown) or 'none'}")
        object.__setattr__(self, "events", tuple(self.events))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if not self.name:
            object.__setattr__(self, "name", self.url)
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
    """

    endpoints: tuple[WebhookEndpoint, ...] = ()
    callback_secret: str | None = None
    allow_private_callbacks: bool = False
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

    def endpoint(self, name: str) -> WebhookEndpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)

    def secret_of(self, name: str) -> str | None:
        if name == CALLBACK:
            return self.callback_secret
        endpoint = self.endpoint(name)
        return endpoint.secret if endpoint else None
