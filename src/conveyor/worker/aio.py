"""Two asyncio races the supervisor runs everywhere: first-of-several, and acquire-unless-stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def first_of(*aws: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of several coroutines finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def acquire_unless_stopped(
    acquire: Awaitable[T],
    stopped: asyncio.Event,
    give_back: Callable[[T], None],
) -> T | None:
    """A slot from ``acquire``, or None if ``stopped`` is set first.

    A job waiting for an executor or an async slot must not start once it was stopped
    (canceled, lease lost, handed back): the wait is abandoned, and a slot that arrives
    anyway (in the same loop pass as the stop, or just as the wait was canceled) is given
    back with ``give_back`` so it is never leaked.
    """
    acquiring = asyncio.ensure_future(acquire)
    stop_wait = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({acquiring, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _abandon(acquiring, give_back)
        raise
    finally:
        stop_wait.cancel()
    if not acquiring.done():
        await _abandon(acquiring, give_back)
        return None
    if acquiring.cancelled():
        return None
    slot = acquiring.result()
    if stopped.is_set():  # stopped in the same loop pass as the slot came free: do not start
        give_back(slot)
        return None
    return slot


async def _abandon(acquiring: asyncio.Future[T], give_back: Callable[[T], None]) -> None:
    acquiring.cancel()
    await asyncio.wait({acquiring})
    if not acquiring.cancelled() and acquiring.exception() is None:
        give_back(acquiring.result())  # obtained just as the wait was canceled
