"""The workflow API of the app (``task.s``, ``enqueue_many``, ``chain``, ``group``, ``fan_out``),
sync and async, on every engine: what is stored, in one call, and what is refused."""

from __future__ import annotations

import pytest

from conveyor import ConfigError, DependencyPolicy, InvalidArguments, JobState, Workflow
from tests.facade.conftest import Facade


def test_chain_stores_every_step_in_one_workflow(facade: Facade) -> None:
    add = facade.app.get_task("add")
    wf: Workflow = facade("chain", add.s(a=1), add.s(a=2), add.s(a=3).set(step="last"))
    assert [j.state for j in wf] == [JobState.QUEUED, JobState.WAITING, JobState.WAITING]
    assert [j.step for j in wf] == ["add", "add-2", "last"]
    assert wf[1].depends_on == [wf[0].id] and wf[2].depends_on == [wf[1].id]
    assert {j.workflow_id for j in wf} == {wf.id}
    listed = facade("list_jobs", workflow=wf.id).jobs
    assert sorted(j.id for j in listed) == sorted(j.id for j in wf)
    assert wf.step("last").id == wf.last.id


def test_group_with_a_quorum_and_a_policy_on_its_fan_in(facade: Facade) -> None:
    add, send = facade.app.get_task("add"), facade.app.get_task("send")
    members = [add.s(a=i) for i in range(3)]
    wf = facade("group", *members, then=send.s(to="ops"), quorum=2, on_dependency_failure="continue")
    fan_in = wf.last
    assert fan_in.state is JobState.WAITING and fan_in.queue == "mail"
    assert fan_in.depends_on == [m.job_id for m in members]
    assert (fan_in.quorum, fan_in.on_dependency_failure) == (2, DependencyPolicy.CONTINUE)


def test_enqueue_many_takes_any_graph_and_existing_jobs(facade: Facade) -> None:
    add = facade.app.get_task("add")
    before = facade("enqueue", "add", {"a": 0})
    a, b = add.s(a=1).set(step="a"), add.s(a=2).set(step="b", depends_on=[before.id])
    c = add.s(a=3).set(step="c").after(a, b)
    wf = facade("enqueue_many", [c], workflow_id="wf-graph")  # a and b come along
    assert wf.id == "wf-graph" and [j.step for j in wf] == ["a", "b", "c"]
    assert wf.step("c").depends_on == [a.job_id, b.job_id]
    assert wf.step("b").depends_on == [before.id]


def test_fan_out_makes_chunks_and_one_fan_in(facade: Facade) -> None:
    chunk, send = facade.app.get_task("chunk"), facade.app.get_task("send")
    wf = facade("fan_out", chunk, list(range(7)), chunk_size=3, then=send.s(to="x"))
    assert [j.args for j in wf.jobs[:-1]] == [{"items": [0, 1, 2]}, {"items": [3, 4, 5]}, {"items": [6]}]
    assert [j.step for j in wf.jobs[:-1]] == ["chunk[0]", "chunk[1]", "chunk[2]"]
    assert wf.last.depends_on == [j.id for j in wf.jobs[:-1]] and wf.last.state is JobState.WAITING


def test_a_bad_step_refuses_the_whole_batch(facade: Facade) -> None:
    add = facade.app.get_task("add")
    first = add.s(a=1)
    with pytest.raises(InvalidArguments):
        facade("chain", first, add.s(a="not a number"))
    assert facade("get", first.job_id) is None  # nothing of the chain was stored
    with pytest.raises(ConfigError, match="quorum"):
        facade("group", add.s(a=1), add.s(a=2), then=add.s(a=3), quorum=3)
    with pytest.raises(ConfigError, match="unknown signature option"):
        add.s(a=1).set(colour="red")
    with pytest.raises(ConfigError, match="at least one"):
        facade("chain")
