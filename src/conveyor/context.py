"""JobContext: what a running task knows and may do about its own job.

A task that declares a ``ctx`` parameter receives one. Every write it makes (progress,
artifacts, once-only effects) carries the job's lease token, so a worker that lost the lease is refused and told
(``LeaseLost``) instead of overwriting the work of the worker that took over.

Each write is one ``*_async`` coroutine; the sync method of the same name (for sync tasks, in
executor processes) is its twin, declared with ``conveyor.blocking`` and run on the app's portal.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from conveyor.backend.protocol import (
    ArtifactRequest,
    CheckpointRequest,
    EffectOutcome,
    EffectRequest,
    ProgressRequest,
)
from conveyor.blocking import blocking
from conveyor.dependencies import Dependency, results_of
from conveyor.errors import JobCanceled, JobOverrun, LeaseLost
from conveyor.storage.uploads import Upload
from conveyor.types import Artifact, Job, JSONValue

if TYPE_CHECKING:
    from conveyor.app import Conveyor
    from conveyor.canvas import Signature, Workflow
    from conveyor.task import Task

T = TypeVar("T")
StopReason = Callable[[], str | None]
"""Returns "canceled" or "lease_lost" once the supervisor knows the job must stop, else None."""


def _no_stop() -> str | None:
    return None


def safe_input_name(filename: str, fallback: str) -> str:
    """The upload's file name as a local name (its extension matters to tools like ffmpeg)."""
    name = filename.replace("/", "_").replace("\\", "_").replace("\x00", "")
    return name if name not in ("", ".", "..") else fallback


