"""The pattern's story, end to end, through the HTTP API of a running job service.

    EXAMPLES_CALLBACK_SECRET=whsec_... CONVEYOR_SMTP_URL=smtp://127.0.0.1:8025 make run
    python -m examples.story --url http://127.0.0.1:8000 --smtp-port 8025

1. uploads a video, a photo and a CSV of contacts (``POST /v1/uploads``; generated when not given);
2. submits a transcode, thumbnails, the contacts import and a PDF report, each with a
   ``callback_url`` (a signed webhook to a receiver this script runs) and ``notify`` (a mail
   to an SMTP sink this script runs on ``--smtp-port``);
3. watches every job's progress live over Server-Sent Events;
4. waits for each job's webhook (signature checked) and email;
5. downloads every artifact into ``--out`` and prints a summary.

Webhooks need the server's callback secret in ``$EXAMPLES_CALLBACK_SECRET`` here too (to check
signatures); email needs ``aiosmtpd`` (a dev dependency) and a server started with
``--smtp-url smtp://127.0.0.1:<smtp-port>``. Without them the story says so and goes on.
Exit status 0 when every job succeeded and everything announced arrived.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

DEADLINE = 600.0


@dataclass
class Story:
    """What happened to one job of the story."""

    task: str
    job_id: str
    state: str = "queued"
    progress: list[str] = field(default_factory=list)
    result: Any = None
    error: Any = None
    artifacts: list[Path] = field(default_factory=list)
    webhook: str | None = None
    email: str | None = None


# -- inputs ------------------------------------------------------------------------------------


def make_video(path: Path, seconds: int = 4) -> Path:
    import imageio_ffmpeg

    lavfi = [
        *("-f", "lavfi", "-i", f"testsrc=size=1280x720:rate=25:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"),
    ]
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", *lavfi, *codecs, "-y", str(path)], check=True)
    return path


def make_photo(path: Path) -> Path:
    from PIL import Image

    img = Image.new("RGB", (1600, 1200), (30, 90, 200))
    img.paste((230, 180, 30), (0, 0, 800, 1200))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown upright
    img.save(path, "JPEG", exif=exif, quality=90)
    return path


def make_csv(path: Path, rows: int = 2000) -> Path:
    rng = random.Random(7)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["name", "email", "age"])
        for i in range(rows):
            bad = i % 97 == 0  # a few rows fail validation and come back in rejected.csv
            writer.writerow(
                [f"Person {i}", f"person{i}@example.com" if not bad else "not-an-email", rng.randint(18, 90)]
            )
    return path


# -- receivers ---------------------------------------------------------------------------------


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that checks Standard Webhooks signatures and keeps the events."""

    def __init__(self, secret: str) -> None:
        from standardwebhooks import Webhook

        self.verifier = Webhook(secret)
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    event = receiver.verifier.verify(body, dict(self.headers))
                except Exception:
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.events.append(event)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/story"

    def of(self, job_id: str) -> dict[str, Any] | None:
        with self.lock:
            return next((e for e in self.events if e["data"]["id"] == job_id), None)

    def stop(self) -> None:
        self.server.shutdown()


