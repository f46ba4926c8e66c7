"""Image recognition on a GPU queue: the task declares ``resources={"gpu": 1}``.

The point of the example is the routing, not the model: jobs of this task go to the resource
queue ``media@gpu`` and only a node started with ``--resources gpu=1`` (or more) claims
them, one per GPU at a time (conveyor/resources.py). The "model" is a small, deterministic
colour classifier with Pillow, so the example runs anywhere; a real one would load its
weights once per executor process and run on the device here.
"""

from __future__ import annotations

from PIL import ImageStat

from conveyor import JobContext
from examples.inputs import UploadRef, local_input
from examples.thumbnails import open_upright

COLOURS = {
    "red": (200, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 60, 200),
    "yellow": (220, 200, 40),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
}


def _nearest(rgb: tuple[float, ...]) -> str:
    return min(COLOURS, key=lambda name: sum((a - b) ** 2 for a, b in zip(rgb, COLOURS[name], strict=False)))


def classify(ctx: JobContext, image: UploadRef) -> dict[str, object]:
    """Label an uploaded image: dominant colour, brightness, orientation (on a GPU node)."""
    ctx.progress(0.1, "loading image")
    img = open_upright(local_input(ctx, image)).convert("RGB")
    ctx.progress(0.5, "classifying")
    small = img.resize((64, 64))
    counts: dict[str, int] = {}
    for pixel in small.getdata():
        name = _nearest(pixel)
        counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    brightness = sum(ImageStat.Stat(img).mean) / 3 / 255
    shape = "portrait" if img.height > img.width else "landscape" if img.width > img.height else "square"
    labels = [{"label": name, "score": round(n / (64 * 64), 3)} for name, n in ranked[:3]]
    ctx.progress(1.0, f"top label {labels[0]['label']}")
    return {"labels": labels, "brightness": round(brightness, 3), "shape": shape, "size": [img.width, img.height]}
