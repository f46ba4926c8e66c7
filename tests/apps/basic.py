"""Test tasks that run unchanged on every engine: the engine URL comes from $CONVEYOR_URL.

Worker nodes started by the tests load ``tests.apps.basic:app``. The test process itself calls
``make_app(url)`` to get an app with the same task names bound to its own engine URL, to
enqueue and inspect jobs. Tasks that must behave differently per attempt read ``ctx.attempt``;
effects the test needs to count go to files under a directory the test passes in.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.types import RetryPolicy
from conveyor.worker import DoNotRetry

FAST_RETRY = RetryPolicy(base_delay=0.2, factor=2.0, max_delay=1.0, jitter=False)


def _die(how: str) -> None:
    """End this executor process the way a real bug or the OOM killer would."""
    if how == "exit":
        os._exit(3)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "segfault":
        ctypes.string_at(0)
    raise ValueError(f"unknown way to die: {how}")


def _append(path: str, line: str) -> None:
    with open(path, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def make_app(url: str | None = None, results: str | None = None) -> Conveyor:
    app = Conveyor(url, result_store=results)

    @app.task(name="basic.add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="basic.sleep", retry=FAST_RETRY)
    def sleep(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @app.task(name="basic.sleep_coop", retry=FAST_RETRY)
    def sleep_coop(seconds: float, ctx: JobContext, log: str | None = None) -> str:
        """Sleeps in small steps and stops at a safe point when canceled; logs its pid to ``log``."""
        if log:
            _append(log, f"{ctx.job_id} {ctx.attempt} {os.getpid()}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ctx.raise_if_cancelled()
            time.sleep(0.02)
        return "done"

    @app.task(name="basic.whoami", retry=FAST_RETRY)
    def whoami(seconds: float, ctx: JobContext, done: str | None = None) -> dict[str, Any]:
        """Sleeps, then reports which node and process ran it; appends that node's id to ``done``.

        ``done`` tells a test that an executor has finished the job, even one whose supervisor
        is frozen and so cannot report it yet.
        """
        time.sleep(seconds)
        if done:
            _append(done, str(ctx.job.worker_id))
        return {"worker": ctx.job.worker_id, "pid": os.getpid(), "attempt": ctx.attempt}

    @app.task(name="basic.wait_for_file", retry=FAST_RETRY)
    def wait_for_file(path: str, log: str | None = None, ctx: JobContext | None = None) -> int:
        """Blocks until ``path`` exists (uncooperative: ignores cancel); logs each start to ``log``."""
        if log and ctx is not None:
            _append(log, f"{ctx.job_id} {ctx.attempt} {os.getpid()}")
        while not os.path.exists(path):
            time.sleep(0.02)
        return ctx.attempt if ctx is not None else 0

    @app.task(name="basic.crash", retry=FAST_RETRY)
    def crash(how: str, until_attempt: int, ctx: JobContext) -> int:
        """Kills its own executor on every attempt before ``until_attempt``."""
        if ctx.attempt < until_attempt:
            _die(how)
        return ctx.attempt

    @app.task(name="basic.poison", max_attempts=3, retry=FAST_RETRY)
    def poison(how: str = "sigkill") -> None:
        _die(how)

    @app.task(name="basic.flaky", retry=FAST_RETRY, max_attempts=5)
    def flaky(fail_times: int, ctx: JobContext) -> int:
        if ctx.attempt <= fail_times:
            raise ValueError(f"flaky failure on attempt {ctx.attempt}")
        return ctx.attempt

    @app.task(name="basic.needs_file", retry=FAST_RETRY, max_attempts=3)
    def needs_file(path: str) -> str:
        """Fails until ``path`` exists: a job that needs a human (then a redrive)."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing")
        return Path(path).read_text()

    @app.task(name="basic.fatal", retry=FAST_RETRY, max_attempts=5)
    def fatal(message: str) -> None:
        raise DoNotRetry(message)

    @app.task(name="basic.unserializable")
    def unserializable() -> Any:
        return object()

    @app.task(name="basic.progress_artifact")
    def progress_artifact(text: str, ctx: JobContext) -> dict[str, Any]:
        ctx.progress(0.5, "half way")
        artifact = ctx.save_artifact("out.txt", text.encode(), "text/plain")
        return {"size": artifact.size}

    @app.task(name="basic.once_effect", retry=FAST_RETRY)
    def once_effect(path: str, ctx: JobContext) -> int:
        """Records a side effect once, then fails the first attempt: the retry must skip it."""
        ctx.once("charge", lambda: _append(path, f"charged {ctx.job_id} on attempt {ctx.attempt}"))
        if ctx.attempt == 1:
            raise RuntimeError("failed after the effect")
        return ctx.attempt

    @app.task(name="basic.async_sleep", retry=FAST_RETRY)
    async def async_sleep(seconds: float) -> dict[str, float]:
        start = time.time()
        await asyncio.sleep(seconds)
        return {"start": start, "end": time.time(), "pid": os.getpid()}

    @app.task(name="basic.async_progress")
    async def async_progress(ctx: JobContext) -> int:
        await ctx.progress_async(0.25, "a quarter")
        return ctx.attempt

    # -- workflows (tests/worker/test_workflows.py) ---------------------------------------------

    @app.task(name="basic.wf_value")
    def wf_value(value: Any) -> Any:
        return value

    @app.task(name="basic.wf_collect")
    def wf_collect(ctx: JobContext, log: str | None = None) -> dict[str, Any]:
        """What a sync step sees of its dependencies; logs each run to ``log``."""
        if log:
            _append(log, ctx.job_id)
        return {"results": ctx.results, "dependencies": [d.to_record() for d in ctx.dependencies]}

    @app.task(name="basic.wf_collect_async")
    async def wf_collect_async(ctx: JobContext) -> dict[str, Any]:
        """What an async step sees of its dependencies."""
        return {"results": ctx.results, "dependencies": [d.to_record() for d in ctx.dependencies]}

    @app.task(name="basic.wf_chunk")
    def wf_chunk(items: list[int], ctx: JobContext) -> int:
        ctx.progress(1.0, f"{len(items)} items")
        return sum(items)

    @app.task(name="basic.wf_sum")
    def wf_sum(ctx: JobContext, log: str | None = None) -> int:
        """The fan-in of wf_chunk: the sum of every chunk's sum; logs each run to ``log``."""
        if log:
            _append(log, ctx.job_id)
        return sum(d.result for d in ctx.dependencies if d.succeeded)

    @app.task(name="basic.wf_spawn")
    def wf_spawn(n: int, chunk_size: int, ctx: JobContext, log: str | None = None) -> str:
        """Fans out range(n) in chunks with a wf_sum fan-in, from inside a task; returns the workflow id."""
        then = wf_sum.s(log=log).set(step="total")
        return ctx.spawn_chunks(wf_chunk, list(range(n)), chunk_size=chunk_size, then=then).id

    return app


app = make_app()
