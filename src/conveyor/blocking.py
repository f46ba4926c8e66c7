"""Sync twins of async methods: each operation is written once, as a coroutine.

``Conveyor`` and ``JobContext`` offer every operation twice (``app.get`` for scripts, Django
views and executor processes; ``await app.get_async`` for asyncio code). Writing both bodies
by hand is how twins drift apart, so only the async one is written and the sync one is
declared from it::

    async def get_async(self, job_id: str) -> Job | None: ...
    get = blocking(get_async)

The twin keeps the signature (mypy sees ``get(job_id: str) -> Job | None``) and the docstring,
and runs the coroutine on the owner's portal loop (``_sync``), a private event loop thread, so
it works with or without a running loop in the calling thread.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

__all__ = ["Blocking", "blocking"]


class Blocking(Protocol):
    """An owner of a portal: runs ``make()`` on it and waits for the result."""

    def _sync(self, make: Callable[[], Awaitable[T]]) -> T: ...


S = TypeVar("S", bound=Blocking)


def blocking(method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]]) -> Callable[Concatenate[S, P], R]:
    """The sync twin of ``method`` (named without its ``_async`` suffix), run on ``self``'s portal.

    The coroutine is created on the portal thread, only once it is about to run, so a portal
    that cannot start leaves no never-awaited coroutine behind.
    """

    @functools.wraps(method)
    def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._sync(lambda: method(self, *args, **kwargs))

    twin.__name__ = method.__name__.removesuffix("_async")
    twin.__qualname__ = method.__qualname__.removesuffix("_async")
    return twin
