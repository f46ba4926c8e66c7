"""Generated test media: a JPEG with an EXIF orientation tag, a short video from ffmpeg's lavfi."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
from PIL import Image

ORIENTATION = 0x0112
RED, BLUE = (220, 20, 20), (20, 20, 220)


def rotated_jpeg(path: Path, width: int = 400, height: int = 200) -> Path:
    """A landscape JPEG, left half red and right half blue as stored, tagged Orientation=6
    ("rotate 90 degrees clockwise to display"): shown upright it is portrait, red on top."""
    img = Image.new("RGB", (width, height), BLUE)
    img.paste(RED, (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    img.save(path, "JPEG", exif=exif, quality=95)
    return path


def make_video(path: Path, seconds: float, size: str = "1280x720", rate: int = 25) -> Path:
    """``seconds`` of ffmpeg's test pattern with a tone, H.264/AAC in MP4."""
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate={rate}:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-y",
            str(path),
        ],
        check=True,
        timeout=300,
    )
    return path
