"""Turn Redis hashes into Jobs and requests into the JSON the enqueue script reads."""

from __future__ import annotations

from typing import Any

from conveyor import serde
from conveyor.backend.limits import limit_columns
from conveyor.backend.protocol import EnqueueRequest
from conveyor.records import job_from_record
from conveyor.types import Job, new_job_id

LIMIT_FIELDS = {
    "concurrency_key": "ckey",
    "concurrency_limit": "climit",
    "rate_key": "rkey",
    "rate_limit": "rlimit",
    "rate_period": "rperiod",
    "unique_key": "ukey",
}
"""The limit fields of a request and their names in the enqueue script's JSON (enqueue.lua)."""


def pairs(flat: list[str]) -> dict[str, str]:
    """A flat HGETALL reply ``[k1, v1, k2, v2, ...]`` as a dict."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def job_from_hash(h: dict[str, str]) -> Job:
    """A job hash (every value a string) as a Job: the shared mapping of ``conveyor.records``."""
    return job_from_record(h, encoded=True)


def job_from_flat(flat: list[str]) -> Job:
    return job_from_hash(pairs(flat))


def encode_request(req: EnqueueRequest) -> dict[str, Any]:
    """One request as the enqueue script expects it; None values are left out (Lua has no null)."""
    deps = list(dict.fromkeys(req.depends_on))
    out: dict[str, Any] = {
        "id": req.job_id or new_job_id(),
        "task": req.task,
        "queue": req.queue,
        "tenant": req.tenant,
        "args": serde.dumps(req.args),
        "priority": req.priority,
        "max_attempts": req.max_attempts,
        "retry": serde.dumps(req.retry.to_dict()),
        "deps": deps,
        "deps_json": serde.dumps(deps),
        "digest": serde.payload_hash(req.task, req.args),
        "ittl": req.idempotency_ttl,
        "policy": req.on_dependency_failure.value,
    }
    optional = {
        "timeout": req.timeout,
        "run_at": req.run_at,
        "delay": req.delay,
        "ikey": req.idempotency_key,
        "max_depth": req.max_depth,
        "callback_url": req.callback_url,
        "workflow_id": req.workflow_id,
        "step": req.step,
        "quorum": req.quorum,
        "trace_context": None if req.trace_context is None else serde.dumps(req.trace_context),
        **{LIMIT_FIELDS[name]: value for name, value in limit_columns(req).items()},
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out
