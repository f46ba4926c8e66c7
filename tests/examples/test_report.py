"""The report example: a real multi-page PDF, progress at every stage, deterministic data."""

from __future__ import annotations

from pathlib import Path

import pytest
from examples.app import app as example_app

from conveyor.errors import InvalidArguments, JobCanceled
from examples import report
from tests.examples.conftest import Harness, pdf_page_count


def _artifact_bytes(harness: Harness, job_id: str, name: str) -> bytes:
    job = harness.job(job_id)
    [art] = [a for a in job.artifacts if a.name == name]
    data = b"".join(harness.app.result_store.open(art))
    assert len(data) == art.size
    return data


@pytest.mark.parametrize(("regions", "months"), [(4, 12), (1, 3), (8, 36)])
def test_report_renders_one_page_per_region_plus_three(harness: Harness, regions: int, months: int) -> None:
    run = harness.run("report", {"title": "Quarterly sales", "months": months, "regions": regions})
    pdf = _artifact_bytes(harness, run.job.id, "report.pdf")
    assert pdf.startswith(b"%PDF-")
    expected = report.STATIC_PAGES + regions
    assert pdf_page_count(pdf) == expected
    assert run.result["pages"] == expected
    assert run.result["bytes"] == len(pdf)
    csv_rows = _artifact_bytes(harness, run.job.id, "data.csv").decode().strip().splitlines()
    assert len(csv_rows) == 1 + regions * months


def test_report_reports_progress_at_every_stage(harness: Harness) -> None:
    run = harness.run("report", {"title": "Stages", "regions": 2})
    progress = harness.progress(run.job.id)
    messages = [m for _, m in progress]
    assert messages == [
        "generating data",
        "summarising",
        "drawing revenue chart",
        "drawing trend chart",
        "region North (1/2)",
        "region South (2/2)",
        "rendering PDF",
        "saving artifacts",
    ]
    fractions = [f for f, _ in progress if f is not None]
    assert len(fractions) == len(progress)
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] < 1
    stored = harness.job(run.job.id)
    assert stored.progress == fractions[-1] and stored.progress_message == "saving artifacts"


def test_report_data_is_deterministic_from_its_args() -> None:
    a = report.generate_data("T", 12, 4, seed=1)
    assert a == report.generate_data("T", 12, 4, seed=1)
    assert a != report.generate_data("T", 12, 4, seed=2)
    assert a.months[0] == "Jan 2024" and a.months[-1] == "Dec 2024"
    assert report.month_labels(14)[:2] == ["Nov 2023", "Dec 2023"]


def test_report_same_args_same_totals(harness: Harness) -> None:
    first = harness.run("report", {"title": "Again", "seed": 5})
    second = harness.run("report", {"title": "Again", "seed": 5})
    assert first.result["total_revenue"] == second.result["total_revenue"]


def test_canceled_report_stops_before_rendering(harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(JobCanceled):
        harness.run("report", {"title": "Never"}, canceled=True)
    assert not list((tmp_path / "results").glob("*/report.pdf"))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x", "months": 0}, "months"),
        ({"title": "x", "months": 37}, "months"),
        ({"title": "x", "regions": 9}, "regions"),
        ({"title": "x", "pace": 60}, "pace"),
        ({"title": "x", "colour": "red"}, "colour"),
    ],
)
def test_report_arguments_are_validated_at_submit(args: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArguments) as err:
        example_app.get_task("report").validate(args)
    assert [e["field"] for e in err.value.errors] == [field]


def test_example_app_registers_every_task_on_a_declared_queue() -> None:
    assert set(example_app.tasks) >= {
        "report",
        "import_contacts",
        "countdown",
        "flaky",
        "thumbnails",
        "transcode",
        "classify",
        "export",
        "newsletter",
        "newsletter_chunk",
    }
    for task in example_app.tasks.values():
        assert task.options.queue in example_app.queues
