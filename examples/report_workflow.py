"""A three-step workflow: gather the sales data, render the PDF report, notify the reader.

``data`` (``sales_summary``) computes the figures and saves them as CSV; ``pdf`` (the ``report``
task of ``examples/report.py``) renders the multi-page PDF; ``notify`` (``notify_report``) depends on
both and reads their results from ``ctx.results`` (keyed by step name; a step sees the results
of its own dependencies) and "sends" the e-mail once: the message is
recorded as a once-only effect, so a retried notify never mails twice. With the default
dependency policy (``cancel``) a failed ``pdf`` cancels ``notify``, whose error names it.

Start it against ``make run`` with the jobs file next to this module::

    conveyor submit --server http://127.0.0.1:8000 --from-file examples/report_workflow.jsonl --wait

or from Python: ``ConveyorClient(url).submit_batch(report_workflow.jobs())``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from conveyor import JobContext
from examples import report

JOBS_FILE = Path(__file__).with_name("report_workflow.jsonl")
Recipient = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


def sales_summary(
    ctx: JobContext, title: report.Title, months: report.Months = 12, regions: report.Regions = 4, seed: int = 0
) -> dict[str, Any]:
    """Step ``data``: the report's figures (the same the PDF shows), saved as data.csv."""
    ctx.progress(0.2, "generating data")
    data = report.generate_data(title, months, regions, seed)
    ctx.progress(0.7, "saving data.csv")
    ctx.save_artifact("data.csv", report.data_csv(data), "text/csv")
    best = max(data.regions, key=lambda name: sum(data.revenue[name]))
    return {"title": title, "total_revenue": data.total_revenue(), "regions": len(data.regions), "best_region": best}


def compose_message(to: str, figures: dict[str, Any], pdf: dict[str, Any]) -> dict[str, Any]:
    """The notification for the finished report (pure: the test checks it directly)."""
    subject = f"Your report {figures['title']!r} is ready"
    body = (
        f"{figures['title']}: total revenue ${figures['total_revenue']:,.0f} over {figures['regions']} region(s), "
        f"best region {figures['best_region']}. The PDF has {pdf['pages']} pages ({pdf['bytes']:,} bytes)."
    )
    return {"to": to, "subject": subject, "body": body}


def notify_report(ctx: JobContext, to: Recipient) -> dict[str, Any]:
    """Step ``notify``: tell ``to`` the report is ready, once, from the results of ``data`` and ``pdf``."""
    message = compose_message(to, ctx.results["data"], ctx.results["pdf"])
    # a real app would call its mail service here; the effect record makes a retry skip it
    return ctx.once("email", lambda: {**message, "sent": True})


def jobs(title: str = "Quarterly sales", to: str = "finance@example.com", pace: float = 0.2) -> list[dict[str, Any]]:
    """The workflow as batch items (``POST /v1/jobs:batch``), the same as ``report_workflow.jsonl``."""
    args = {"title": title, "months": 12, "regions": 4}
    return [
        {"task": "sales_summary", "args": args, "step": "data"},
        {"task": "report", "args": {**args, "pace": pace}, "step": "pdf", "depends_on": ["data"]},
        {"task": "notify_report", "args": {"to": to}, "step": "notify", "depends_on": ["pdf", "data"]},
    ]
