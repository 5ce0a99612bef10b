"""Query images and clips uploaded with a search: written to temporary files the server names.

An upload is taken when its extension is one mmsearch reads as that kind of file
(:data:`mmsearch.media.formats.EXTENSIONS`, what the indexer reads too); one with no
extension is read as a JPEG image or sniffed as a video.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.datastructures import UploadFile

from mmsearch.errors import MmsearchError, QueryError
from mmsearch.kinds import Modality
from mmsearch.media.formats import EXTENSIONS

FIELDS: dict[str, tuple[Modality, bool]] = {
    "image": ("image", False),
    "video": ("video", False),
    "not_image": ("image", True),
}
"""Multipart field -> (the kind of file, whether the part is negative)."""


def suffix_of(name: str, kind: Modality) -> str:
    """The extension an upload of ``kind`` called ``name`` is stored with (QueryError if unread)."""
    suffix = os.path.splitext(name)[1].lower()
    if not suffix:
        return ".jpg" if kind == "image" else ""
    if suffix not in EXTENSIONS[kind]:
        known = ", ".join(sorted(EXTENSIONS[kind]))
        raise QueryError(f"an uploaded {kind} must be one of {known}, not {suffix}")
    return suffix


@contextmanager
def uploaded(files: list[tuple[str, UploadFile]]) -> Iterator[list[tuple[str, str, bool]]]:
    """Write uploads to temporary files the server names; yield (kind, path, negative)."""
    folder = tempfile.mkdtemp(prefix="mmsearch-upload-")
    out: list[tuple[str, str, bool]] = []
    try:
        for n, (field, upload) in enumerate(files):
            kind, negative = FIELDS[field]
            path = os.path.join(folder, f"upload-{n}{suffix_of(upload.filename or '', kind)}")
            upload.file.seek(0)
            with open(path, "wb") as f:
                while chunk := upload.file.read(1 << 20):
                    f.write(chunk)
            out.append((kind, path, negative))
        yield out
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def scrub(exc: MmsearchError, paths: list[str]) -> MmsearchError:
    """The error, with the server's temporary file names replaced by what they are."""
    message = str(exc)
    for path in paths:
        message = message.replace(path, "the uploaded file")
    return type(exc)(message)
