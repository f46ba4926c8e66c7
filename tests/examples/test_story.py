"""The end-to-end story (examples/story.py) against a real ``conveyor serve --workers`` of the
example app: uploads, four workloads, SSE progress, signed webhooks, emails, downloads."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.procs import REPO, Env, free_port
from tests.engines import ENGINES, engine_url

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("EXAMPLES_CALLBACK_SECRET", SECRET)
    monkeypatch.setenv("EXAMPLES_DB", str(tmp_path / "examples.db"))
    with engine_url(request.param, tmp_path) as url:
        environment = Env(url, tmp_path)
        try:
            yield environment
        finally:
            environment.stop_all()


def test_the_story_runs_to_the_end(env: Env, tmp_path: Path) -> None:
    smtp_port = free_port()
    server = env.serve(
        "--no-auth",
        "--workers",
        "1",
        "--concurrency",
        "2",
        "--smtp-url",
        f"smtp://127.0.0.1:{smtp_port}",
        app="examples.app:app",
    )
    out = tmp_path / "out"
    story = subprocess.run(
        [sys.executable, "-m", "examples.story", "--url", server.url, "--smtp-port", str(smtp_port), "--out", str(out)],
        cwd=REPO,
        env=env.environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert story.returncode == 0, f"{story.stdout}\n{story.stderr}\n{server.log.read_text()[-3000:]}"
    text = story.stdout
    assert text.count("webhook:  job.succeeded") == 4
    assert text.count("email:    [Conveyor]") == 4
    assert "720p: " in text and "480p: " in text, "transcode progress arrived over SSE"
    assert "The story ran to the end." in text
    files = {p.name for p in out.rglob("*") if p.is_file()}
    assert {"720p.mp4", "480p.mp4", "thumb_1024.jpg", "thumb_64.jpg", "report.pdf", "rejected.csv"} <= files
    assert (next(out.rglob("report.pdf"))).read_bytes().startswith(b"%PDF-")
