"""The newsletter: fan-out into chunk jobs, real SMTP, each subscriber mailed exactly once,
even when the worker sending a chunk is SIGKILLed mid-chunk and another node retries it."""

from __future__ import annotations

from collections import Counter

import pytest

from conveyor.types import JobState
from examples import newsletter
from tests.examples.workers import Examples, examples  # noqa: F401 - the fixture
from tests.faults.helpers import wait_until


def _subscribe(count: int) -> list[str]:
    people = [(f"reader{i:04d}@example.com", f"Reader {i}") for i in range(count)]
    newsletter.add_subscribers(people)
    return [email for email, _ in people]


def test_every_subscriber_gets_exactly_one_mail(examples: Examples) -> None:  # noqa: F811
    readers = _subscribe(230)
    examples.node("mail", concurrency=1)
    job = examples.app.enqueue("newsletter", {"subject": "Spring news", "body": "Hello!", "chunk_size": 50})
    done = examples.wait_state(job.id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.result == {"subscribers": 230, "chunks": 5, "new_chunks": 5}
    chunks = examples.app.list_jobs(task=newsletter.CHUNK_TASK, limit=50).jobs
    assert sorted(len(c.args["recipients"]) for c in chunks) == [30, 50, 50, 50, 50]
    for chunk in chunks:
        examples.wait_state(chunk.id, JobState.SUCCEEDED)
    mails = examples.smtp.snapshot()
    counts = Counter(r for m in mails for r in m.recipients)
    assert counts == Counter(readers)
    assert {m.subject for m in mails} == {"Spring news"}
    assert all(m.text.strip() == "Hello!" for m in mails)


def test_a_chunk_killed_mid_way_mails_nobody_twice(examples: Examples) -> None:  # noqa: F811
    readers = _subscribe(20)
    examples.smtp.hold_at(8)  # the 8th mail hangs: 7 were accepted (and recorded) before it
    first = examples.node("mail", concurrency=1, lease=2.0)
    job = examples.app.enqueue("newsletter", {"subject": "Kill test", "body": "Once only.", "chunk_size": 20})
    examples.wait_state(job.id, JobState.SUCCEEDED)
    wait_until(examples.smtp.holding.is_set, 120, message="the 8th mail to reach the SMTP server")
    assert len(examples.smtp.snapshot()) == 7
    first.kill()  # SIGKILL mid-chunk, a mail in flight
    examples.smtp.release()  # the in-flight mail is answered 451 to nobody and not recorded
    [chunk] = examples.app.list_jobs(task=newsletter.CHUNK_TASK).jobs
    assert chunk.state is JobState.RUNNING
    examples.node("mail", concurrency=1, lease=2.0)  # takes the chunk over once its lease expired
    done = examples.wait_state(chunk.id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.attempts == 2
    assert done.result == {"recipients": 20, "sent_now": 13, "refused": 0}
    counts = Counter(r for m in examples.smtp.snapshot() for r in m.recipients)
    assert counts == Counter(readers), "every subscriber exactly once"


@pytest.mark.parametrize("address", ["not-an-address", "a@b", "x y@example.com"])
def test_bad_subscriber_address_is_refused(address: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EXAMPLES_DB", str(tmp_path / "examples.db"))
    with pytest.raises(ValueError, match="not an email address"):
        newsletter.add_subscribers([(address, "X")])
