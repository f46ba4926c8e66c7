"""The Redis engine: every state transition is one Lua script, times come from Redis TIME.

Jobs are hashes, the claim path is one sorted set per queue, leases one sorted set by expiry,
history one sorted set per job keyed by a global INCR sequence (layout: keys.py and
docs/operations-redis.md). One instance is bound to the event loop that opened it (the app
keeps one per loop). Every connection error becomes BackendUnavailable; a call whose answer
was lost is retried once with the same call id, and a state-changing script answers the retry
from the reply it stored under that id (scripts.py), so a retry never double-applies.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from conveyor import serde, states
from conveyor.backend.protocol import (
    ApiKeyRecord,
    ArtifactRequest,
    CancelRequest,
    Capability,
    CheckpointRequest,
    ClaimRequest,
    CompleteRequest,
    CreateKeyRequest,
    EffectOutcome,
    EffectRequest,
    EnqueueRequest,
    EnqueueResult,
    EventsRequest,
    ExpiredLease,
    ExpiredRequest,
    ExpireRequest,
    FailRequest,
    ForgetWorkersRequest,
    HeartbeatRequest,
    HeartbeatStatus,
    JobFilter,
    JobPage,
    MoveRequest,
    OutboxEntry,
    OutboxRequest,
    PauseRequest,
    ProgressRequest,
    PruneRequest,
    RedriveRequest,
    ReleaseRequest,
    RevokeKeyRequest,
    WorkerBeat,
    WorkerRecord,
)
from conveyor.backend.redis.apikeys import key_from_flat
from conveyor.backend.redis.codec import encode_request, job_from_flat, pairs
from conveyor.backend.redis.keys import Keys, parse_redis_url
from conveyor.backend.redis.scripts import new_call_id, register_all
from conveyor.backend.workers import row_to_worker
from conveyor.errors import (
    BackendUnavailable,
    ConfigError,
    ConveyorError,
    DependencyError,
    DuplicateJobId,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    QueueFull,
)
from conveyor.types import Job, JobEvent, JobState, QueueStats, new_lease_token

SCHEMA_VERSION = "redis-layout-v1"
INITIAL_STATES = serde.dumps({fact: state.value for fact, state in states.initial_state_table().items()})
"""The lifecycle's initial-state rule, sent to enqueue.lua with every call (see states.py)."""
MAX_CONNECTIONS = 64
"""Connections per engine instance (per process and event loop)."""
POOL_WAIT = 10.0
"""Seconds a call waits for a free pooled connection before BackendUnavailable."""
_TRANSIENT_REPLIES = ("BUSY", "LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "OOM")
_TRANSIENT_ERRORS = (
    rexc.OutOfMemoryError,
    rexc.ReadOnlyError,
    rexc.TryAgainError,
    rexc.ClusterDownError,
    rexc.MasterDownError,
)
"""redis-py turns these replies into their own classes and strips the code from the message, so
they are recognised by class: maxmemory reached (OOM) is Redis' "disk full", a 503 that clears
by itself when memory is freed, never a 500."""


def _unavailable(exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(f"Redis unavailable: {exc.__class__.__name__}: {exc}")


def _is_transient(exc: rexc.ResponseError) -> bool:
    return isinstance(exc, _TRANSIENT_ERRORS) or str(exc).split(" ", 1)[0].upper() in _TRANSIENT_REPLIES


class RedisBackend:
    """Redis engine for ``redis://host:port/db?prefix=NAME`` (prefix defaults to ``conveyor``)."""

    capabilities: frozenset[Capability] = frozenset(
        {Capability.EVENTS, Capability.PAUSE, Capability.EFFECTS, Capability.DEPENDENCIES}
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis_url, self.prefix = parse_redis_url(url)
        self.keys = Keys(self.prefix)
        self.clock_offset = 0.0
        self._client: aioredis.Redis | None = None
        self._blocking: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    # -- plumbing -----------------------------------------------------------------------------

    def _connect(self, socket_timeout: float | None) -> aioredis.Redis:
        # A blocking pool: past MAX_CONNECTIONS a call waits for a free connection instead of
        # failing (an API under a burst of submits must queue them, not answer 503).
        pool = aioredis.BlockingConnectionPool.from_url(
            self.redis_url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=socket_timeout,
            socket_connect_timeout=2.0,
            health_check_interval=5,
        )
        return aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))

    def _ensure_client(self) -> aioredis.Redis:
        if self._client is None:
            self._client = self._connect(socket_timeout=10.0)
            self._scripts = register_all(self._client)
        return self._client

    async def _script(self, name: str, *args: Any) -> Any:
        """Run script ``name``; on a lost connection retry once with the same call id.

        What a retry may do is declared per script in ``scripts.SCRIPTS``: a state-changing
        script answers a retry from the reply it stored under the call id (never applied twice).
        """
        self._ensure_client()
        call_id = new_call_id(name)
        for attempt in (0, 1):
            try:
                argv = [repr(self.clock_offset), ("1" if attempt else "0") + call_id, *args]
                return await self._scripts[name](keys=[self.keys.base], args=argv)
            except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
                if attempt == 1:
                    raise _unavailable(exc) from None
            except rexc.ResponseError as exc:
                if _is_transient(exc):
                    raise _unavailable(exc) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _command(self, *args: Any) -> Any:
        """One plain (read-only or idempotent) command, with the same error mapping."""
        client = self._ensure_client()
        for attempt in (0, 1):
            try:
                return await client.execute_command(*args)
            except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
                if attempt == 1:
                    raise _unavailable(exc) from None
            except rexc.ResponseError as exc:
                if _is_transient(exc):
                    raise _unavailable(exc) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        await self.migrate()

    async def close(self) -> None:
        for client in (self._client, self._blocking):
            if client is not None:
                # the pool is ours (built in _connect): a client given a pool does not close it
                await client.aclose(close_connection_pool=True)
        self._client = self._blocking = None

    async def migrate(self) -> list[str]:
        """No schema to create; record the key-layout version once so a future layout can migrate."""
        created = await self._command("SET", self.keys.schema(), SCHEMA_VERSION, "NX")
        await self._import_legacy_keys()
        return [SCHEMA_VERSION] if created else []

    async def ping(self) -> None:
        await self._command("PING")

    async def now(self) -> float:
        return float(await self._script("now"))

    # -- enqueue ------------------------------------------------------------------------------

    async def enqueue(self, req: EnqueueRequest) -> EnqueueResult:
        return (await self.enqueue_many([req]))[0]

    async def enqueue_many(self, reqs: list[EnqueueRequest]) -> list[EnqueueResult]:
        if not reqs:
            return []
        reply = await self._script("enqueue", serde.dumps([encode_request(r) for r in reqs]), INITIAL_STATES)
        kind = reply[0]
        if kind == "ok":
            return [EnqueueResult(job_from_flat(flat), created=bool(created)) for created, flat in reply[1:]]
        if kind == "idempotency_conflict":
            raise IdempotencyConflict(f"idempotency key {reply[1]!r} was used for a different payload", reply[2])
        if kind == "queue_full":
            raise QueueFull(reply[1], int(reply[2]), int(reply[3]))
        if kind == "dependency":
            raise DependencyError(f"dependency {reply[1]!r} does not exist")
        if kind == "duplicate_id":
            raise DuplicateJobId(f"a job with id {reply[1]!r} already exists")
        raise ConveyorError(f"unexpected enqueue reply {kind!r}")  # pragma: no cover

    # -- reads --------------------------------------------------------------------------------

    async def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        flat = await self._command("HGETALL", self.keys.job(job_id))
        if not flat:
            return None
        h = flat if isinstance(flat, dict) else pairs(flat)
        if tenant is not None and h.get("tenant") != tenant:
            return None
        return job_from_flat([x for kv in h.items() for x in kv])

    async def list_jobs(self, flt: JobFilter) -> JobPage:
        reply = await self._script(
            "list",
            flt.tenant or "",
            flt.queue or "",
            flt.task or "",
            ",".join(s.value for s in flt.states),
            flt.cursor or "",
            flt.limit,
            flt.workflow or "",
        )
        return JobPage([job_from_flat(flat) for flat in reply[1:]], reply[0] or None)

    async def queue_stats(self, tenant: str | None = None) -> list[QueueStats]:
        now_text, body = await self._script("stats", tenant or "")
        now = float(now_text)
        out = []
        for name, entry in sorted(serde.loads(body).items()):
            counts = entry.get("counts") or {}
            oldest = entry.get("oldest")
            out.append(
                QueueStats(
                    queue=name,
                    counts={s.value: int(counts.get(s.value, 0)) for s in JobState},
                    oldest_queued_age=max(0.0, now - float(oldest)) if oldest is not None else None,
                    paused=bool(entry.get("paused")),
                )
            )
        return out

    async def queue_position(self, job_id: str) -> int | None:
        rank = await self._script("position", job_id)
        return None if rank is None else int(rank)

    async def events(self, req: EventsRequest) -> list[JobEvent]:
        entries = await self._command(
            "ZRANGEBYSCORE", self.keys.events(req.job_id), f"({req.after_seq}", "+inf", "LIMIT", 0, req.limit
        )
        out = []
        for text in entries:
            e = serde.loads(text)
            out.append(JobEvent(int(e["seq"]), req.job_id, float(e["at"]), e["type"], JobState(e["state"]), e["data"]))
        return out

    async def drain_stats(self, queue: str, window: float) -> int:
        return int(await self._script("drain", queue, repr(float(window))))

    # -- worker path --------------------------------------------------------------------------

    async def claim(self, req: ClaimRequest) -> list[Job]:
        if req.limit < 1 or not req.queues:
            return []
        tokens = [new_lease_token() for _ in range(req.limit)]
        args = [req.worker_id, repr(float(req.lease_seconds)), req.limit, len(req.queues), *req.queues, *tokens]
        return [job_from_flat(flat) for flat in await self._script("claim", *args)]

    async def heartbeat(self, req: HeartbeatRequest) -> dict[str, HeartbeatStatus]:
        if not req.leases:
            return {}
        pairs_ = [x for lease in req.leases for x in (lease.job_id, lease.token)]
        reply = await self._script("heartbeat", repr(float(req.lease_seconds)), *pairs_)
        return {lease.job_id: status for lease, status in zip(req.leases, reply, strict=True)}

    async def complete(self, req: CompleteRequest) -> bool:
        return bool(await self._script("complete", req.job_id, req.token, serde.dumps(req.result)))

    async def complete_many(self, reqs: list[CompleteRequest]) -> list[bool]:
        if not reqs:
            return []
        args: list[str] = []
        for req in reqs:
            args += (req.job_id, req.token, serde.dumps(req.result))
        return [bool(x) for x in await self._script("complete_many", *args)]

    async def fail(self, req: FailRequest) -> JobState | None:
        delay = repr(float(req.retry_delay))
        state = await self._script("fail", req.job_id, req.token, serde.dumps(req.error), req.state.value, delay)
        return None if state is None else JobState(state)

    async def release(self, req: ReleaseRequest) -> bool:
        return bool(await self._script("release", req.job_id, req.token))

    async def progress(self, req: ProgressRequest) -> bool:
        fraction = "" if req.fraction is None else "=" + repr(float(req.fraction))
        message = "" if req.message is None else "=" + req.message
        data = serde.dumps({"fraction": req.fraction, "message": req.message})
        return bool(await self._script("progress", req.job_id, req.token, fraction, message, data))

    async def move(self, req: MoveRequest) -> bool:
        return bool(await self._script("move", req.job_id, req.token, req.queue))

    async def checkpoint(self, req: CheckpointRequest) -> bool:
        return bool(await self._script("checkpoint", req.job_id, req.token, serde.dumps(req.state)))

    async def add_artifact(self, req: ArtifactRequest) -> bool:
        artifact = req.artifact
        return bool(
            await self._script("artifact", req.job_id, req.token, artifact.name, serde.dumps(artifact.to_dict()))
        )

    # -- operator actions ---------------------------------------------------------------------

    async def cancel(self, req: CancelRequest) -> Job:
        reply = await self._script("cancel", req.job_id, req.tenant or "", req.reason)
        if reply[0] == "not_found":
            raise JobNotFound(f"job {req.job_id} not found")
        if reply[0] == "terminal":
            raise InvalidTransition(f"job {req.job_id} is already {reply[1]}")
        return job_from_flat(reply[1])

    async def redrive(self, req: RedriveRequest) -> int:
        if req.job_ids:
            return int(await self._script("redrive", req.tenant or "", "ids", *req.job_ids))
        return int(await self._script("redrive", req.tenant or "", "filter", req.queue or "", req.task or ""))

    async def set_paused(self, req: PauseRequest) -> None:
        await self._script("pause", req.queue, "1" if req.paused else "0")

    # -- notification outbox ------------------------------------------------------------------

    async def take_outbox(self, req: OutboxRequest) -> list[OutboxEntry]:
        reply = await self._script("outbox_take", str(int(req.limit)), repr(float(req.lease_seconds)))
        entries = []
        for seq, raw in reply:
            data = serde.loads(raw)
            entries.append(OutboxEntry(int(seq), data["job_id"], JobState(data["state"]), float(data["at"])))
        return sorted(entries, key=lambda e: e.seq)

    async def ack_outbox(self, seqs: list[int]) -> None:
        if seqs:
            await self._script("outbox_ack", *(str(s) for s in seqs))

    # -- maintenance --------------------------------------------------------------------------

    async def expired_leases(self, req: ExpiredRequest) -> list[ExpiredLease]:
        flat = await self._script("expired", req.limit)
        return [ExpiredLease(flat[i], flat[i + 1], int(flat[i + 2]), int(flat[i + 3])) for i in range(0, len(flat), 4)]

    async def expire(self, req: ExpireRequest) -> list[str]:
        if not req.expiries:
            return []
        args = [x for e in req.expiries for x in (e.job_id, e.token, e.state.value, serde.dumps(e.error))]
        return list(await self._script("expire", *args))

    async def promote_scheduled(self) -> int:
        return int(await self._script("promote"))

    async def prune(self, req: PruneRequest) -> int:
        return int(await self._script("prune", repr(float(req.older_than)), req.queues_json()))

    async def record_effect(self, req: EffectRequest) -> EffectOutcome:
        return EffectOutcome(await self._script("effect", req.job_id, req.token, req.key, serde.dumps(req.value)))

    async def get_effect(self, job_id: str, key: str) -> tuple[bool, Any]:
        value = await self._command("HGET", self.keys.effects(job_id), key)
        return (False, None) if value is None else (True, serde.loads(value))

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(self, req: CreateKeyRequest) -> ApiKeyRecord:
        scopes = serde.dumps(list(req.scopes))
        args = (req.key_id, req.name or req.key_id, req.tenant, scopes, req.secret_hash, "", "")
        reply = await self._script("apikey", "create", *args)
        if isinstance(reply, str):
            raise ConfigError(f"an API key with id {req.key_id!r} or the same secret exists")
        return key_from_flat(reply)

    async def find_key(self, secret_hash: str) -> ApiKeyRecord | None:
        reply = await self._script("apikey", "find", secret_hash)
        return key_from_flat(reply) if reply else None

    async def list_keys(self) -> list[ApiKeyRecord]:
        records = [key_from_flat(flat) for flat in await self._script("apikey", "list")]
        return sorted(records, key=lambda k: (k.created_at, k.key_id))

    async def revoke_key(self, req: RevokeKeyRequest) -> bool:
        return bool(await self._script("apikey", "revoke", req.key_id))

    # -- live worker nodes --------------------------------------------------------------------

    async def beat_worker(self, beat: WorkerBeat) -> None:
        await self._script("workers", "beat", beat.worker_id, serde.dumps(beat.info))

    async def list_workers(self) -> list[WorkerRecord]:
        records = []
        for worker_id, raw, silent in await self._script("workers", "list"):
            stored = serde.loads(raw)
            row = {**stored, "worker_id": worker_id, "info": stored["info"], "silent_for": silent}
            records.append(row_to_worker(row))
        return sorted(records, key=lambda w: w.worker_id)

    async def forget_workers(self, req: ForgetWorkersRequest) -> int:
        if req.worker_id is not None:
            return int(await self._script("workers", "forget", req.worker_id))
        if req.silent_for is None:
            return 0
        return int(await self._script("workers", "silent", repr(float(req.silent_for))))

    async def _import_legacy_keys(self) -> None:
        """Carry keys over from the hash the old key store kept outside the namespace."""
        legacy = f"{self.prefix}:api_keys"
        for key_id, raw in (await self._command("HGETALL", legacy) or {}).items():
            old = serde.loads(raw)
            revoked = "" if old.get("revoked_at") is None else repr(float(old["revoked_at"]))
            scopes = serde.dumps(list(old["scopes"]))
            args = (key_id, old["name"], old["tenant"], scopes, old["secret_hash"], repr(float(old["created_at"])))
            await self._script("apikey", "create", *args, revoked)
            await self._command("HDEL", legacy, key_id)

    # -- wake-ups -----------------------------------------------------------------------------

    async def wait_for_work(self, queues: tuple[str, ...], timeout: float) -> None:
        """BLPOP on the queues' wake lists (LPUSHed by every script that makes a job queued).

        Runs on its own connection so a blocked wait never holds up other calls. The wait is
        cut short to the earliest scheduled run_at of these queues, so delayed jobs and retries
        start on time without a poller.
        """
        if not queues or timeout <= 0:
            await asyncio.sleep(max(0.0, timeout))
            return
        timeout = min(timeout, await self._until_next_due(queues))
        if timeout <= 0:
            return
        if self._blocking is None:
            self._blocking = self._connect(socket_timeout=None)
        wake_keys = [self.keys.wake(q) for q in queues]
        try:
            # BLPOP takes seconds with millisecond resolution; 0 would block forever.
            await asyncio.wait_for(self._blocking.blpop(wake_keys, timeout=max(0.001, timeout)), timeout + 5.0)
        except (rexc.ConnectionError, rexc.TimeoutError, OSError, TimeoutError) as exc:
            raise _unavailable(exc) from None

    async def _until_next_due(self, queues: tuple[str, ...]) -> float:
        client = self._ensure_client()
        try:
            async with client.pipeline(transaction=False) as pipe:
                for q in queues:
                    pipe.zrange(self.keys.scheduled(q), 0, 0, withscores=True)
                heads = await pipe.execute()
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            raise _unavailable(exc) from None
        due = [float(head[0][1]) for head in heads if head]
        if not due:
            return float("inf")
        return min(due) - await self.now()
