"""``mmsearch show``: what the index holds for one file."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import select

from mmsearch.errors import PathError
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Segment


def describe_asset(meta: MetadataStore, target: str) -> dict[str, Any]:
    """Metadata, segments by view, tags and OCR lines of the file at ``target``."""
    with meta.sessions() as s:
        asset = meta.asset_at(s, target)
        if asset is None:
            raise PathError(f"{target} is not in the index")
        segments = list(s.scalars(select(Segment).where(Segment.asset_id == asset.id)))
        views: dict[str, int] = {}
        for seg in segments:
            views[seg.view] = views.get(seg.view, 0) + 1
        ocr = [
            {"text": seg.text, "box": seg.box, "time": seg.best_time}
            for seg in sorted(segments, key=lambda g: (g.ord, g.id))
            if seg.view == "ocr"
        ]
        return {
            "path": target,
            "present": os.path.exists(target),  # imported vectors may describe files elsewhere
            "asset_id": asset.id,
            "modality": asset.modality,
            "size": asset.size,
            "content_hash": asset.content_hash,
            "width": asset.width,
            "height": asset.height,
            "duration": asset.duration,
            "taken_at": asset.taken_at,
            "meta": asset.meta or {},
            "views": views,
            "tags": meta.tags_of(s, asset.id),
            "ocr_lines": ocr,
        }
