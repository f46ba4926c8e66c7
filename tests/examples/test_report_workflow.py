"""The report workflow example: its jobs file matches its Python form, and the notification."""

from __future__ import annotations

import json

from examples import report_workflow


def test_the_jobs_file_is_the_workflow_the_module_describes() -> None:
    lines = [json.loads(line) for line in report_workflow.JOBS_FILE.read_text().splitlines() if line.strip()]
    assert lines == report_workflow.jobs()
    assert [line["step"] for line in lines] == ["data", "pdf", "notify"]
    # notify reads the results of both earlier steps, so it depends on both
    assert lines[2]["depends_on"] == ["pdf", "data"]


def test_the_notification_names_the_figures_and_the_pdf() -> None:
    figures = {"title": "Q4", "total_revenue": 1234567.8, "regions": 4, "best_region": "North"}
    message = report_workflow.compose_message("finance@example.com", figures, {"pages": 7, "bytes": 20480})
    assert message["to"] == "finance@example.com"
    assert message["subject"] == "Your report 'Q4' is ready"
    assert "$1,234,568" in message["body"] and "best region North" in message["body"]
    assert "7 pages (20,480 bytes)" in message["body"]
