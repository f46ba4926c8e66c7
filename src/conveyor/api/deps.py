"""What every route needs: the service settings, the engine, the caller, and the OpenAPI shapes
of problem responses and headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from conveyor.api.auth import Authenticator, Principal, require
from conveyor.api.problems import PROBLEM_JSON
from conveyor.api.slow import StreamSlots
from conveyor.app import Conveyor
from conveyor.backend.protocol import Backend
from conveyor.group_commit import GroupCommit

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_UPLOAD = 5 * 1024**3


@dataclass
class ServiceConfig:
    """Settings of one API process (``conveyor serve`` options)."""

    max_body: int = DEFAULT_MAX_BODY
    drain_window: float = 60.0
    """Seconds of recent completions used to estimate a full queue's Retry-After."""
    sse_poll: float = 0.25
    """How often an event stream looks for new events of its job."""
    sse_keepalive: float = 10.0
    body_timeout: float = 30.0
    """Seconds a request body may take to arrive in full (408 after)."""
    max_streams_per_key: int = 20
    """Concurrent event streams one API key may hold in this process (429 above)."""
    public_url: str | None = None
    """Base URL clients reach this service at (``serve --public-url``), for absolute Location headers."""
    max_upload: int = DEFAULT_MAX_UPLOAD
    """Largest file ``POST /v1/uploads`` accepts, in bytes (``serve --max-upload``)."""
    upload_timeout: float = 3600.0
    """Seconds an upload's body may take to arrive in full (``serve --upload-timeout``)."""


@dataclass
class Service:
    conveyor: Conveyor
    auth: Authenticator
    config: ServiceConfig
    streams: StreamSlots = field(init=False)
    submits: GroupCommit = field(init=False)
    """Concurrent submits of this process share commits (``conveyor.group_commit``)."""

    def __post_init__(self) -> None:
        self.streams = StreamSlots(self.config.max_streams_per_key)
        self.submits = GroupCommit(self.backend)

    async def backend(self) -> Backend:
        return await self.conveyor.backend()


def service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer cvk_...`")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key in a header")


def scope(name: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the caller and requires ``name`` (admin implies all)."""

    async def check(request: Request, _b: Any = Depends(_bearer), _h: Any = Depends(_header_key)) -> Principal:
        principal = await service(request).auth.principal(request)
        return require(principal, name)

    check.__name__ = f"require_{name}"
    return check


def problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI response entry whose body is a Problem."""
    entry: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        entry["headers"] = headers
    return entry


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem(
        "No API key, or an invalid or revoked one",
        {"WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}}},
    ),
    403: problem("The API key lacks the scope this route needs"),
}
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    422: problem("Invalid request parameters, with one entry per bad field in `errors`"),
    503: problem("The job engine is unreachable or failing; retry after Retry-After", RETRY_AFTER),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("No such job for this tenant")}
