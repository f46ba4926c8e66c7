"""conveyor submit with ``key=@file``: the file is uploaded and the task gets its ref.

Locally through ``app.upload`` into the app's result store, over HTTP through
``POST /v1/uploads``; the real examples app imports the CSV in a real worker either way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.cli.conftest import EXAMPLES_APP, Cli

CSV = "name,email,age\nAda Lovelace,ada@example.com,36\nNobody,not-an-email,3\nGrace Hopper,grace@example.com,85\n"


def _csv(tmp: Path) -> Path:
    path = tmp / "contacts.csv"
    path.write_text(CSV)
    return path


def test_local_submit_uploads_the_file(cli: Cli) -> None:
    path = _csv(cli.tmp)
    result = cli("submit", "import_contacts", f"csv=@{path}", "--app", EXAMPLES_APP)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip().splitlines()[0]
    app = cli.app()
    job = app.get(job_id)
    assert job is not None and str(job.args["csv"]).startswith("upload:")
    upload = app.file_store.upload(job.args["csv"])
    assert upload is not None and upload.filename == "contacts.csv"
    assert upload.sha256 == hashlib.sha256(CSV.encode()).hexdigest()
    worker = cli("worker", "--app", EXAMPLES_APP, "--queues", "imports", "--burst", "--concurrency", "1")
    assert worker.returncode == 0, worker.stderr
    done = app.get(job_id)
    assert done is not None and done.result == {"rows": 3, "imported": 2, "rejected": 1}, done


def test_missing_file_is_one_error_line_and_nothing_is_submitted(cli: Cli) -> None:
    result = cli("submit", "import_contacts", "csv=@no/such/file.csv", "--app", EXAMPLES_APP)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: file 'no/such/file.csv' (from csv=@no/such/file.csv) does not exist"
    ]
    assert "Traceback" not in result.stderr
    assert cli.app().list_jobs().jobs == []


def test_remote_submit_uploads_over_http_and_imports(server: tuple[Cli, str]) -> None:
    cli, base = server
    path = _csv(cli.tmp)
    result = cli("submit", "import_contacts", f"csv=@{path}", "--server", base, "--wait")
    assert result.returncode == 0, result.stderr
    assert "uploaded" in result.stderr and "upload:" in result.stderr
    job_id = result.stdout.strip().splitlines()[0]
    status = httpx.get(f"{base}/v1/jobs/{job_id}", timeout=30).json()
    assert status["result"] == {"rows": 3, "imported": 2, "rejected": 1}, status
    missing = cli("submit", "import_contacts", "csv=@/nonexistent.csv", "--server", base)
    assert missing.returncode != 0 and missing.stderr.startswith("error: file '/nonexistent.csv'")
