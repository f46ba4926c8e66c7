"""Papercut: ``conveyor queues`` and the API list the same queues (every declared one)."""

from __future__ import annotations

import json

from tests.security.conftest import APP, Stack


def test_conveyor_queues_lists_every_declared_queue_like_the_api(stack: Stack) -> None:
    with stack.server.http(stack.admin) as http:
        api = {q["name"] for q in http.get("/v1/queues").json()["queues"]}
    assert {"default", "reports", "conveyor.webhooks"} <= api
    with_app = stack.env.cli("queues", "--app", APP, "--json")
    assert with_app.returncode == 0, with_app.stderr
    assert {q["queue"] for q in json.loads(with_app.stdout)} == api
    # without the app the engine cannot know the declared queues: the CLI says so, not silently less
    bare = stack.env.cli("queues", "--json")
    assert bare.returncode == 0, bare.stderr
    assert "--app" in bare.stderr and "declared" in bare.stderr
