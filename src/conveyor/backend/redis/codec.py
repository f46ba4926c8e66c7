"""Turn Redis hashes into Jobs and requests into the JSON the enqueue script reads."""

from __future__ import annotations

from typing import Any

from conveyor import serde
from conveyor.backend.protocol import EnqueueRequest
from conveyor.types import Artifact, Job, JobState, RetryPolicy, new_job_id


def _float(value: str | None) -> float | None:
    return None if value is None or value == "" else float(value)


def _int(value: str | None, default: int = 0) -> int:
    return default if value is None or value == "" else int(float(value))


def pairs(flat: list[str]) -> dict[str, str]:
    """A flat HGETALL reply ``[k1, v1, k2, v2, ...]`` as a dict."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def job_from_hash(h: dict[str, str]) -> Job:
    return Job(
        id=h["id"],
        task=h["task"],
        queue=h["queue"],
        tenant=h["tenant"],
        args=serde.loads(h["args"]),
        state=JobState(h["state"]),
        priority=_int(h.get("priority")),
        attempts=_int(h.get("attempts")),
        max_attempts=_int(h.get("max_attempts"), 3),
        timeout=_float(h.get("timeout")),
        retry=RetryPolicy.from_dict(serde.loads(h.get("retry"))),
        run_at=float(h["run_at"]),
        created_at=float(h["created_at"]),
        updated_at=float(h["updated_at"]),
        started_at=_float(h.get("started_at")),
        finished_at=_float(h.get("finished_at")),
        lease_token=h.get("lease_token"),
        lease_expires_at=_float(h.get("lease_expires_at")),
        worker_id=h.get("worker_id"),
        progress=_float(h.get("progress")),
        progress_message=h.get("progress_message"),
        result=serde.loads(h.get("result")),
        error=serde.loads(h.get("error")),
        idempotency_key=h.get("idempotency_key"),
        depends_on=serde.loads(h.get("depends_on") or "[]"),
        artifacts=[Artifact.from_dict(a) for a in serde.loads(h.get("artifacts") or "[]")],
        callback_url=h.get("callback_url"),
    )


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
    }
    optional = {
        "timeout": req.timeout,
        "run_at": req.run_at,
        "delay": req.delay,
        "ikey": req.idempotency_key,
        "max_depth": req.max_depth,
        "callback_url": req.callback_url,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    return out
