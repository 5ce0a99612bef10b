"""clip-retrieval's back-end endpoints, so its ``ClipClient`` and front end work on an index.

Matched to ``clip_retrieval/clip_back.py`` (its README is out of date):

- ``GET /indices-list``: the index names (one: this index folder's name).
- ``POST /knn-service``: the body is JSON whatever the Content-Type (``ClipClient``
  sends none) and may carry all 15 keys, many ``null``. ``text`` (non-empty) wins
  over ``image`` (base64 of a file's bytes) and ``image_url``, which win over
  ``embedding_input`` (floats in the index's space, searched as they are).
  ``modality`` ``"image"`` searches images and video frames, ``"text"`` texts;
  ``num_result_ids`` ids come back (default ``num_images``), the first
  ``num_images`` with metadata (``url``, ``caption``, ``image_path``); each has
  ``id`` (the asset id) and ``similarity`` (cosine). ``deduplicate`` folds
  near-duplicates (cosine 0.94, clip-retrieval's threshold). ``use_mclip``, the
  safety, violence and aesthetic fields are accepted and ignored.
- ``POST /metadata``: ``{"ids": [...], "indice_name": ...}`` ->
  ``[{"id": ..., "metadata": {...}}]``.

An unknown ``indice_name`` is a 400; ``image_url`` is a 400 unless the server was
started with ``--allow-url-fetch`` (it then fetches at most the upload limit).
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import urllib.request
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from mmsearch.engine import Engine
from mmsearch.errors import MmsearchError, PathError, QueryError
from mmsearch.kinds import MODALITIES
from mmsearch.search.query import Filters, Query
from mmsearch.server.config import ServerConfig
from mmsearch.server.query_body import parse_json
from mmsearch.server.results import hit_urls
from mmsearch.server.state import ConfigDep, EngineDep

DEDUP_COSINE = 0.94  # clip_back.py's connected-components threshold
MAX_RESULTS = 10_000
MODALITY_FILTER: dict[
    str, list[str]
] = {  # clip-retrieval's two modalities as ours: pictures, and words
    "image": [m for m in MODALITIES if m != "text"],
    "text": ["text"],
}
KNOWN_KEYS = {
    "text", "image", "image_url", "embedding_input", "modality", "num_images", "num_result_ids",
    "indice_name", "use_mclip", "deduplicate", "use_safety_model", "use_violence_detector",
    "aesthetic_score", "aesthetic_weight",
}  # fmt: skip


def _count(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise QueryError(f"{key} must be a whole number")
    if not 1 <= int(value) <= MAX_RESULTS:
        raise QueryError(f"{key} must be between 1 and {MAX_RESULTS}")
    return int(value)


router = APIRouter(tags=["clip-retrieval"])


def _index_name(engine: Engine) -> str:
    return os.path.basename(engine.folder.rstrip(os.sep)) or "mmsearch"


def _check_indice(engine: Engine, value: Any) -> None:
    name = _index_name(engine)
    if value is not None and value != name:
        raise HTTPException(400, f"unknown indice_name {value!r}; this server has: {name}")


def _caption(hit: dict[str, Any]) -> str:
    return hit.get("snippet") or hit.get("ocr_line") or os.path.basename(hit["path"])


def _metadata(hit: dict[str, Any], base: str) -> dict[str, Any]:
    return {
        "url": base + hit_urls(hit)["file_url"],
        "caption": " ".join(_caption(hit).split()),
        "image_path": hit["path"],
    }


async def _body(request: Request, engine: Engine) -> dict[str, Any]:
    """The request's JSON object, its ``indice_name`` checked."""
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise QueryError("the body must be a JSON object")
    _check_indice(engine, data.get("indice_name"))
    return data


@router.get("/indices-list")
def indices_list(engine: EngineDep) -> list[str]:
    """The names of the indices this server has (one)."""
    return [_index_name(engine)]


