"""Which files mmsearch reads, by extension."""

from __future__ import annotations

import os

from mmsearch.kinds import Modality

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".rst", ".org", ".text"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})


def modality_of(path: str) -> Modality | None:
    """``image``, ``text``, ``video`` or ``None`` for a file mmsearch does not read."""
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in TEXT_EXTENSIONS:
        return "text"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None
