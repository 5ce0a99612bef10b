"""Which files mmsearch reads, by extension."""

from __future__ import annotations

import os

from mmsearch.kinds import Modality

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".avif",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
    }
)
TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".rst", ".org", ".text"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})


EXTENSIONS: dict[Modality, frozenset[str]] = {
    "image": IMAGE_EXTENSIONS,
    "text": TEXT_EXTENSIONS,
    "video": VIDEO_EXTENSIONS,
}
"""The extensions read as each modality: what is indexed, and what the server takes as upload."""


def modality_of(path: str) -> Modality | None:
    """``image``, ``text``, ``video`` or ``None`` for a file mmsearch does not read."""
    ext = os.path.splitext(path)[1].lower()
    return next((m for m, known in EXTENSIONS.items() if ext in known), None)
