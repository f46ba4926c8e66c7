"""Thumbnails and transcoding on real worker nodes, from uploads, on every engine."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from conveyor.types import Job, JobState
from examples import thumbnails as thumbs
from examples import transcode
from tests.examples.media import BLUE, ORIENTATION, RED, make_video, rotated_jpeg
from tests.examples.workers import Examples, examples  # noqa: F401 - the fixture
from tests.faults.helpers import pid_alive, wait_until


def _artifact(examples: Examples, job: Job, name: str) -> bytes:  # noqa: F811
    [art] = [a for a in job.artifacts if a.name == name]
    data = b"".join(examples.app.result_store.open(art))
    assert len(data) == art.size
    return data


def _close(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) < 40 for x, y in zip(a, b, strict=False))


def test_thumbnails_are_upright_and_never_upscaled(examples: Examples, tmp_path: Path) -> None:  # noqa: F811
    ref = examples.app.upload(rotated_jpeg(tmp_path / "photo.jpg"))
    examples.node("media", concurrency=1)
    job = examples.app.enqueue("thumbnails", {"image": ref, "sizes": [1000, 128, 64]})
    done = examples.wait_state(job.id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error
    shown = {t["size"]: (t["width"], t["height"]) for t in done.result["thumbnails"]}  # type: ignore[index]
    # stored 400x200 with Orientation=6: upright it is 200x400; 1000 is larger, so not upscaled
    assert shown == {1000: (200, 400), 128: (64, 128), 64: (32, 64)}
    assert sorted(a.name for a in done.artifacts) == ["thumb_1000.jpg", "thumb_128.jpg", "thumb_64.jpg"]
    for size, (width, height) in shown.items():
        img = Image.open(io.BytesIO(_artifact(examples, done, f"thumb_{size}.jpg")))
        assert img.size == (width, height) and img.format == "JPEG"
        assert ORIENTATION not in img.getexif(), "the pixels are upright: no tag left to rotate them again"
        assert _close(img.getpixel((width // 2, height // 5)), RED), "red half must be on top"
        assert _close(img.getpixel((width // 2, 4 * height // 5)), BLUE)


def test_a_file_that_is_no_image_fails_without_retries(examples: Examples) -> None:  # noqa: F811
    ref = examples.app.upload(b"this is not an image", filename="fake.jpg")
    examples.node("media", concurrency=1)
    job = examples.app.enqueue("thumbnails", {"image": ref})
    done = examples.wait_state(job.id, JobState.FAILED, JobState.SUCCEEDED)
    assert done.state is JobState.FAILED and done.attempts == 1
    assert "not a readable image" in done.error["message"]  # type: ignore[index]


def test_transcode_makes_each_rendition_up_to_the_source_height(examples: Examples, tmp_path: Path) -> None:  # noqa: F811
    ref = examples.app.upload(make_video(tmp_path / "clip.mp4", 3))
    examples.node("media", concurrency=1)
    job = examples.app.enqueue("transcode", {"video": ref})
    done = examples.wait_state(job.id, JobState.SUCCEEDED, JobState.FAILED, timeout=240)
    assert done.state is JobState.SUCCEEDED, done.error
    result = done.result
    assert result["source"] == {"width": 1280, "height": 720, "duration": 3.0}  # type: ignore[index]
    assert result["skipped"] == ["1080p"]  # type: ignore[index]
    assert [r["rendition"] for r in result["renditions"]] == ["720p", "480p"]  # type: ignore[index]
    for name, height in (("720p", 720), ("480p", 480)):
        path = tmp_path / f"out-{name}.mp4"
        path.write_bytes(_artifact(examples, done, f"{name}.mp4"))
        probe = transcode.probe(path)
        assert probe.height == height and abs(probe.duration - 3.0) < 0.2
        assert probe.width == round(1280 * height / 720 / 2) * 2
    messages = [e.data.get("message") for e in examples.app.events(job.id) if e.type == "progress"]
    fractions = [e.data.get("fraction") for e in examples.app.events(job.id) if e.type == "progress"]
    assert any(m and m.startswith("720p: ") and m != "720p: 0%" for m in messages), messages
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def _ffmpeg_of(job_id: str) -> int | None:
    """The pid of an ffmpeg process writing into the job's scratch directory, if any."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().split(b"\0")
        except OSError:
            continue
        if args and b"ffmpeg" in args[0] and any(f"conveyor-{job_id}-".encode() in a for a in args):
            return int(entry)
    return None


def test_cancel_mid_transcode_stops_ffmpeg(examples: Examples, tmp_path: Path) -> None:  # noqa: F811
    ref = examples.app.upload(make_video(tmp_path / "long.mp4", 30, size="640x480", rate=10))
    examples.node("media", concurrency=1)
    job = examples.app.enqueue("transcode", {"video": ref, "renditions": ["480p"], "realtime": True})

    def transcoding() -> int | None:
        progress = [e for e in examples.app.events(job.id) if e.type == "progress"]
        return _ffmpeg_of(job.id) if any((e.data.get("fraction") or 0) > 0 for e in progress) else None

    pid = wait_until(transcoding, 120, message="ffmpeg to be transcoding")
    assert pid_alive(pid)
    examples.app.cancel(job.id)
    done = examples.wait_state(job.id, JobState.CANCELED)
    assert not done.artifacts
    wait_until(lambda: not pid_alive(pid), 60, message=f"ffmpeg {pid} to be gone")
    assert _ffmpeg_of(job.id) is None


def test_renditions_never_upscale() -> None:
    assert [p.name for p in transcode.plan(1080, ["1080p", "720p", "480p"])] == ["1080p", "720p", "480p"]
    assert [p.name for p in transcode.plan(720, ["1080p", "720p", "480p"])] == ["720p", "480p"]
    assert [(p.name, p.height) for p in transcode.plan(361, ["1080p", "480p"])] == [("360p", 360)]


def test_progress_lines_are_parsed() -> None:
    lines = iter(["frame=10\n", "out_time_us=1500000\n", "progress=continue\n", "out_time_us=N/A\n", "progress=end\n"])
    assert list(transcode.progress_times(lines)) == [1.5, None]


def test_thumbnail_formats_have_their_content_types() -> None:
    assert thumbs.CONTENT_TYPES == {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}


def test_classify_runs_on_the_gpu_node_only(examples: Examples, tmp_path: Path) -> None:  # noqa: F811
    ref = examples.app.upload(rotated_jpeg(tmp_path / "photo.jpg"))
    examples.node("media", concurrency=1, worker_id="cpu-only")
    job = examples.app.enqueue("classify", {"image": ref})
    assert job.queue == "media@gpu"
    marker = examples.app.enqueue("thumbnails", {"image": ref, "sizes": [32]})
    examples.wait_state(marker.id, JobState.SUCCEEDED)  # the cpu node is working, and leaves the gpu job
    assert examples.app.get(job.id).state is JobState.QUEUED  # type: ignore[union-attr]
    examples.node("media", concurrency=1, worker_id="gpu-node", extra=("--resources", "gpu=1"))
    done = examples.wait_state(job.id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED and done.worker_id == "gpu-node"
    result = done.result
    assert result["shape"] == "portrait" and result["size"] == [200, 400]  # type: ignore[index]
    assert {lab["label"] for lab in result["labels"][:2]} == {"red", "blue"}  # type: ignore[index]