class MailSink:
    """An SMTP server (aiosmtpd) on 127.0.0.1:port that keeps every mail it is given."""

    def __init__(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.mails: list[tuple[list[str], str]] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                import email
                import email.policy

                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                subject = " ".join(str(message["Subject"]).split())
                sink.mails.append((list(envelope.rcpt_tos), subject))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()

    def of(self, job_id: str) -> str | None:
        return next((subject for _, subject in list(self.mails) if job_id in subject), None)

    def stop(self) -> None:
        self.controller.stop()


# -- the API -----------------------------------------------------------------------------------


def upload(http: httpx.Client, path: Path, content_type: str) -> str:
    with open(path, "rb") as body:
        answer = http.post(
            "/v1/uploads", params={"filename": path.name}, content=body, headers={"content-type": content_type}
        )
    answer.raise_for_status()
    return str(answer.json()["ref"])


def submit(http: httpx.Client, task: str, args: dict[str, Any], extra: dict[str, Any]) -> str:
    """Submit a job; a server without SMTP refuses ``notify`` (422): the story goes on without email."""
    answer = http.post("/v1/jobs", json={"task": task, "args": args, **extra})
    if answer.status_code == 422 and "notify" in extra and "SMTP" in answer.text:
        print("email: skipped (the server has no --smtp-url)")
        extra.pop("notify")
        answer = http.post("/v1/jobs", json={"task": task, "args": args, **extra})
    if answer.status_code != 202:
        raise SystemExit(f"error: submitting {task} was refused: {answer.status_code} {answer.text}")
    return str(answer.json()["id"])


def sse(http: httpx.Client, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event type, data) of the job's event stream, until it ends at the job's terminal state."""
    with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=httpx.Timeout(30, read=DEADLINE)) as stream:
        kind, data = "", ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif not line and data:
                yield kind, json.loads(data)
                kind, data = "", ""


def watch(http: httpx.Client, story: Story, lock: threading.Lock) -> None:
    for kind, event in sse(http, story.job_id):
        if kind == "progress":
            detail = event.get("data") or {}
            fraction = detail.get("fraction")
            line = f"{fraction:4.0%} {detail.get('message') or ''}" if fraction is not None else detail.get("message")
            story.progress.append(str(line))
            with lock:
                print(f"  [{story.task:>15}] {line}", flush=True)
        elif kind == "state":
            story.state = str(event.get("state"))
            with lock:
                print(f"  [{story.task:>15}] -> {story.state}", flush=True)


def download(http: httpx.Client, story: Story, out: Path) -> None:
    job = http.get(f"/v1/jobs/{story.job_id}").json()
    story.state, story.result, story.error = job["state"], job.get("result"), job.get("error")
    folder = out / f"{story.task}-{story.job_id[:8]}"
    for artifact in job.get("artifacts") or []:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / artifact["name"]
        with http.stream("GET", f"/v1/jobs/{story.job_id}/artifacts/{artifact['name']}") as answer:
            answer.raise_for_status()
            with open(target, "wb") as handle:
                for chunk in answer.iter_bytes():
                    handle.write(chunk)
        story.artifacts.append(target)


def _wait(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


# -- the story ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", default=os.environ.get("CONVEYOR_API", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("CONVEYOR_KEY"), help="API key (none with --no-auth)")
    parser.add_argument("--video", type=Path, help="a video file (default: 4 s generated)")
    parser.add_argument("--photo", type=Path, help="a JPEG (default: generated, with an EXIF orientation)")
    parser.add_argument("--csv", type=Path, help="contacts CSV with name,email,age (default: 2,000 rows)")
    parser.add_argument("--smtp-port", type=int, default=8025, help="run the mail sink here (0: no email)")
    parser.add_argument("--email", default="you@example.com", help="address notified of each job's end")
    parser.add_argument("--out", type=Path, default=Path("var/story"), help="where artifacts are downloaded")
    parser.add_argument("--timeout", type=float, default=DEADLINE, help="seconds for the whole story")
    args = parser.parse_args(argv)

    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    http = httpx.Client(base_url=args.url, headers=headers, timeout=60, follow_redirects=True)
    try:
        tasks = {t["name"]: t for t in http.get("/v1/tasks").raise_for_status().json()["tasks"]}
    except httpx.HTTPError as exc:
        print(f"error: no job service at {args.url}: {exc}", file=sys.stderr)
        return 2
    missing = {"transcode", "thumbnails", "import_contacts", "report"} - set(tasks)
    if missing:
        print(f"error: the server lacks task(s) {', '.join(sorted(missing))}: serve examples.app:app", file=sys.stderr)
        return 2

    secret = os.environ.get("EXAMPLES_CALLBACK_SECRET")
    hooks = WebhookReceiver(secret) if secret else None
    mails: MailSink | None = None
    if args.smtp_port:
        try:
            mails = MailSink(args.smtp_port)
        except ImportError:
            print("email: skipped (aiosmtpd is not installed: pip install aiosmtpd)")
    if hooks is None:
        print("webhooks: skipped (set EXAMPLES_CALLBACK_SECRET here and for the server)")

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        print(f"Uploading inputs to {args.url} ...")
        video = upload(http, args.video or make_video(scratch / "clip.mp4"), "video/mp4")
        photo = upload(http, args.photo or make_photo(scratch / "photo.jpg"), "image/jpeg")
        csv_path = args.csv or make_csv(scratch / "contacts.csv")
        params = tasks["import_contacts"].get("args_schema", tasks["import_contacts"].get("schema", {}))
        takes_upload = "csv" in (params.get("properties") or {})
        contacts = {"csv": upload(http, csv_path, "text/csv")} if takes_upload else {"csv_text": csv_path.read_text()}

    extra: dict[str, Any] = {}
    if hooks is not None:
        extra["callback_url"] = hooks.url
    if mails is not None:
        extra["notify"] = {"email": [args.email]}
    print("Submitting the jobs ...")
    stories = [
        Story("transcode", submit(http, "transcode", {"video": video, "renditions": ["720p", "480p"]}, extra)),
        Story("thumbnails", submit(http, "thumbnails", {"image": photo, "sizes": [1024, 256, 64]}, extra)),
        Story("import_contacts", submit(http, "import_contacts", contacts, extra)),
        Story("report", submit(http, "report", {"title": "Story sales", "regions": 3}, extra)),
    ]
    print("Watching progress over SSE ...")
    lock = threading.Lock()
    watchers = [threading.Thread(target=watch, args=(http, s, lock), daemon=True) for s in stories]
    for thread in watchers:
        thread.start()
    for thread in watchers:
        thread.join(args.timeout)

    for story in stories:
        download(http, story, args.out)
    if hooks is not None:
        _wait(lambda: all(hooks.of(s.job_id) for s in stories), 120)
        for story in stories:
            event = hooks.of(story.job_id)
            story.webhook = event["type"] if event else None
    if mails is not None and "notify" not in extra:
        mails.stop()
        mails = None
    if mails is not None:
        _wait(lambda: all(mails.of(s.job_id) for s in stories), 120)
        for story in stories:
            story.email = mails.of(story.job_id)

    print("\nSummary")
    ok = True
    for story in stories:
        ok &= story.state == "succeeded"
        ok &= hooks is None or story.webhook == "job.succeeded"
        ok &= mails is None or story.email is not None
        print(f"  {story.task:<16} {story.state:<10} {story.job_id}")
        print(f"      result:   {json.dumps(story.result)[:150]}")
        if story.error:
            print(f"      error:    {story.error}")
        print(f"      progress: {len(story.progress)} update(s), last {story.progress[-1] if story.progress else '-'}")
        print(f"      files:    {', '.join(str(p) for p in story.artifacts) or '-'}")
        if hooks is not None:
            print(f"      webhook:  {story.webhook or 'NOT RECEIVED'}")
        if mails is not None:
            print(f"      email:    {story.email or 'NOT RECEIVED'}")
    if hooks is not None:
        hooks.stop()
    if mails is not None:
        mails.stop()
    print("\nThe story " + ("ran to the end." if ok else "did NOT complete: see above."))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
