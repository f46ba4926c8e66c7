"""conveyor queues limits: the declared limits of the app and how full each key is, on every engine."""

from __future__ import annotations

import json

from tests.cli.conftest import Cli, claim_one, enqueue

LIMITS_APP = "examples.limits:app"


def test_queues_limits_lists_declarations_and_live_keys(cli: Cli) -> None:
    app = cli.app()
    printer = {"concurrency_key": "printer:7", "concurrency_limit": 1}
    for i in range(3):
        enqueue(app, "print_label", "labels", args={"printer": 7, "text": f"box {i}"}, **printer)
    enqueue(
        app,
        "send_email",
        "mail",
        args={"to": "a@b.c", "subject": "s"},
        rate_key="smtp",
        rate_limit=100,
        rate_period=60.0,
    )
    claim_one(app, "labels")
    result = cli("queues", "limits", "--json", "--app", LIMITS_APP)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    declared = {d["task"]: d for d in data["declared"]}
    assert declared["print_label"]["concurrency"] == 1 and declared["print_label"]["concurrency_key"] == "from args"
    assert (declared["send_email"]["rate_limit"], declared["send_email"]["rate_period"]) == (100, 60.0)
    assert declared["sync_crm"]["unique_key"] == "from args"
    keys = {(k["kind"], k["key"]): k for k in data["keys"]}
    assert (keys["concurrency", "printer:7"]["running"], keys["concurrency", "printer:7"]["queued"]) == (1, 2)
    assert keys["rate", "smtp"]["queued"] == 1 and data["complete"] is True
    table = cli("queues", "limits")
    assert table.returncode == 0, table.stderr
    assert "printer:7" in table.stdout and "1 running" in table.stdout and "declared" not in table.stdout
