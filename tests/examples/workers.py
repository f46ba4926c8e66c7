"""Example tasks on real worker nodes: a store per engine, ``examples.app:app`` nodes, an SMTP recorder.

The nodes load the example application exactly as ``make run`` does; the test process
submits and inspects through a client app with the same task names and queues on the same
store (``client_app``), so nothing here runs task code in the test process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.types import Job, JobState, QueueConfig
from examples import export, newsletter, thumbnails, transcode, vision
from tests.engines import ENGINES, engine_url
from tests.faults.helpers import WorkerNode, wait_until
from tests.smtp_recorder import SmtpRecorder

APP = "examples.app:app"


def client_app(url: str, results: Path) -> Conveyor:
    """The example app's tasks (names, queues) on ``url``, for submitting and reading jobs."""
    app = Conveyor(url, result_store=str(results), queues=[QueueConfig(q) for q in ("media", "exports", "mail")])
    app.task(name="thumbnails", queue="media")(thumbnails.thumbnails)
    app.task(name="transcode", queue="media")(transcode.transcode)
    app.task(name="classify", queue="media", resources={"gpu": 1})(vision.classify)
    app.task(name="export", queue="exports")(export.export)
    app.task(name="newsletter", queue="mail")(newsletter.newsletter)
    app.task(name=newsletter.CHUNK_TASK, queue="mail")(newsletter.newsletter_chunk)
    return app


@dataclass
class Examples:
    url: str
    tmp: Path
    app: Conveyor
    smtp: SmtpRecorder
    nodes: list[WorkerNode] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "EXAMPLES_DB": str(self.tmp / "examples.db"),
            "CONVEYOR_RESULTS": str(self.tmp / "results"),
            "EXAMPLES_SMTP_URL": self.smtp.url,
        }

    def node(self, queues: str, **kwargs: object) -> WorkerNode:
        env = {**self.env, **kwargs.pop("env", {})}  # type: ignore[dict-item]
        node = WorkerNode(self.url, self.tmp / "logs", app=APP, queues=queues, env=env, **kwargs)  # type: ignore[arg-type]
        self.nodes.append(node.start())
        return node

    def wait_state(self, job_id: str, *states: JobState, timeout: float = 120.0) -> Job:
        def reached() -> Job | None:
            job = self.app.get(job_id)
            return job if job is not None and job.state in states else None

        try:
            return wait_until(reached, timeout, message=f"job {job_id} to be {'/'.join(states)}")
        except pytest.fail.Exception:
            logs = "\n".join(f"--- {n.id}\n{n.log()[-3000:]}" for n in self.nodes)
            pytest.fail(f"job {job_id} is {self.app.get(job_id)}; logs:\n{logs}")

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.app.close()
        self.smtp.stop()


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def examples(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Examples]:
    monkeypatch.setenv("EXAMPLES_DB", str(tmp_path / "examples.db"))
    with engine_url(request.param, tmp_path) as url:
        stack = Examples(url, tmp_path, client_app(url, tmp_path / "results"), SmtpRecorder().start())
        try:
            yield stack
        finally:
            stack.close()
