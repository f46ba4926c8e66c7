"""Video transcoding: one uploaded video into 1080p / 720p / 480p renditions with ffmpeg.

ffmpeg comes from ``imageio-ffmpeg`` (a pip wheel carrying a static binary), so the example
needs no system package. Each rendition is one ffmpeg run with ``-progress pipe:1``: ffmpeg
writes ``key=value`` blocks (``out_time_us=...``, ``progress=continue|end``) about twice a
second, and the task turns ``out_time_us / duration`` into job progress. Between two blocks it
checks for cancellation; a canceled job terminates ffmpeg (then kills it) before it returns.
ffmpeg also dies with the executor process (PR_SET_PDEATHSIG), so a node killed mid-transcode
leaves no ffmpeg behind.

Renditions never upscale: a rendition taller than the source is skipped (a 720p source gives
720p and 480p); a source smaller than every rendition gets one rendition at its own height.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import imageio_ffmpeg
from pydantic import Field

from conveyor import DoNotRetry, JobCanceled, JobContext
from examples.inputs import UploadRef, local_input

Rendition = Literal["1080p", "720p", "480p"]
Renditions = Annotated[list[Rendition], Field(min_length=1, max_length=3)]
HEIGHTS: dict[str, int] = {"1080p": 1080, "720p": 720, "480p": 480}
BITRATES = {1080: "5000k", 720: "2800k", 480: "1400k"}
_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #.*Video:.*?\b(\d{2,5})x(\d{2,5})\b(?![0-9a-fA-F])")
KILL_AFTER = 2.0
"""Seconds ffmpeg gets to exit after SIGTERM before SIGKILL."""


@dataclass(frozen=True)
class Probe:
    width: int
    height: int
    duration: float


@dataclass(frozen=True)
class Plan:
    name: str
    height: int


def ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(source: Path) -> Probe:
    """Size and duration of the first video stream (``ffmpeg -i`` prints them, then refuses to run)."""
    run = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(source)], capture_output=True, text=True, check=False)
    duration, video = _DURATION.search(run.stderr), _VIDEO.search(run.stderr)
    if duration is None or video is None:
        raise DoNotRetry(f"not a readable video: {run.stderr.strip().splitlines()[-1:]}")
    h, m, s = duration.groups()
    return Probe(int(video.group(1)), int(video.group(2)), int(h) * 3600 + int(m) * 60 + float(s))


def plan(source_height: int, wanted: list[str]) -> list[Plan]:
    """The renditions to make, tallest first: none taller than the source (see the module docstring)."""
    heights = sorted({HEIGHTS[w] for w in wanted}, reverse=True)
    fitting = [Plan(f"{h}p", h) for h in heights if h <= source_height]
    if fitting:
        return fitting
    even = source_height - source_height % 2
    return [Plan(f"{even}p", even)]


def command(source: Path, target: Path, height: int, realtime: bool = False) -> list[str]:
    """ffmpeg arguments for one H.264/AAC MP4 rendition, progress on stdout."""
    return [
        ffmpeg(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        *(["-re"] if realtime else []),
        "-i",
        str(source),
        "-vf",
        f"scale=-2:{height}",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-preset",
        "veryfast",
        "-b:v",
        BITRATES.get(height, "1000k"),
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-movflags",
        "+faststart",
        "-progress",
        "pipe:1",
        "-nostats",
        "-y",
        str(target),
    ]


def _die_with_parent() -> None:
    """Runs in ffmpeg's process before exec: die when the executor process dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


def progress_times(lines: Iterator[str]) -> Iterator[float | None]:
    """Seconds of output written, per ``-progress`` block; None at ``progress=end``."""
    for line in lines:
        key, _, value = line.strip().partition("=")
        if key == "out_time_us" and value.isdigit():
            yield int(value) / 1_000_000
        elif key == "progress" and value == "end":
            yield None


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate ffmpeg, kill it if it lingers, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(KILL_AFTER)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_ffmpeg(args: list[str], on_time: Callable[[float], None], cancelled: Callable[[], bool]) -> None:
    """Run one ffmpeg command, reporting output seconds; JobCanceled (ffmpeg gone) when canceled."""
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent
    )
    try:
        assert proc.stdout is not None
        for seconds in progress_times(proc.stdout):
            if cancelled():
                stop(proc)
                raise JobCanceled("transcode canceled; ffmpeg stopped")
            if seconds is not None:
                on_time(seconds)
        code = proc.wait()
        if cancelled():
            raise JobCanceled("transcode canceled; ffmpeg stopped")
        if code != 0:
            error = proc.stderr.read().strip() if proc.stderr else ""
            raise RuntimeError(f"ffmpeg exited with {code}: {error[-500:]}")
    finally:
        stop(proc)


class RenditionProgress:
    """Turns ffmpeg's output seconds into job progress for rendition ``index`` of ``total``.

    ffmpeg's ``out_time`` follows whichever stream was muxed last, so it can step back a little:
    only a fraction above the furthest one reported is written, so progress never goes backwards.
    """

    def __init__(self, ctx: JobContext, index: int, total: int, name: str, duration: float) -> None:
        self.ctx, self.index, self.total, self.name, self.duration = ctx, index, total, name, duration
        self.furthest = 0.0

    def __call__(self, seconds: float) -> None:
        part = min(1.0, seconds / self.duration) if self.duration else 0.0
        if part > self.furthest:
            self.furthest = part
            self.ctx.progress(min(1.0, (self.index + part) / self.total), f"{self.name}: {part:.0%}")


def transcode(
    ctx: JobContext,
    video: UploadRef,
    renditions: Renditions = Field(default_factory=lambda: ["1080p", "720p", "480p"]),
    realtime: bool = False,
) -> dict[str, object]:
    """Transcode an uploaded video into MP4 renditions, one artifact each (``<name>.mp4``).

    ``realtime`` reads the input at its own frame rate (ffmpeg ``-re``): a demo watching
    progress, or a test that cancels mid-transcode, gets a transcode that lasts the video's length.
    """
    source = local_input(ctx, video)
    info = probe(source)
    todo = plan(info.height, renditions)
    skipped = [r for r in renditions if HEIGHTS[r] > info.height]
    made = []
    for i, step in enumerate(todo):
        ctx.raise_if_cancelled()
        target = ctx.scratch_dir / f"{step.name}.mp4"
        ctx.progress(i / len(todo), f"{step.name}: starting")
        report = RenditionProgress(ctx, i, len(todo), step.name, info.duration)
        run_ffmpeg(command(source, target, step.height, realtime), report, lambda: ctx.cancelled)
        artifact = ctx.save_artifact(target.name, target, "video/mp4")
        made.append({"rendition": step.name, "height": step.height, "bytes": artifact.size, "artifact": target.name})
    ctx.progress(1.0, "done")
    return {
        "source": {"width": info.width, "height": info.height, "duration": round(info.duration, 3)},
        "renditions": made,
        "skipped": skipped,
    }
