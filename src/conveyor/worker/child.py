"""The executor child process: loads the app once, then runs sync jobs one at a time.

Started with the multiprocessing *spawn* context, so it never inherits the supervisor's
event loop, threads or engine connections. Jobs arrive and results leave as JSON over a pipe;
nothing is pickled. The supervisor stops a job by setting ``stop_flag`` (a cooperative task
sees it through ``ctx.cancelled``) and, if the task does not return soon, by killing this
process. The child dies with its supervisor (PR_SET_PDEATHSIG), so a SIGKILLed node leaves no
orphan still running task code.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import pydantic

from conveyor import serde
from conveyor.app import Conveyor, load_app
from conveyor.context import JobContext
from conveyor.dependencies import Dependency
from conveyor.types import Job
from conveyor.worker.codec import error_dict, job_from_dict
from conveyor.worker.errors import DoNotRetry, RetryAfter
from conveyor.worker.stop import StopReason

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - exotic libc
            pass
    if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
        os._exit(1)


def _send(conn: Connection, message: dict[str, Any]) -> None:
    conn.send_bytes(serde.dumps(message).encode())


def _failure(exc: BaseException, retryable: bool) -> dict[str, Any]:
    tb = "".join(traceback.format_exception(exc))
    return {"op": "result", "ok": False, "retryable": retryable, "error": error_dict(type(exc).__name__, str(exc), tb)}


def run_job(app: Conveyor, job: Job, stop_flag: Any, dependencies: Sequence[Dependency] = ()) -> dict[str, Any]:
    """Run one job's task function; return the result message for the supervisor."""
    task = app.tasks.get(job.task)
    if task is None:
        return {
            "op": "result",
            "ok": False,
            "retryable": True,
            "error": error_dict("UnknownTask", f"task {job.task!r} is not registered in this worker's app"),
        }
    ctx = JobContext(app, job, lambda: StopReason.from_flag(stop_flag.value), dependencies)
    try:
        try:
            kwargs = task.bind(job.args)
        except pydantic.ValidationError as exc:
            return _failure(exc, retryable=False)
        if task.takes_context:
            kwargs["ctx"] = ctx
        try:
            value = task.fn(**kwargs)
        except DoNotRetry as exc:
            return _failure(exc, retryable=False)
        except RetryAfter as exc:
            return {**_failure(exc, retryable=True), "retry_after": exc.seconds}
        except (Exception, SystemExit) as exc:
            return _failure(exc, retryable=True)
        try:
            serde.dumps(value)
        except TypeError as exc:
            return {
                "op": "result",
                "ok": False,
                "retryable": False,
                "error": error_dict("ResultNotSerializable", f"task returned a value JSON cannot hold: {exc}"),
            }
        return {"op": "result", "ok": True, "result": value}
    finally:
        ctx.cleanup()


def child_main(app_spec: str, conn: Connection, stop_flag: Any, parent_pid: int) -> None:
    """Entry point of an executor process (the target given to multiprocessing)."""
    _die_with_parent(parent_pid)
    # Ctrl-C and a process-group SIGTERM are for the supervisor, which drains and kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        app = load_app(app_spec)
    except BaseException as exc:
        _send(conn, {"op": "boot_error", "message": f"{type(exc).__name__}: {exc}"})
        return
    _send(conn, {"op": "ready", "pid": os.getpid()})
    try:
        while True:
            try:
                message = serde.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return  # the supervisor is gone
            if message.get("op") != "run":
                return
            dependencies = [Dependency.from_record(d) for d in message.get("dependencies") or []]
            _send(conn, run_job(app, job_from_dict(message["job"]), stop_flag, dependencies))
    finally:
        app.close()