@router.post("/knn-service")
async def knn_service(
    request: Request, engine: EngineDep, config: ConfigDep
) -> list[dict[str, Any]]:
    """Nearest neighbours of a text, an image or a vector (clip-retrieval's request)."""
    data = await _body(request, engine)
    modality = data.get("modality") or "image"
    if modality not in MODALITY_FILTER:
        raise QueryError('modality must be "image" or "text"')
    num_images = _count(data, "num_images", 100)
    num_ids = max(_count(data, "num_result_ids", num_images), num_images)
    query = Query(filters=Filters(modalities=list(MODALITY_FILTER[modality])))
    query.options(
        limit=num_ids,
        cutoff=False,
        collapse=DEDUP_COSINE if data.get("deduplicate") else None,
    )
    result = await _knn(engine, config, data, query)
    base = str(request.base_url).rstrip("/")
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for hit in result.to_dict()["results"]:
        if hit["asset_id"] in seen:  # a video's other moments: one id each, as clip_back
            continue
        seen.add(hit["asset_id"])
        entry = _metadata(hit, base) if len(out) < num_images else {}
        entry.update(id=hit["asset_id"], similarity=hit["similarity"])
        out.append(entry)
    return out


async def _knn(engine: Engine, config: ServerConfig, data: dict[str, Any], query: Query) -> Any:
    """The search a knn request asks for: its text, else its image, else its vector."""
    text, image, url = data.get("text"), data.get("image"), data.get("image_url")
    vector = data.get("embedding_input")
    for key, value in (("text", text), ("image", image), ("image_url", url)):
        if value is not None and not isinstance(value, str):
            raise QueryError(f"{key} must be a string")
    if text:
        query.text(text)
        return await run_in_threadpool(engine.run, query)
    if image or url:
        raw = _decode_base64(image) if image else await run_in_threadpool(_fetch, config, str(url))
        return await run_in_threadpool(_search_image, engine, query, raw)
    if vector is not None:
        if not isinstance(vector, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in vector
        ):
            raise QueryError("embedding_input must be a list of numbers")
        return await run_in_threadpool(engine.run_vector, vector, query)
    raise QueryError("must fill one of text, image, image_url and embedding_input")


def _fetch(config: ServerConfig, url: str) -> bytes:
    if not config.allow_url_fetch:
        raise QueryError(
            "image_url is off: this server fetches nothing for a client (start it with"
            " --allow-url-fetch to allow it), send the image's bytes as image instead"
        )
    if not url.lower().startswith(("http://", "https://")):
        raise QueryError("image_url must be an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            data = response.read(config.max_body + 1)
    except (OSError, ValueError) as exc:
        raise QueryError(f"can't fetch image_url: {exc}") from None
    if len(data) > config.max_body:
        raise HTTPException(413, "the image at image_url is over the upload limit")
    return bytes(data)


@router.post("/metadata")
async def metadata_service(request: Request, engine: EngineDep) -> list[dict[str, Any]]:
    """``url``, ``caption`` and ``image_path`` of results by id."""
    data = await _body(request, engine)
    ids = data.get("ids")
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise QueryError("ids must be a list of whole numbers")
    if len(ids) > MAX_RESULTS:
        raise QueryError(f"at most {MAX_RESULTS} ids at a time")
    base = str(request.base_url).rstrip("/")
    out = []
    for asset_id in ids:
        facts = await run_in_threadpool(engine.show_asset, asset_id)
        hit = {"asset_id": asset_id, "modality": facts["modality"], "path": facts["path"]}
        if facts["modality"] == "video":
            hit["start"] = hit["best_time"] = 0.0
        lines = facts.get("ocr_lines") or []
        hit["ocr_line"] = lines[0]["text"] if lines else None
        out.append({"id": asset_id, "metadata": _metadata(hit, base)})
    return out


def _decode_base64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise QueryError("image must be the base64 of an image file") from None


def _search_image(engine: Engine, query: Query, raw: bytes) -> Any:
    """Search with image bytes, written to a temporary file the server names."""
    if not raw:
        raise QueryError("the image is empty")
    fd, path = tempfile.mkstemp(prefix="mmsearch-clip-", suffix=".img")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        query.image(path)
        try:
            return engine.run(query)
        except MmsearchError as exc:
            if isinstance(exc, PathError):
                raise
            raise type(exc)(str(exc).replace(path, "the image")) from None
    finally:
        os.unlink(path)
