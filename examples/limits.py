"""Limits in an example app: ``conveyor worker --app examples.limits:app --queues invoices,mail,labels,default``.

* ``render_invoice``: at most 2 running per tenant, so one big tenant cannot take every worker.
* ``send_email``: at most 100 starts per minute through the SMTP relay (one key for all mail).
* ``print_label``: one job at a time per printer.
* ``sync_crm``: one pending or running sync per CRM account; a second submit gets the first.
"""

from __future__ import annotations

import os
import time

from conveyor import Conveyor

app = Conveyor(os.environ.get("CONVEYOR_URL", "sqlite:///var/conveyor.db"))


@app.task(name="render_invoice", queue="invoices", concurrency=2, concurrency_key=lambda a: f"tenant:{a['tenant']}")
def render_invoice(tenant: str, invoice_id: int, seconds: float = 1.0) -> dict[str, object]:
    time.sleep(seconds)
    return {"tenant": tenant, "invoice": invoice_id}


@app.task(name="send_email", queue="mail", rate_limit="100/m", rate_key="smtp-relay")
def send_email(to: str, subject: str) -> None:
    return None


@app.task(name="print_label", queue="labels", concurrency=1, concurrency_key=lambda a: f"printer:{a['printer']}")
def print_label(printer: int, text: str, seconds: float = 2.0) -> None:
    time.sleep(seconds)


@app.task(name="sync_crm", unique_key=lambda a: f"crm:{a['account']}")
def sync_crm(account: str, seconds: float = 5.0) -> None:
    time.sleep(seconds)
