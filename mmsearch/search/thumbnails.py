"""Thumbnails of results, made on demand and cached in the index folder."""

from __future__ import annotations

import os
import threading

from mmsearch.errors import MmsearchError, QueryError
from mmsearch.media.decode import DecodeError, load_image
from mmsearch.search.results import Hit


def make_thumbnail(folder: str, key: str, hit: Hit, size: int = 320) -> str:
    """A JPEG of ``hit`` (for a video moment, the frame at ``best_time``) under ``folder``.

    ``key`` names the content (its hash), so a cached thumbnail is reused
    across paths and never shown for another file. Written atomically.
    """
    at = hit.best_time or 0.0
    if not os.path.exists(hit.path):
        raise QueryError(
            f"can't make a thumbnail of {hit.path}: the file is not on this machine"
            " (its vectors were imported)"
        )
    path = os.path.join(folder, f"{key}-{round(at * 1000)}-{size}.jpg")
    if os.path.exists(path):
        return path
    os.makedirs(folder, exist_ok=True)
    try:
        if hit.modality == "video":
            from mmsearch.media.video.frames import frame_at

            image = frame_at(hit.path, at, size)
        else:
            image = load_image(hit.path, size).image
    except (DecodeError, MmsearchError) as exc:
        raise QueryError(f"can't make a thumbnail of {hit.path}: {exc}") from exc
    image.thumbnail((size * 2, size))
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"  # threads of a server
    image.save(tmp, "JPEG", quality=85)
    os.replace(tmp, path)
    return path
