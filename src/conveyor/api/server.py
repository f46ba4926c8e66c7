"""The ASGI app factory: ``create_app(conveyor)`` returns the job service as a FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api import (
    docs_page,
    events,
    metrics,
    problems,
    routes_fleet,
    routes_jobs,
    routes_ops,
    routes_uploads,
    routes_workflows,
    workflow_events,
)
from conveyor.api.auth import Authenticator
from conveyor.api.deps import Service, ServiceConfig
from conveyor.api.openapi_tasks import submit_schemas
from conveyor.api.routes_jobs import declared_queues
from conveyor.api.schemas import Problem
from conveyor.api.slow import BodyTimeout
from conveyor.app import Conveyor
from conveyor.metrics import HTTP_REQUESTS

DESCRIPTION = """Submit background jobs, follow them to the end, fetch their results.

Long-running operations follow Azure's guidelines: `POST /v1/jobs` answers `202 Accepted` with
`Location`/`Operation-Location` and `Retry-After`; poll the job until its `status` is terminal,
or stream `GET /v1/jobs/{id}/events`. Errors are `application/problem+json` (RFC 9457).
"""


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not Content-Length is sent.

    Paths in ``exempt`` (uploads) enforce a limit of their own while they stream the body.
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                response = problems.problem_response(
                    413, f"request body is larger than {self.limit} bytes", kind="body-too-large"
                )
                await response(scope, receive, send)
                return
        seen = 0
        over = started = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise problems.ProblemError(
                        413, f"request body is larger than {self.limit} bytes", kind="body-too-large"
                    )
            return message

        async def guarded(message: Message) -> None:
            # FastAPI turns any error while reading the body into its own 400: once the body is
            # over the limit, that answer is dropped and the 413 below is sent instead
            nonlocal started
            if over and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except problems.ProblemError:
            if not over or started:
                raise
        if over and not started:
            response = problems.problem_response(
                413, f"request body is larger than {self.limit} bytes", kind="body-too-large"
            )
            await response(scope, receive, send)


DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
ARTIFACT_CSP = "default-src 'none'; sandbox"


class SecurityHeaders:
    """``nosniff`` on every answer; a strict CSP and ``X-Frame-Options: DENY`` on dashboard pages
    (no framing: clickjacking), and a sandboxing CSP on artifacts, whose bytes are a tenant's
    (an HTML artifact must not run script on this origin)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = [(b"x-content-type-options", b"nosniff")]
        if path.startswith("/dashboard"):
            extra += [
                (b"content-security-policy", DASHBOARD_CSP.encode()),
                (b"x-frame-options", b"DENY"),
                (b"referrer-policy", b"no-referrer"),
            ]
        elif "/artifacts/" in path:
            extra += [(b"content-security-policy", ARTIFACT_CSP.encode())]

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *((n, v) for n, v in extra if n not in names)]
            await send(message)

        await self.app(scope, receive, add)


class RequestCounter:
    """Counts requests by route template and status (bounded label set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()


def _is_health(content: dict[str, Any]) -> bool:
    schema = content.get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/Health")


def _problem_openapi(app: FastAPI, conveyor: Conveyor) -> dict[str, Any]:
    """The generated document, with every 4xx/5xx body typed as application/problem+json and
    the submit body as one schema per task (``openapi_tasks``)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    submit = doc.get("paths", {}).get("/v1/jobs", {}).get("post")
    if submit is not None and "SubmitRequest" in schemas:
        body = submit_schemas(conveyor, schemas["SubmitRequest"], schemas, declared_queues(conveyor))
        submit["requestBody"]["content"]["application/json"]["schema"] = body
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    ref = {"$ref": "#/components/schemas/Problem"}
    for methods in doc.get("paths", {}).values():
        for op in methods.values():
            if "requestBody" in op:
                op["responses"].setdefault("400", {"description": "The body is not valid JSON"})
            for code, response in op.get("responses", {}).items():
                content = response.get("content", {})
                if not code.isdigit() or int(code) < 400 or _is_health(content):
                    continue
                if problems.PROBLEM_JSON not in content or "application/json" in content:
                    response["content"] = {problems.PROBLEM_JSON: {"schema": ref}}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = doc
    return doc


def create_app(
    conveyor: Conveyor,
    *,
    auth: bool = True,
    config: ServiceConfig | None = None,
    dashboard: bool = True,
) -> FastAPI:
    """The job service for ``conveyor``. ``auth=False`` serves everyone as an admin (explicit opt-out).

    API keys are checked against the engine of the jobs (``conveyor keys create`` stores them).
    """
    svc = Service(conveyor, Authenticator(conveyor.backend if auth else None), config or ServiceConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await conveyor.aclose()

    app = FastAPI(
        title="Conveyor job service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url=None,  # docs_page serves /docs from packaged assets (no CDN)
        redoc_url=None,
    )
    app.state.service = svc
    problems.install(app)
    docs_page.install(app, "/v1/openapi.json")
    app.include_router(routes_workflows.router)  # before the jobs routes: /v1/jobs:batch is not a job id
    app.include_router(routes_jobs.router)
    app.include_router(workflow_events.router)
    app.include_router(events.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_uploads.router)
    app.include_router(routes_ops.health)
    app.include_router(routes_fleet.router)
    app.include_router(metrics.router)
    if dashboard:
        from conveyor.dashboard import router as dashboard_router

        app.include_router(dashboard_router)
    app.openapi = lambda: _problem_openapi(app, conveyor)  # type: ignore[method-assign]

    async def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(app.openapi())

    # the conventional address too, where generic tools look first
    app.add_route("/openapi.json", openapi_json, include_in_schema=False)
    app.add_middleware(problems.CatchBugs)
    uploads = frozenset({routes_uploads.UPLOAD_PATH})
    app.add_middleware(BodyLimit, limit=svc.config.max_body, exempt=uploads)
    app.add_middleware(
        BodyTimeout, seconds=svc.config.body_timeout, longer={routes_uploads.UPLOAD_PATH: svc.config.upload_timeout}
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestCounter)
    return app
