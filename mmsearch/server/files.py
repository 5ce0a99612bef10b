"""Indexed files served by asset id: the file itself and its thumbnail, each checked by
:func:`~mmsearch.server.security.file_under_root` before anything is opened."""

from __future__ import annotations

import math

from mmsearch.engine import Engine
from mmsearch.errors import QueryError
from mmsearch.kinds import MAIN_VIEW
from mmsearch.search.results import Hit
from mmsearch.server.security import file_under_root


def asset_file(engine: Engine, asset_id: int) -> str:
    """The real path of an indexed file, checked (:class:`PathError` otherwise)."""
    where = engine.asset_location(asset_id)
    return file_under_root(where.path, where.root, asset_id)


def asset_thumbnail(engine: Engine, asset_id: int, at: float | None = None, size: int = 320) -> str:
    """A cached JPEG of an indexed image, or of the indexed video frame nearest ``at`` s.

    :class:`PathError` for an unknown id or a file outside its root; :class:`QueryError`
    for a text file (no picture) or a file that can't be decoded.
    """
    real = asset_file(engine, asset_id)
    modality = engine.asset_location(asset_id).modality
    if modality == "text":
        raise QueryError(f"asset {asset_id} is a text file: it has no thumbnail")
    if at is not None and (not math.isfinite(at) or at < 0):
        raise QueryError("the time must be a number of seconds, 0 or more")
    when = None
    if modality == "video":
        # the indexed frame nearest ``at``: what a result shows, and a bounded cache
        known = engine.frame_times(asset_id)
        target = float(at or 0.0)
        when = min(known, key=lambda t: abs(t - target)) if known else 0.0
    hit = Hit(
        path=real,
        modality=modality,
        asset_id=int(asset_id),
        segment_id=0,
        view=MAIN_VIEW[modality],
        score=0.0,
        best_time=when,
    )
    path = engine.thumbnail(hit, size)
    assert path is not None  # a picture (text was refused above)
    return path
