"""Which files mmsearch reads, by extension."""

from __future__ import annotations

import os

from mmsearch.kinds import Modality

RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw"}
)
"""Camera RAW files, read through rawpy (LibRaw) when the ``[raw]`` extra is installed:
Adobe, Canon (two), Nikon, Sony, Olympus, Panasonic, Fujifilm, Pentax and Samsung."""

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
        ".jp2",  # JPEG 2000, as Pillow reads it (OpenJPEG)
        ".j2k",
        ".jpx",
        ".jpf",
        ".ppm",  # netpbm
        ".pgm",
        ".pbm",
        ".pnm",
    }
    | RAW_EXTENSIONS
)
TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".rst", ".org", ".text"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})


EXTENSIONS: dict[Modality, frozenset[str]] = {
    "image": IMAGE_EXTENSIONS,
    "text": TEXT_EXTENSIONS,
    "video": VIDEO_EXTENSIONS,
}
"""The extensions read as each modality: what is indexed, and what the server takes as upload."""


def is_raw(path: str) -> bool:
    """Whether ``path`` is a camera RAW file (by extension)."""
    return os.path.splitext(path)[1].lower() in RAW_EXTENSIONS


def modality_of(path: str) -> Modality | None:
    """``image``, ``text``, ``video`` or ``None`` for a file mmsearch does not read."""
    ext = os.path.splitext(path)[1].lower()
    return next((m for m, known in EXTENSIONS.items() if ext in known), None)
