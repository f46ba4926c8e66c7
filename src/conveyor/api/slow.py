"""Slow and greedy clients: cut off dripped headers and bodies, cap event streams per key.

A client that sends one byte every few seconds keeps a connection (and, once the request
started, a task) forever: uvicorn's keep-alive timer is reset by every byte and it has no
header timeout. Three limits, each with its ``conveyor serve`` option:

* ``header_protocol(seconds)``: a uvicorn HTTP protocol that closes a connection whose request
  line and headers are not complete ``seconds`` after the connection opened or the previous
  response ended (``--header-timeout``);
* ``BodyTimeout``: a request body must arrive completely within ``seconds`` of the request's
  start, else 408 and the connection is closed (``--body-timeout``);
* ``StreamSlots``: at most ``limit`` concurrent ``/events`` streams per API key, 429 with
  ``Retry-After`` above it (``--max-streams-per-key``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api import problems

if TYPE_CHECKING:
    from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_STREAMS_PER_KEY = 20
STREAM_RETRY_AFTER = 5


def header_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header deadline (pass as ``uvicorn.run(http=...)``)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol  # only the server needs uvicorn

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _waiting_cycle: Any = None

        def _arm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._waiting_cycle = self.cycle
            self._header_timer = self.loop.call_later(seconds, self._header_deadline)

        def _header_deadline(self) -> None:
            self._header_timer = None
            # no new request cycle began since the timer was armed: the headers are still incomplete
            if self.cycle is self._waiting_cycle and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


class BodyTimeout:
    """Answer 408 (and so close the connection) when a body is not complete ``seconds`` after the
    request began, however steadily its bytes drip in."""

    def __init__(self, app: ASGIApp, seconds: float, longer: dict[str, float] | None = None) -> None:
        self.app = app
        self.seconds = seconds
        self.longer = longer or {}
        """Paths whose bodies may take longer (uploads: ``--upload-timeout``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seconds = self.longer.get(scope.get("path", ""), self.seconds)
        deadline = time.monotonic() + seconds
        done = False
        started = False
        answered = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 408 went out; whatever the app answers to the aborted read is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def timed() -> Message:
            nonlocal done, answered
            if done:
                return await receive()  # after the body: only the disconnect notice, no deadline
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                if not started:
                    # answered here: FastAPI turns any error while reading a body into a 400
                    response = problems.problem_response(
                        408,
                        f"the request body did not arrive within {seconds:g} seconds",
                        kind="request-timeout",
                        headers={"Connection": "close"},
                    )
                    await response(scope, receive, send)
                    answered = True
                raise BodyTimedOut from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        try:
            await self.app(scope, timed, guarded)
        except BodyTimedOut:
            if not answered:
                raise
        except Exception:
            if not answered:
                raise


class BodyTimedOut(Exception):
    """Raised into the app when its request body is late (the 408 is already sent)."""


class StreamSlots:
    """Counts the open event streams of each API key in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def take(self, key: str) -> None:
        """Take a slot for ``key`` or raise a 429 ProblemError."""
        if self.open[key] >= self.limit:
            raise problems.ProblemError(
                429,
                f"this API key already has {self.limit} open event streams; close one or poll the job instead",
                kind="too-many-streams",
                headers={"Retry-After": str(STREAM_RETRY_AFTER)},
            )
        self.open[key] += 1

    def give_back(self, key: str) -> None:
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]
