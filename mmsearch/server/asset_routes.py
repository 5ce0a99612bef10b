"""``/api/assets/{id}``: an indexed file's facts, its thumbnail and the file itself, by asset id
(no path from a request reaches the filesystem: see :mod:`mmsearch.server.files`)."""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Query as Param
from fastapi.responses import FileResponse

from mmsearch.server.files import asset_file, asset_thumbnail
from mmsearch.server.state import EngineDep

router = APIRouter(prefix="/api")


@router.get("/assets/{asset_id}")
def asset(asset_id: int, engine: EngineDep) -> dict[str, Any]:
    """What ``mmsearch show --json`` prints for the file with this asset id."""
    facts = engine.show_asset(asset_id)
    facts["file_url"] = f"/api/assets/{asset_id}/file"
    facts["thumbnail_url"] = (
        f"/api/assets/{asset_id}/thumbnail" if facts["modality"] != "text" else None
    )
    return facts


@router.get("/assets/{asset_id}/thumbnail", response_class=FileResponse)
def thumbnail(
    asset_id: int,
    engine: EngineDep,
    t: Annotated[float | None, Param(ge=0, le=1e7, description="Video time (s).")] = None,
) -> FileResponse:
    """A cached JPEG of an image, or of the video's indexed frame nearest ``t`` seconds."""
    path = asset_thumbnail(engine, asset_id, t)
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


@router.get("/assets/{asset_id}/file", response_class=FileResponse)
def file(asset_id: int, engine: EngineDep) -> FileResponse:
    """The indexed file itself (HTTP Range supported, so a video can be seeked)."""
    facts = engine.show_asset(asset_id)
    real = asset_file(engine, asset_id)
    if facts["modality"] == "text":
        media_type = "text/plain; charset=utf-8"  # never rendered as a page of ours
    else:
        media_type = mimetypes.guess_type(real)[0] or "application/octet-stream"
    return FileResponse(
        real,
        media_type=media_type,
        headers={
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, max-age=3600",
        },
    )
