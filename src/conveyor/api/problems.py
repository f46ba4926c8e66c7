"""RFC 9457 problem details: every error the service answers is ``application/problem+json``.

Routes raise ``ProblemError``; the handlers installed by ``install`` turn it, request
validation errors, unknown routes and any unexpected exception into a problem body, so no
traceback ever reaches a client. Only ``BackendUnavailable`` (the engine cannot be reached)
answers 503 + Retry-After; any other unexpected exception is a bug: a 500 whose traceback is
logged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.errors import BackendUnavailable, InvalidArguments

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:conveyor:problem:"
UNAVAILABLE_RETRY_AFTER = 5
log = logging.getLogger("conveyor.api")

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# The stable, machine-readable ``code`` of each problem ``type`` (docs/api.md lists them): SDK
# error mappers read ``code``; ``type`` is the same fact as a URN. Never rename one.
CODES = {
    "artifact-not-found": "ArtifactNotFound",
    "body-too-large": "BodyTooLarge",
    "engine-unavailable": "EngineUnavailable",
    "forbidden": "Forbidden",
    "idempotency-key-reused": "IdempotencyKeyReused",
    "internal-error": "InternalError",
    "invalid-arguments": "InvalidArguments",
    "invalid-json": "InvalidJson",
    "invalid-key": "InvalidApiKey",
    "invalid-request": "InvalidRequest",
    "job-finished": "JobFinished",
    "job-not-found": "JobNotFound",
    "not-dead-letter": "NotDeadLetter",
    "queue-full": "QueueFull",
    "request-timeout": "RequestTimeout",
    "too-many-streams": "TooManyStreams",
    "unauthenticated": "Unauthenticated",
    "unknown-queue": "UnknownQueue",
    "unknown-task": "UnknownTask",
    "unknown-dependency": "UnknownDependency",
    "workflow-not-found": "WorkflowNotFound",
    "workflow-finished": "WorkflowFinished",
    "invalid-batch": "InvalidBatch",
    "upload-not-found": "UploadNotFound",
    "upload-too-large": "UploadTooLarge",
    "unsupported-upload": "UnsupportedUpload",
}
# problems without a type of their own (an unknown route, a wrong method) get their status's code
STATUS_CODES = {
    400: "BadRequest",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    409: "Conflict",
    413: "BodyTooLarge",
    415: "UnsupportedMediaType",
    422: "InvalidRequest",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def code_of(status: int, kind: str | None) -> str:
    """The stable ``code`` of a problem."""
    return CODES.get(kind or "") or STATUS_CODES.get(status) or ("ClientError" if status < 500 else "ServerError")


class ProblemError(Exception):
    """Raise from a route to answer with a problem body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"{TYPE_BASE}{kind}" if kind else "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": code_of(status, kind),
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def unavailable(detail: str) -> ProblemError:
    return ProblemError(503, detail, kind="engine-unavailable", headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)})


INTERNAL_ERROR = "internal error; the server log has the details"


class CatchBugs:
    """Answer an unexpected exception with a logged 500 problem and keep the connection open.

    Starlette's catch-all handler re-raises after answering, so the server drops the keep-alive
    connection and a client that already reuses it sees a reset. This middleware sits inside
    the app's middleware stack and answers the 500 itself (the catch-all stays as a backstop
    for errors raised outside it). A response that already started cannot be replaced: that
    error propagates.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                raise
            log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            response = problem_response(500, INTERNAL_ERROR, kind="internal-error", instance=scope.get("path"))
            await response(scope, receive, send)


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """A validation error's location as a field path; list positions as ``[i]`` (``items[3].args.x``)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        parts = rest if where == "body" and rest else [where, *rest]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() and out else (f".{part}" if out else part)
    return out or "body"


def install(app: FastAPI) -> None:
    """Register the exception handlers that produce problem bodies."""

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.detail,
            kind=exc.kind,
            errors=exc.errors,
            headers=exc.headers,
            instance=request.url.path,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(err.get("type") == "json_invalid" for err in exc.errors()):
            # not JSON at all: a 400 (docs/api.md), not a field error with a made-up field name
            return problem_response(
                400, "the request body is not valid JSON", kind="invalid-json", instance=request.url.path
            )
        errors = []
        for err in exc.errors():
            message = "unknown field" if err.get("type") == "extra_forbidden" else str(err.get("msg", "invalid"))
            errors.append({"field": _field_of(err.get("loc", ())), "message": message})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(
            422, f"invalid request: {summary}", kind="invalid-request", errors=errors, instance=request.url.path
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(exc.status_code, detail, headers=headers, instance=request.url.path)

    @app.exception_handler(BackendUnavailable)
    async def on_unavailable(request: Request, exc: BackendUnavailable) -> JSONResponse:
        problem = unavailable(f"the job engine is unavailable: {exc}")
        return problem_response(503, problem.detail, kind=problem.kind, headers=problem.headers)

    @app.exception_handler(InvalidArguments)
    async def on_refused_value(request: Request, exc: InvalidArguments) -> JSONResponse:
        # A value the engine refused (out of range, not storable as text): the input's fault.
        errors = exc.errors or [{"field": "body", "message": str(exc)}]
        return problem_response(422, str(exc), kind="invalid-request", errors=errors, instance=request.url.path)

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        # A bug (ours, a task's model, or an engine error that is not an outage): 500, never 503,
        # so clients do not retry what cannot work; the traceback goes to the log, not the client.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(500, INTERNAL_ERROR, kind="internal-error", instance=request.url.path)
