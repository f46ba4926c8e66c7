"""Suite-wide hooks: in CI (``CI=true``) a skipped test is a failed test.

Locally a skip stays a visible skip (``-rs`` lists each with its reason); in CI it fails with
the skip reason in the message, so CI can never pass green by not running something (an engine
whose server is down, a missing driver, an optional capability nobody declares). An expected
failure (``xfail``) is not a skip and is left alone.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests.engines import IN_CI


def _skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = f"skipped in CI (CI=true makes every skip a failure): {_skip_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        _fail_skip(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()
    if IN_CI and report.skipped:
        _fail_skip(report)
