"""``/api/health``, ``/api/info`` and ``/api/search``: a query as URL parameters (GET), as
``Query.to_dict()`` JSON (POST), or as multipart with uploaded images or clips (POST, with
the query in the URL's parameters or in the field ``query``)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.datastructures import FormData, UploadFile

from mmsearch.errors import MmsearchError, QueryError
from mmsearch.search.query import Part, Query
from mmsearch.server.query_body import bounded, parse_json, query_from_json
from mmsearch.server.query_params import query_from_params
from mmsearch.server.results import result_json
from mmsearch.server.state import ConfigDep, EngineDep
from mmsearch.server.uploads import FIELDS, scrub, uploaded
from mmsearch.version import __version__

router = APIRouter(prefix="/api")
UrlQuery = Annotated[Query, Depends(query_from_params)]
_NOT_QUERY_PARAMS = {"token"}  # read by the guard, not part of a query


@router.get("/health")
def health() -> dict[str, str]:
    """``{"status": "ok"}`` while the server runs."""
    return {"status": "ok"}


@router.get("/info")
def info(engine: EngineDep, config: ConfigDep) -> dict[str, Any]:
    """What ``mmsearch info --json`` prints, and what this server allows."""
    out = engine.info()
    out["server"] = {
        "version": __version__,
        "allow_writes": config.allow_writes,
        "allow_url_fetch": config.allow_url_fetch,
        "max_upload_mb": config.max_upload_mb,
        "token": bool(config.token),
    }
    return out


@router.get("/search")
def search_get(engine: EngineDep, query: UrlQuery) -> JSONResponse:
    """Search with URL parameters (what the page sends): ``mmsearch search --json``."""
    if not query.parts and not query.more_like:
        raise QueryError("give q (a text), color, like (an asset id) or more (asset ids)")
    return JSONResponse(result_json(engine.run(bounded(query))))


_UPLOAD_SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "Query JSON"},
        "image": {"type": "string", "format": "binary"},
        "video": {"type": "string", "format": "binary"},
        "not_image": {"type": "string", "format": "binary"},
        "weight": {"type": "number"},
    },
}
_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": TypeAdapter(Query).json_schema()},
        "multipart/form-data": {"schema": _UPLOAD_SCHEMA},
    },
}


@router.post("/search", openapi_extra={"requestBody": _BODY})
async def search_post(request: Request, engine: EngineDep, url_query: UrlQuery) -> JSONResponse:
    """A whole query as JSON (``Query.to_dict()``, as ``--query-json``), or multipart with
    images or clips uploaded in ``image``, ``video`` or ``not_image`` and the query in the
    field ``query`` (JSON) or in the URL's parameters, as ``GET`` takes them."""
    in_url = url_query if set(request.query_params) - _NOT_QUERY_PARAMS else None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await _search_multipart(request, engine, in_url)
    if in_url is not None:
        raise QueryError("give the query as URL parameters or as a JSON body, not both")
    query = query_from_json(parse_json(await request.body()))
    return JSONResponse(result_json(await run_in_threadpool(engine.run, query)))


async def _search_multipart(request: Request, engine: Any, in_url: Query | None) -> JSONResponse:
    form = await _form(request)
    try:
        files = _uploads(form)
        query = _form_query(form, in_url)
        weight = _weight(form)
        with uploaded(files) as parts:
            for part_kind, path, negative in parts:
                query.parts.append(Part(part_kind, path, 1.0 if negative else weight, negative))
            try:
                result = await run_in_threadpool(engine.run, bounded(query))
            except MmsearchError as exc:
                raise scrub(exc, [p for _k, p, _n in parts]) from None
    finally:
        await form.close()
    return JSONResponse(result_json(result))


async def _form(request: Request) -> FormData:
    try:
        return await request.form(max_files=8, max_fields=16)
    except HTTPException:
        raise
    except Exception as exc:  # the multipart parser's own complaints
        raise QueryError(f"bad multipart body: {exc}") from None


def _uploads(form: FormData) -> list[tuple[str, UploadFile]]:
    files: list[tuple[str, UploadFile]] = []
    for field, value in form.multi_items():
        if field in FIELDS and isinstance(value, UploadFile):
            files.append((field, value))
        elif field not in ("query", "weight"):
            raise QueryError(f"unknown form field {field!r}")
    return files


def _form_query(form: FormData, in_url: Query | None) -> Query:
    """The query of a multipart search: the URL's parameters, or the JSON of field ``query``."""
    raw = form.get("query")
    if in_url is not None:
        if raw:
            raise QueryError("give the query as URL parameters or in the field query, not both")
        return in_url
    data = parse_json(raw.encode() if isinstance(raw, str) else b"{}") if raw else {}
    return query_from_json(data, complete=False) if data else Query()


def _weight(form: FormData) -> float:
    try:
        weight = float(str(form.get("weight") or 1.0))
    except ValueError:
        raise QueryError("weight must be a number") from None
    if not math.isfinite(weight) or weight <= 0:
        raise QueryError("weight must be a positive number")
    return weight
