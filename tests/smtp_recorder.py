"""A real SMTP server for tests (aiosmtpd on a free port) that records every mail it accepts.

``hold_at(n)`` makes the n-th DATA wait (the client sees no answer) until ``release()``,
then answer 451 without recording it: a test can kill the sender while a mail is in flight
and know exactly which mails were accepted before.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return " ".join(str(self.message["Subject"]).split())

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        return body.get_content() if body is not None else ""  # type: ignore[union-attr]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpRecorder:
    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self._lock = threading.Lock()
        self._hold_at: int | None = None
        self._seen = 0
        self.holding = threading.Event()
        self._release = threading.Event()
        self.port = _free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off&timeout=10"

    def start(self) -> SmtpRecorder:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._controller.stop()

    def hold_at(self, n: int) -> None:
        self._hold_at = n

    def release(self) -> None:
        self._release.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self._seen += 1
            held = self._seen == self._hold_at
        if held:
            self.holding.set()
            await asyncio.to_thread(self._release.wait, 120)
            return "451 4.3.0 try again later"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.mails.append(Mail(envelope.mail_from, tuple(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        with self._lock:
            return [m for m in self.mails if address in m.recipients]

    def snapshot(self) -> list[Mail]:
        with self._lock:
            return list(self.mails)
