"""Thumbnails: one uploaded image into several sizes, one artifact per size.

Phones store a photo as the sensor read it and write how to turn it into an EXIF
Orientation tag; a thumbnail that ignores the tag shows the photo on its side. Each size is
made from the transposed image (``ImageOps.exif_transpose``), never upscaled (a size larger
than the image gives the image's own size), and saved as JPEG (or WebP/PNG) without the
orientation tag, so every viewer shows it upright.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import Field

from conveyor import DoNotRetry, JobContext
from examples.inputs import UploadRef, local_input

Sizes = Annotated[
    list[Annotated[int, Field(ge=16, le=4096)]],
    Field(min_length=1, max_length=8, description="Longest side of each thumbnail, in pixels"),
]
Format = Literal["jpeg", "webp", "png"]
CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "png": "png"}
MAX_PIXELS = 100_000_000
"""Refuse images past this many pixels (a decompression bomb) instead of exhausting memory."""


@dataclass(frozen=True)
class Thumbnail:
    size: int
    path: Path
    width: int
    height: int


def open_upright(source: Path) -> Image.Image:
    """The image as a viewer shows it: EXIF orientation applied, in RGB (or RGBA)."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(source) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise DoNotRetry(f"not a readable image: {exc}") from None
    return upright.convert("RGBA" if "A" in upright.getbands() else "RGB")


def make_thumbnails(source: Path, out_dir: Path, sizes: list[int], fmt: Format = "jpeg") -> list[Thumbnail]:
    """Write one thumbnail per size (longest side at most ``size``) into ``out_dir``."""
    image = open_upright(source)
    made = []
    for size in sorted(set(sizes), reverse=True):
        thumb = image.copy()
        thumb.thumbnail((size, size), Image.Resampling.LANCZOS)  # keeps the aspect ratio, never enlarges
        if fmt == "jpeg" and thumb.mode != "RGB":
            thumb = thumb.convert("RGB")
        path = out_dir / f"thumb_{size}.{EXTENSIONS[fmt]}"
        thumb.save(path, format=fmt.upper(), **({"quality": 85, "optimize": True} if fmt != "png" else {}))
        made.append(Thumbnail(size, path, thumb.width, thumb.height))
    return made


def thumbnails(
    ctx: JobContext,
    image: UploadRef,
    sizes: Sizes = Field(default_factory=lambda: [1024, 512, 128]),
    format: Format = "jpeg",
) -> dict[str, object]:
    """Resize an uploaded image into each size; every thumbnail is an artifact thumb_<size>.<ext>."""
    ctx.progress(0.0, "reading image")
    source = local_input(ctx, image)
    made = make_thumbnails(source, ctx.scratch_dir, sizes, format)
    out = []
    for i, thumb in enumerate(made):
        ctx.raise_if_cancelled()
        ctx.save_artifact(thumb.path.name, thumb.path, CONTENT_TYPES[format])
        out.append({"size": thumb.size, "width": thumb.width, "height": thumb.height, "artifact": thumb.path.name})
        ctx.progress((i + 1) / len(made), f"{thumb.path.name} {thumb.width}x{thumb.height}")
    return {"thumbnails": out}
