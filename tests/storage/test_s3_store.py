"""The S3 result store against a real S3-compatible server (SeaweedFS), never a mock.

Store level: artifacts from bytes, files and streams (multipart above 16 MiB), uploads, listing,
deletion, presigned downloads. End to end, on every engine: the API and a worker that share no
directory (different working and temp directories, no local result folder at all) pass an
upload and an artifact through the bucket alone.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conveyor.errors import ConfigError
from conveyor.storage import S3ResultStore, open_store
from conveyor.storage.s3 import MULTIPART_THRESHOLD, S3Location
from conveyor.types import JobState
from tests.api.procs import REPO, Env, wait_until
from tests.storage.s3server import SeaweedS3, fetch


def test_url_options_are_parsed_and_unknown_ones_refused() -> None:
    where = S3Location.parse("s3://bucket/a/b?endpoint=http://h:1&region=eu-west-1&downloads=redirect")
    assert (where.bucket, where.prefix, where.endpoint, where.region, where.redirect_downloads) == (
        "bucket", "a/b", "http://h:1", "eu-west-1", True,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="secret"):
        S3Location.parse("s3://bucket?secret=x")
    with pytest.raises(ConfigError, match="downloads"):
        S3Location.parse("s3://bucket?downloads=maybe")
    assert isinstance(open_store("s3://bucket/p?endpoint=http://h:1"), S3ResultStore)


def test_artifacts_round_trip_and_are_deleted_with_the_job(s3: SeaweedS3, tmp_path: Path) -> None:
    bucket = s3.bucket()
    store = open_store(s3.url(bucket))
    small = store.put("job-1", "a.txt", b"hello")
    assert (small.size, small.content_type, small.location) == (5, "text/plain", f"s3://{bucket}/conveyor/job-1/a.txt")
    assert b"".join(store.open(small)) == b"hello"
    # a file over the multipart threshold, streamed from disk and back in chunks
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for i in range((MULTIPART_THRESHOLD * 2 + 12345) // 65536 + 1):
            out.write(hashlib.sha256(str(i).encode()).digest() * 2048)
    art = store.put("job-1", "big.bin", big)
    assert art.size == big.stat().st_size > MULTIPART_THRESHOLD
    digest = hashlib.sha256()
    for chunk in store.open(art):
        assert len(chunk) <= 1024 * 1024
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()
    streamed = store.put("job-2", "s.csv", io.BytesIO(b"a,b\n"), "text/csv")
    assert streamed.content_type == "text/csv" and b"".join(store.open(streamed)) == b"a,b\n"
    assert store.job_ids() == ["job-1", "job-2"]
    store.delete_job("job-1")
    assert s3.keys(bucket) == ["conveyor/job-2/s.csv"]
    with pytest.raises(FileNotFoundError):
        b"".join(store.open(small))


def test_uploads_in_the_bucket(s3: SeaweedS3) -> None:
    bucket = s3.bucket()
    store = open_store(s3.url(bucket, prefix="deep/er"))
    upload = store.create_upload(io.BytesIO(b"x" * 100_000), tenant="a", filename="x.bin")
    assert (upload.size, upload.sha256) == (100_000, hashlib.sha256(b"x" * 100_000).hexdigest())
    assert store.upload(upload.ref) == upload
    with store.open_upload(upload) as reader:
        assert reader.read() == b"x" * 100_000
    store.link_upload(upload.id, "job-9")
    assert store.upload_links(upload.id) == ["job-9"]
    assert store.upload_ids() == [upload.id]
    store.delete_upload(upload.id)
    assert s3.keys(bucket) == [] and store.upload(upload.ref) is None


def test_presigned_download_urls(s3: SeaweedS3) -> None:
    bucket = s3.bucket()
    streaming = open_store(s3.url(bucket))
    art = streaming.put("job-1", "rapport été.html", b"<script>x</script>", "text/html")
    assert streaming.download_url(art) is None
    redirecting = open_store(s3.url(bucket, downloads="redirect", presign_seconds="60"))
    url = redirecting.download_url(art)
    assert url is not None and url.startswith(s3.endpoint)
    answer = fetch(url)
    assert answer.status_code == 200 and answer.content == b"<script>x</script>"
    assert answer.headers["content-disposition"].startswith("attachment;")


def _worker_elsewhere(env: Env, store_url: str, where: Path) -> subprocess.Popen[bytes]:
    """A worker node in its own working and temp directory, with only the S3 URL in common."""
    (where / "tmp").mkdir(parents=True)
    environ = {**env.environ, "CONVEYOR_RESULTS": store_url, "TMPDIR": str(where / "tmp")}
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *(p for p in sys.path if p.endswith("src"))])
    command = [sys.executable, "-m", "conveyor", "worker", "--app", "tests.apps.files_app:app"]
    command += ["--queues", "default", "--lease", "5", "--concurrency", "1"]
    with (where / "worker.log").open("ab") as log:
        proc = subprocess.Popen(command, cwd=where, env=environ, stdout=log, stderr=subprocess.STDOUT)
    env.procs.append(proc)
    return proc


@pytest.mark.parametrize("downloads", ["stream", "redirect"])
def test_worker_and_api_share_only_the_bucket(env: Env, s3: SeaweedS3, tmp_path: Path, downloads: str) -> None:
    bucket = s3.bucket()
    store_url = s3.url(bucket, downloads=downloads)
    key = env.create_key("submit", "read", tenant="a")
    server = env.serve("--results", store_url, app="tests.apps.files_app:app")
    _worker_elsewhere(env, store_url, tmp_path / "elsewhere")
    data = b"first line\n" + os.urandom(300_000)
    with server.http(key) as http:
        up = http.post("/v1/uploads?filename=in.bin", content=data)
        assert up.status_code == 201, up.text
        ref = up.json()["ref"]
        job_id = http.post("/v1/jobs", json={"task": "digest", "args": {"data": ref}}).json()["id"]

        def finished() -> dict[str, object] | None:
            status = http.get(f"/v1/jobs/{job_id}").json()
            return status if status["status"] in ("succeeded", "failed") else None

        status = wait_until(finished, timeout=90, what="the job on the other worker")
        assert status["state"] == JobState.SUCCEEDED.value, status
        digest = hashlib.sha256(data).hexdigest()
        assert status["result"] == {"local": digest, "streamed": digest, "name": "in.bin", "in_scratch": True}
        download = http.get(f"/v1/jobs/{job_id}/artifacts/first-line.txt")
        if downloads == "redirect":
            assert download.status_code == 307 and download.headers["location"].startswith(s3.endpoint)
            download = httpx.get(download.headers["location"], timeout=30)
        assert download.status_code == 200 and download.content == b"first line\n"
    # everything went through the bucket: no result folder was made on either side
    assert not (env.tmp / "results").exists() and not (REPO / "var" / "results" / job_id).exists()
    assert not (tmp_path / "elsewhere" / "var").exists()
    keys = s3.keys(bucket)
    upload_id = ref.removeprefix("upload:")
    assert f"conveyor/{job_id}/first-line.txt" in keys
    assert f"conveyor/_uploads/{upload_id}/data" in keys and f"conveyor/_uploads/{upload_id}/jobs/{job_id}" in keys