class JobContext:
    """Handed to task code: job identity, progress, cancellation, scratch space, artifacts."""

    def __init__(
        self,
        app: Conveyor,
        job: Job,
        stop_reason: StopReason = _no_stop,
        dependencies: Sequence[Dependency] = (),
    ) -> None:
        self.app = app
        self.job = job
        self._stop_reason = stop_reason
        self._scratch: Path | None = None
        self.dependencies: list[Dependency] = list(dependencies)
        """Each dependency of this job (``depends_on`` order): id, step, task, state, result, error.
        Read by the worker before the task started; a ``continue`` step finds its failed ones here."""
        self.results: dict[str, JSONValue] = results_of(self.dependencies)
        """The results of the succeeded dependencies, keyed by step name and by job id."""
        self._inputs: dict[str, Path] = {}

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def attempt(self) -> int:
        """1 on the first run, 2 on the first retry, and so on."""
        return self.job.attempts

    @property
    def token(self) -> str:
        assert self.job.lease_token is not None
        return self.job.lease_token

    # -- cancellation ---------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        """True once the job must stop soon: canceled, lease lost, or moving to the overflow queue
        after running past its queue's ``max_runtime`` (checkpoint first, then return or raise)."""
        return self._stop_reason() is not None

    def raise_if_cancelled(self) -> None:
        """Raise JobCanceled / LeaseLost at a safe point of a long loop."""
        reason = self._stop_reason()
        if reason == "canceled":
            raise JobCanceled(f"job {self.job_id} was canceled")
        if reason == "overrun":
            raise JobOverrun(f"job {self.job_id} ran past its queue's max_runtime: it moves to the overflow queue")
        if reason is not None:
            raise LeaseLost(f"job {self.job_id}: this worker lost its lease")

    # -- the portal, for the sync twins ------------------------------------------------------

    def _sync(self, make: Callable[[], Awaitable[T]]) -> T:
        """Sync twins run on the app's portal, like the app's own (``conveyor.blocking``)."""
        return self.app._sync(make)

    # -- progress -------------------------------------------------------------------------------

    async def progress_async(self, fraction: float | None, message: str | None = None) -> None:
        """Report how far the job is (0..1) with an optional message; raises LeaseLost if fenced off."""
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be between 0 and 1, got {fraction}")
        backend = await self.app.backend()
        if not await backend.progress(ProgressRequest(self.job_id, self.token, fraction, message)):
            raise LeaseLost(f"job {self.job_id}: progress refused, the lease is gone")

    progress = blocking(progress_async)

    # -- checkpoints ----------------------------------------------------------------------------

    @property
    def resume_state(self) -> JSONValue:
        """What an earlier run of this job saved with ``checkpoint`` (None on a fresh job).

        A job moved to the overflow queue after an overrun, retried after a failure, or
        requeued after its worker died starts again with the last checkpoint it stored.
        """
        return self.job.checkpoint

    async def checkpoint_async(self, state: JSONValue) -> None:
        """Save ``state`` (JSON) on the job so the next run resumes from it; fenced like progress.

        Raises LeaseLost when this worker no longer holds the job (nothing stored). Checkpoint
        after each unit of work that must not be redone, and always when ``ctx.cancelled``.
        """
        backend = await self.app.backend()
        if not await backend.checkpoint(CheckpointRequest(self.job_id, self.token, state)):
            raise LeaseLost(f"job {self.job_id}: checkpoint refused, the lease is gone")
        self.job.checkpoint = state

    checkpoint = blocking(checkpoint_async)

    # -- scratch and artifacts -------------------------------------------------------------

    @property
    def scratch_dir(self) -> Path:
        """A private temporary directory for this attempt, removed when the attempt ends."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix=f"conveyor-{self.job_id}-"))
        return self._scratch

    def cleanup(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        self._inputs.clear()

    async def save_artifact_async(self, name: str, source: bytes | Path, content_type: str | None = None) -> Artifact:
        """Store a result file in the app's result store and record it on the job.

        The file is written on a thread, so an async task's event loop keeps running meanwhile.
        """
        store = self.app.result_store
        artifact = await asyncio.to_thread(store.put, self.job_id, name, source, content_type)
        backend = await self.app.backend()
        if not await backend.add_artifact(ArtifactRequest(self.job_id, self.token, artifact)):
            raise LeaseLost(f"job {self.job_id}: artifact refused, the lease is gone")
        return artifact

    save_artifact = blocking(save_artifact_async)

    # -- workflows -----------------------------------------------------------------------------

    async def spawn_chunks_async(
        self,
        task: Task,
        items: Sequence[JSONValue],
        *,
        chunk_size: int = 1000,
        then: Signature | None = None,
        arg: str = "items",
    ) -> Workflow:
        """Enqueue ``task`` once per chunk of ``items`` (as its ``arg`` argument) and ``then``
        after all of them, in one engine call, in this job's workflow (a new one if it has none).

        Nothing waits here: this job can return at once, the fan-in runs when the chunks are
        done, and the workflow's steps report the chunks' combined progress.
        """
        return await self.app.fan_out_async(
            task, items, chunk_size=chunk_size, then=then, arg=arg, workflow_id=self.job.workflow_id
        )

    spawn_chunks = blocking(spawn_chunks_async)
    # -- inputs (uploads) ---------------------------------------------------------------------

    def _owned_upload(self, ref: str) -> Upload:
        """The upload ``ref`` names, if this job's tenant stored it (UploadError otherwise)."""
        store = self.app.file_store
        upload = store.owned_upload(ref, self.job.tenant)
        store.link_upload(
            upload.id, self.job_id
        )  # idempotent: kept while this job is, even if the submit's link was lost
        return upload

    def input_path(self, ref: str) -> Path:
        """The uploaded file ``ref`` (``upload:<id>``) as a local file in this attempt's scratch dir.

        Copied in chunks from the store (a bucket or a directory), never whole in memory; the
        same ref twice in one attempt is copied once. The file is removed with the scratch dir.
        Raises UploadError for a ref of another tenant, or one that no longer exists.
        """
        cached = self._inputs.get(ref)
        if cached is not None and cached.exists():
            return cached
        upload = self._owned_upload(ref)
        folder = self.scratch_dir / "inputs" / upload.id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / safe_input_name(upload.filename, upload.id)
        with target.open("wb") as out:
            for chunk in self.app.file_store.upload_chunks(upload):
                out.write(chunk)
        self._inputs[ref] = target
        return target

    async def input_path_async(self, ref: str) -> Path:
        """``input_path`` for async tasks: the copy runs on a thread, the event loop keeps going."""
        return await asyncio.to_thread(self.input_path, ref)

    def open_input(self, ref: str) -> io.BufferedReader:
        """A streaming binary reader of the uploaded file ``ref``, straight from the store (no
        local copy): wrap it in ``io.TextIOWrapper`` to read text, e.g. with ``csv``. Close it."""
        upload = self._owned_upload(ref)
        return self.app.file_store.open_upload(upload)

    def input_info(self, ref: str) -> Upload:
        """The upload's record: size, SHA-256, file name, content type."""
        return self._owned_upload(ref)

    # -- once-only side effects ----------------------------------------------------------------

    def once(self, key: str, effect: Callable[[], T]) -> T:
        """Run ``effect`` unless an earlier attempt of this job already recorded it; return its value.

        The value must be JSON. The record is fenced with this attempt's lease token: if this
        worker lost the lease meanwhile (paused past it, the job taken over), nothing is stored
        and ``LeaseLost`` stops the task; if the key was recorded first by someone else, that
        record wins and its value is returned. The effect runs before it is recorded, so it can
        run twice: when the process dies between the effect and the record, or when the lease
        is lost while the effect runs (the new owner does not see a record yet). Make the effect
        itself idempotent where that matters (e.g. pass the job id as the provider's key).
        """
        done, value = self.app.run_sync(lambda b: b.get_effect(self.job_id, key))
        if done:
            return value  # type: ignore[no-any-return]
        self.raise_if_cancelled()  # a task that must stop starts no new side effect
        value = effect()
        req = EffectRequest(self.job_id, self.token, key, value)
        outcome = self.app.run_sync(lambda b: b.record_effect(req))
        if outcome is EffectOutcome.EXISTS:
            return self.app.run_sync(lambda b: b.get_effect(self.job_id, key))[1]  # type: ignore[no-any-return]
        return self._recorded(key, outcome, value)

    async def once_async(self, key: str, effect: Callable[[], Awaitable[T]]) -> T:
        backend = await self.app.backend()
        done, value = await backend.get_effect(self.job_id, key)
        if done:
            return value  # type: ignore[no-any-return]
        self.raise_if_cancelled()
        value = await effect()
        outcome = await backend.record_effect(EffectRequest(self.job_id, self.token, key, value))
        if outcome is EffectOutcome.EXISTS:
            return (await backend.get_effect(self.job_id, key))[1]  # type: ignore[no-any-return]
        return self._recorded(key, outcome, value)

    def _recorded(self, key: str, outcome: EffectOutcome, value: T) -> T:
        """The value of a recorded effect; LeaseLost when the record was fenced off."""
        if outcome is EffectOutcome.LOST:
            raise LeaseLost(f"job {self.job_id}: effect {key!r} not recorded, the lease is gone")
        return value
