"""Where a job's end is announced, as stored on the job: a callback URL and/or mailto recipients.

The engines already store one announcement field per job (``callback_url``, written by the
same write as the job, so the outbox guarantee covers it). Per-submit email recipients join
it as an RFC 6068 ``mailto:`` URI, space-separated from the webhook URL (a URL never contains a
space): ``https://me.example.com/hook mailto:a@x.com,b@y.com``. No engine schema changes; see
docs/decisions/0008-email-and-resources.md for why, and what it costs.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

MAILTO = "mailto:"


def encode(callback_url: str | None, emails: list[str] | tuple[str, ...]) -> str | None:
    """The stored value for a webhook URL (or None) plus email recipients (possibly none)."""
    parts = [callback_url] if callback_url else []
    if emails:
        parts.append(MAILTO + ",".join(quote(e, safe="@.+-_") for e in emails))
    return " ".join(parts) or None


def decode(stored: str | None) -> tuple[str | None, list[str]]:
    """(webhook URL or None, email recipients) of a stored value; a plain URL has no recipients."""
    url: str | None = None
    emails: list[str] = []
    for part in (stored or "").split():
        if part.startswith(MAILTO):
            emails.extend(unquote(e) for e in part[len(MAILTO) :].split(",") if e)
        elif url is None:
            url = part
    return url, emails
