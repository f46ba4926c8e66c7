"""The supervisor's handle on one executor child process.

The handle watches the child's pipe with ``loop.add_reader`` (no threads): a message completes
the pending boot or job, end-of-file means the child died. A job is stopped cooperatively
first (the shared ``stop_flag`` that ``ctx.cancelled`` reads) and then by SIGKILL, so a stuck
or uncooperative task never outlives its cancel, lease or time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from conveyor import serde
from conveyor.dependencies import Dependency
from conveyor.types import Job
from conveyor.worker.child import child_main
from conveyor.worker.codec import Outcome, error_dict, job_to_dict
from conveyor.worker.stop import NO_STOP_FLAG, StopReason

BOOT_TIMEOUT = 120.0


class ExecutorBootError(Exception):
    """The child could not load the app."""


class ExecutorDied(Exception):
    """The child process ended while the supervisor was waiting on it."""


def describe_exit(exitcode: int | None) -> str:
    """Human cause of a child's death: ``killed by SIGSEGV`` or ``exited with code 3``."""
    if exitcode is None:
        return "died (exit status unknown)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}"
    return f"exited with code {exitcode}"


class Executor:
    """One child process that runs sync jobs one at a time."""

    def __init__(self, app_spec: str, mp: SpawnContext, on_death: Callable[[Executor], None]) -> None:
        self.app_spec = app_spec
        self._mp = mp
        self._on_death = on_death
        self.conn, child_conn = mp.Pipe(duplex=True)
        self.stop_flag: Any = mp.Value("i", NO_STOP_FLAG, lock=False)
        self.process: SpawnProcess = mp.Process(
            target=child_main,
            args=(app_spec, child_conn, self.stop_flag, os.getpid()),
            name="conveyor-executor",
            daemon=True,
        )
        self._child_conn = child_conn
        self._ready: asyncio.Future[int] | None = None
        self._result: asyncio.Future[dict[str, Any]] | None = None
        self.dead = False
        self.busy = False

    @property
    def pid(self) -> int | None:
        return self.process.pid

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the child and wait until it has loaded the app."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self.process.start()
        self._child_conn.close()  # our copy; EOF on our end then means the child is gone
        loop.add_reader(self.conn.fileno(), self._on_readable)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), BOOT_TIMEOUT)
        except BaseException:
            await self.kill()
            raise

    def _on_readable(self) -> None:
        try:
            while self.conn.poll():
                self._dispatch(serde.loads(self.conn.recv_bytes()))
        except (EOFError, OSError):
            self._mark_dead()

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(int(message.get("pid", 0)))
        elif op == "boot_error" and self._ready is not None and not self._ready.done():
            self._ready.set_exception(ExecutorBootError(str(message.get("message"))))
        elif op == "result" and self._result is not None and not self._result.done():
            self._result.set_result(message)

    def _mark_dead(self) -> None:
        if self.dead:
            return
        self.dead = True
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
        for fut in (self._ready, self._result):
            if fut is not None and not fut.done():
                fut.set_exception(ExecutorDied())
                fut.exception()  # mark retrieved: nobody may be waiting on it
        self._on_death(self)

    async def exit_cause(self) -> str:
        """Wait (briefly) for the dead child to be reaped and describe how it ended."""
        for _ in range(500):
            if self.process.exitcode is not None:
                break
            await asyncio.sleep(0.01)
        return describe_exit(self.process.exitcode)

    async def kill(self) -> None:
        """SIGKILL the child and wait until it is gone."""
        if self.process.pid is not None and self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        for _ in range(500):
            if self.process.pid is None or self.process.exitcode is not None:
                break
            await asyncio.sleep(0.01)
        self._mark_dead()
        self.conn.close()

    async def close(self) -> None:
        """Ask an idle child to exit; kill it if it does not."""
        if self.process.pid is None:  # never started (boot backoff): nothing to stop
            self._child_conn.close()
        elif not self.dead:
            with contextlib.suppress(OSError):
                self.conn.send_bytes(b'{"op":"exit"}')
            for _ in range(200):
                if self.process.exitcode is not None:
                    break
                await asyncio.sleep(0.01)
        await self.kill()

    # -- jobs ---------------------------------------------------------------------------------

    async def run(
        self,
        job: Job,
        stopped: asyncio.Event,
        stop_reason: Callable[[], StopReason | None],
        stop_grace: float,
        dependencies: Sequence[Dependency] = (),
    ) -> Outcome:
        """Run ``job`` in the child; honour its time limit and a stop request.

        A stop the task is told about (cancel, lost lease) sets the child's stop flag and
        waits up to ``stop_grace`` for the task to return; anything else kills the child.
        """
        loop = asyncio.get_running_loop()
        self._result = result = loop.create_future()
        self.stop_flag.value = NO_STOP_FLAG  # cleared before the job is sent, so no stale stop
        try:
            message = {"op": "run", "job": job_to_dict(job), "dependencies": [d.to_record() for d in dependencies]}
            self.conn.send_bytes(serde.dumps(message).encode())
        except OSError:
            self._mark_dead()
        stop_wait = asyncio.ensure_future(stopped.wait())
        try:
            await asyncio.wait({result, stop_wait}, timeout=job.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        if result.done():
            return await self._outcome_of(result)
        if stopped.is_set():
            reason = stop_reason() or StopReason.SHUTDOWN
            if reason.tells_task and stop_grace > 0:
                self.stop_flag.value = reason.flag
                await asyncio.wait({result}, timeout=reason.grace(stop_grace))
            if not result.done() or result.exception() is not None:
                await self.kill()
            return Outcome("stopped")
        await self.kill()
        timeout = job.timeout or 0
        return Outcome("timeout", error=error_dict("TimeLimitExceeded", f"timed out after {timeout:g} s"))

    async def _outcome_of(self, result: asyncio.Future[dict[str, Any]]) -> Outcome:
        if result.exception() is not None:
            cause = await self.exit_cause()
            return Outcome("died", error=error_dict("ExecutorDied", f"executor process {cause}"))
        message = result.result()
        if message.get("ok"):
            return Outcome("succeeded", result=message.get("result"))
        after = message.get("retry_after")
        retryable = bool(message.get("retryable", True))
        return Outcome("error", error=message.get("error"), retryable=retryable, retry_after=after)
