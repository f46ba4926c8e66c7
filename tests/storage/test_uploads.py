"""Uploads as job inputs: stored once, named by a ref, read by the task on every engine.

Through the library (``app.upload`` + ``ctx.input_path``/``ctx.open_input``) and over HTTP
(``POST /v1/uploads`` to a real ``conveyor serve``, a real worker running the job), with the
tenant boundary checked both at submit and inside the task.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.backend.protocol import ClaimRequest
from conveyor.context import JobContext
from conveyor.storage import UploadError
from conveyor.task import CallOptions
from conveyor.types import JobState
from tests.api.procs import Env, wait_until
from tests.apps import files_app
from tests.engines import ENGINES, engine_url

DATA = b"first line\n" + b"".join(f"{i},{i * i}\n".encode() for i in range(50_000))
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Conveyor]:
    with engine_url(request.param, tmp_path) as url:
        conveyor = Conveyor(url, result_store=str(tmp_path / "results"))
        conveyor.task(name="digest")(files_app.digest.fn)
        yield conveyor
        conveyor.close()


def run_claimed(app: Conveyor, job_id: str) -> object:
    """Claim and run one job the way an executor does, with its real lease and context."""
    [job] = app.run_sync(lambda b: b.claim(ClaimRequest("uploads-test", ("default",), 1, 60.0)))
    assert job.id == job_id
    ctx = JobContext(app, job)
    task = app.get_task(job.task)
    try:
        return task.fn(**task.bind(job.args), ctx=ctx)
    finally:
        ctx.cleanup()
        assert ctx._scratch is None


def test_library_upload_is_read_by_the_task_as_a_path_and_a_stream(app: Conveyor, tmp_path: Path) -> None:
    source = tmp_path / "numbers.csv"
    source.write_bytes(DATA)
    ref = app.upload(source)
    info = app.file_store.upload(ref)
    assert info is not None and (info.size, info.sha256, info.filename) == (len(DATA), SHA, "numbers.csv")
    job = app.enqueue("digest", {"data": ref})
    result = run_claimed(app, job.id)
    assert result == {"local": SHA, "streamed": SHA, "name": "numbers.csv", "in_scratch": True}
    # the upload is linked to the job that takes it (retention keeps it as long as the job)
    assert app.file_store.upload_links(info.id) == [job.id]
    stored = app.get(job.id)
    assert stored is not None and [a.name for a in stored.artifacts] == ["first-line.txt"]


def test_upload_from_a_stream_and_from_bytes(app: Conveyor) -> None:
    from_stream = app.upload_info(io.BytesIO(DATA), filename="../../etc/passwd", content_type="text/csv")
    assert (from_stream.size, from_stream.sha256, from_stream.content_type) == (len(DATA), SHA, "text/csv")
    assert from_stream.filename == "passwd"  # only the last path component is kept
    from_bytes = app.upload_info(b"", filename="empty.txt")
    assert from_bytes.size == 0 and from_bytes.sha256 == hashlib.sha256(b"").hexdigest()


def test_another_tenants_upload_is_refused_at_submit_and_in_the_task(app: Conveyor) -> None:
    ref = app.upload(DATA, filename="a.csv", tenant="a")
    with pytest.raises(UploadError, match=r"args\.data"):
        app.enqueue("digest", {"data": ref}, CallOptions(tenant="b"))
    with pytest.raises(UploadError, match="no upload"):
        app.enqueue("digest", {"data": "upload:" + "0" * 32}, CallOptions(tenant="a"))
    # a job of tenant b that names it anyway (stored behind the check's back) cannot read it
    job = app.enqueue("digest", {"data": "not-a-ref"}, CallOptions(tenant="b"))
    [claimed] = app.run_sync(lambda b: b.claim(ClaimRequest("uploads-test", ("default",), 1, 60.0)))
    ctx = JobContext(app, claimed)
    try:
        with pytest.raises(UploadError):
            ctx.input_path(ref)
        with pytest.raises(UploadError):
            ctx.open_input(ref)
    finally:
        ctx.cleanup()
    assert claimed.id == job.id


def test_http_upload_then_submit_runs_on_a_worker(env: Env, tmp_path: Path) -> None:
    key_a = env.create_key("submit", "read", tenant="a")
    key_b = env.create_key("submit", "read", tenant="b")
    server = env.serve(app="tests.apps.files_app:app")
    env._spawn(["worker", "--app", "tests.apps.files_app:app", "--queues", "default", "--lease", "5"], "worker.log")
    with server.http(key_a) as http, server.http(key_b) as other:
        # a body far over the 1 MiB limit of the JSON routes, streamed in chunks without Content-Length
        big = DATA * 4
        answer = http.post(
            "/v1/uploads?filename=numbers.csv",
            content=iter([big[:1000], big[1000:]]),
            headers={"Content-Type": "text/csv"},
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert (body["size"], body["sha256"], body["filename"], body["content_type"]) == (
            len(big),
            hashlib.sha256(big).hexdigest(),
            "numbers.csv",
            "text/csv",
        )
        assert body["ref"] == f"upload:{body['id']}" and answer.headers["Location"] == f"/v1/uploads/{body['id']}"
        assert http.get(f"/v1/uploads/{body['id']}").json() == body
        assert other.get(f"/v1/uploads/{body['id']}").status_code == 404
        refused = other.post("/v1/jobs", json={"task": "digest", "args": {"data": body["ref"]}})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "args.data"
        assert (
            http.post(
                "/v1/uploads", content=b"x", headers={"Content-Type": "multipart/form-data; boundary=x"}
            ).status_code
            == 415
        )
        named = http.post(
            "/v1/uploads",
            content=b"a,b\n",
            headers={"Content-Disposition": "attachment; filename*=UTF-8''caf%C3%A9.csv"},
        )
        assert named.status_code == 201 and named.json()["filename"] == "café.csv"

        submitted = http.post("/v1/jobs", json={"task": "digest", "args": {"data": body["ref"]}})
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]

        def finished() -> dict[str, object] | None:
            status = http.get(f"/v1/jobs/{job_id}").json()
            return status if status["status"] in ("succeeded", "failed") else None

        status = wait_until(finished, timeout=90, what="the digest job")
        assert status["state"] == JobState.SUCCEEDED.value, status
        digest = hashlib.sha256(big).hexdigest()
        assert status["result"] == {"local": digest, "streamed": digest, "name": "numbers.csv", "in_scratch": True}
        line = http.get(f"/v1/jobs/{job_id}/artifacts/first-line.txt")
        assert line.status_code == 200 and line.content == b"first line\n"


def test_http_upload_over_the_limit_is_413_and_leaves_nothing(env: Env) -> None:
    key = env.create_key("submit", "read", tenant="a")
    server = env.serve("--max-upload", "1000", app="tests.apps.files_app:app")
    with server.http(key) as http:
        streamed = http.post("/v1/uploads", content=iter([b"x" * 600, b"x" * 600]))
        assert streamed.status_code == 413 and streamed.json()["code"] == "UploadTooLarge"
        declared = http.post("/v1/uploads", content=b"x" * 1001)
        assert declared.status_code == 413
        assert http.post("/v1/uploads", content=b"x" * 1000).status_code == 201
    uploads = env.tmp / "results" / "_uploads"
    assert len(os.listdir(uploads)) == 1
