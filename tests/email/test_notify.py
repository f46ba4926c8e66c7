"""Email notification of finished jobs: per-submit ``notify`` and configured recipients, sent as
retried jobs through a real SMTP server, from the engine's outbox (a node killed right after a
job ended loses no mail)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.email import EMAIL_QUEUE, SEND_TASK, targets
from conveyor.errors import ConfigError
from conveyor.types import Job, JobState
from tests.api.procs import Env
from tests.apps.email_app import OPS, make_app
from tests.engines import ENGINES, engine_url
from tests.faults.helpers import WorkerNode, wait_until
from tests.smtp_recorder import Mail, SmtpRecorder

APP = "tests.apps.email_app:app"


class Stack:
    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp = url, tmp
        self.smtp = SmtpRecorder().start()
        self.app = make_app(url, self.smtp.url)
        self.nodes: list[WorkerNode] = []

    def node(self, **env: str) -> WorkerNode:
        node = WorkerNode(
            self.url,
            self.tmp / "logs",
            app=APP,
            queues=f"default,{EMAIL_QUEUE}",
            extra=("--smtp-url", self.smtp.url),
            env={"CONVEYOR_RESULTS": str(self.tmp / "results"), **env},
        )
        self.nodes.append(node.start())
        return node

    def submit(self, task: str, args: dict[str, object], notify: list[str]) -> Job:
        request = replace(self.app.build_request(task, args), callback_url=targets.encode(None, notify))
        return self.app.run_sync(lambda b: b.enqueue(request)).job

    def mails_to(self, address: str, count: int) -> list[Mail]:
        def arrived() -> list[Mail] | None:
            found = self.smtp.to(address)
            return found if len(found) >= count else None

        try:
            return wait_until(arrived, 90, message=f"{count} mail(s) to {address}")
        except pytest.fail.Exception:
            logs = "\n".join(n.log()[-3000:] for n in self.nodes)
            pytest.fail(f"mails: {[(m.recipients, m.subject) for m in self.smtp.snapshot()]}; logs:\n{logs}")

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.app.close()
        self.smtp.stop()


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    with engine_url(request.param, tmp_path) as url:
        stack = Stack(url, tmp_path)
        try:
            yield stack
        finally:
            stack.close()


def test_notify_mails_the_submitter_once_the_job_succeeds(stack: Stack) -> None:
    stack.node()
    job = stack.submit("mail.ok", {"value": 21}, ["me@example.com", "boss@example.com"])
    [mine] = stack.mails_to("me@example.com", 1)
    [boss] = stack.mails_to("boss@example.com", 1)
    assert mine.subject == f"[Conveyor] mail.ok succeeded ({job.id})"
    assert '"double": 42' in mine.text and job.id in mine.text
    assert mine.message["From"] == "jobs@example.com"
    assert mine.message["Message-ID"] != boss.message["Message-ID"]
    sends = [j for j in stack.app.list_jobs(queue=EMAIL_QUEUE).jobs if j.args["job_id"] == job.id]
    assert len(sends) == 2 and {j.task for j in sends} == {SEND_TASK}
    assert not stack.smtp.to(OPS), "ops is only told about mail.boom"


def test_a_failure_mails_ops_with_the_traceback_and_the_submitter_without(stack: Stack) -> None:
    stack.node()
    job = stack.submit("mail.boom", {"message": "disk on fire"}, ["me@example.com"])
    [ops] = stack.mails_to(OPS, 1)
    [mine] = stack.mails_to("me@example.com", 1)
    assert ops.subject == mine.subject == f"[Conveyor] mail.boom failed ({job.id})"
    assert "ValueError: disk on fire" in ops.text and "ValueError: disk on fire" in mine.text
    assert "Traceback" in ops.text
    assert "Traceback" not in mine.text


def test_a_node_killed_right_after_the_end_loses_no_mail(stack: Stack) -> None:
    """The end and its outbox entry commit together; the node dies before announcing anything."""
    doomed = stack.node(EMAIL_TEST_KILL_AFTER_COMPLETE="1")
    job = stack.submit("mail.ok", {"value": 1}, ["me@example.com"])
    doomed.wait(timeout=90)
    assert stack.app.get(job.id).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    assert not stack.smtp.to("me@example.com")
    stack.node()  # a healthy node drains the outbox
    assert len(stack.mails_to("me@example.com", 1)) == 1


def test_the_mail_is_retried_until_the_server_takes_it(stack: Stack) -> None:
    stack.smtp.hold_at(1)  # the first try hangs, then gets 451
    stack.node()
    job = stack.submit("mail.ok", {"value": 2}, ["me@example.com"])
    wait_until(stack.smtp.holding.is_set, 90, message="the first send to reach the server")
    stack.smtp.release()
    [mail] = stack.mails_to("me@example.com", 1)
    assert job.id in mail.subject
    [send] = [j for j in stack.app.list_jobs(queue=EMAIL_QUEUE).jobs if j.args["job_id"] == job.id]
    send = wait_until(lambda: (j := stack.app.get(send.id)) and j.state is JobState.SUCCEEDED and j, 60)
    assert send.attempts == 2


def test_settings_refuse_bad_addresses_and_urls() -> None:
    from conveyor.email import EmailSettings

    with pytest.raises(ConfigError, match="not an email address"):
        EmailSettings(smtp_url="smtp://127.0.0.1:25", recipients=("nobody",))
    with pytest.raises(ConfigError, match="smtp://host:port"):
        EmailSettings(smtp_url="http://127.0.0.1:25")
    with pytest.raises(ConfigError, match="starttls"):
        EmailSettings(smtp_url="smtp://127.0.0.1:25?starttls=maybe")


def test_targets_round_trip() -> None:
    stored = targets.encode("https://me.example.com/hook?a=1", ["a@x.com", "b+tag@y.org"])
    assert stored == "https://me.example.com/hook?a=1 mailto:a@x.com,b+tag@y.org"
    assert targets.decode(stored) == ("https://me.example.com/hook?a=1", ["a@x.com", "b+tag@y.org"])
    assert targets.decode("https://x.example.com/h") == ("https://x.example.com/h", [])
    assert targets.encode(None, []) is None


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def http_env(tmp_path: Path) -> Iterator[tuple[Env, SmtpRecorder]]:
    smtp = SmtpRecorder().start()
    with engine_url(ENGINES[0], tmp_path) as url:
        env = Env(url, tmp_path)
        try:
            yield env, smtp
        finally:
            env.stop_all()
            smtp.stop()


def test_post_jobs_with_notify_mails_the_address(http_env: tuple[Env, SmtpRecorder]) -> None:
    env, smtp = http_env
    server = env.serve("--no-auth", "--workers", "1", "--concurrency", "1", "--smtp-url", smtp.url, app=APP)
    with server.http() as http:
        answer = http.post(
            "/v1/jobs", json={"task": "mail.ok", "args": {"value": 5}, "notify": {"email": ["me@example.com"]}}
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        bad = http.post("/v1/jobs", json={"task": "mail.ok", "args": {"value": 5}, "notify": {"email": ["nope"]}})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert any("notify" in e["field"] for e in bad.json()["errors"]), bad.json()
    mails = wait_until(lambda: smtp.to("me@example.com"), 90, message="the notification mail")
    assert len(mails) == 1 and job_id in mails[0].subject


def test_notify_without_an_smtp_server_is_a_422(http_env: tuple[Env, SmtpRecorder], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env, _ = http_env
    server = env.serve("--no-auth", app="tests.apps.api_app:app")
    with server.http() as http:
        body = {"task": "add", "args": {"a": 1, "b": 2}, "notify": {"email": ["me@example.com"]}}
        answer = http.post("/v1/jobs", json=body)
    assert answer.status_code == 422, answer.text
    assert "no SMTP server" in answer.json()["detail"]


def test_client_app_default_has_no_email(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_SMTP_URL", raising=False)
    app = Conveyor(f"sqlite:///{tmp_path / 'c.db'}")
    assert app.email is None and SEND_TASK not in app.tasks


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from conveyor.email import EmailSettings

    monkeypatch.setenv("CONVEYOR_SMTP_URL", "smtps://mailer:p%40ss@smtp.example.com")
    settings = EmailSettings.from_env()
    assert settings is not None and settings.sender == "conveyor@localhost.localdomain"
    server = settings.server
    assert server is not None and (server.host, server.port, server.use_tls) == ("smtp.example.com", 465, True)
    assert (server.username, server.password) == ("mailer", "p@ss")
    monkeypatch.setenv("CONVEYOR_SMTP_FROM", "jobs@example.com")
    assert EmailSettings.from_env().sender == "jobs@example.com"  # type: ignore[union-attr]
