"""Names shared by the store and the API: safe file names and Content-Disposition."""

from __future__ import annotations

from urllib.parse import quote


def safe_name(name: str) -> str:
    """A plain file name (no folder, no NUL), as artifact names and job ids must be."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"artifact name {name!r} must be a plain file name")
    return name


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII ``filename`` fallback for old clients and the exact UTF-8 ``filename*``."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
