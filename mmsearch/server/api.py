"""``/api``: search, assets by id, info, health, and (with --allow-writes) tags and re-indexing.

Requests become :class:`~mmsearch.search.query.Query` objects and engine calls;
the answer of a search is the CLI's ``--json`` object, each hit with a
``thumbnail_url`` and a ``file_url`` (for a video moment, with ``#t=START``).
No path from a request reaches the filesystem: query images and clips arrive
as uploads (written to a temporary file the server names), indexed files as
asset ids.
"""

from __future__ import annotations

import dataclasses
import json
import math
import mimetypes
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi import Query as Param
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from mmsearch.engine import Engine
from mmsearch.errors import MmsearchError, QueryError
from mmsearch.kinds import FUSIONS, MODALITIES, SORTS
from mmsearch.search.query import Filters, Part, Query
from mmsearch.search.results import SearchResult
from mmsearch.version import __version__

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000
UPLOAD_FIELDS = {"image": ("image", False), "video": ("video", False), "not_image": ("image", True)}
UPLOAD_SUFFIXES = {
    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif",
    ".avif", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi",
}  # fmt: skip
_QUERY = TypeAdapter(Query)
_QUERY_FIELDS = {f.name for f in dataclasses.fields(Query)}
_FILTER_FIELDS = {f.name for f in dataclasses.fields(Filters)}
_PART_FIELDS = {f.name for f in dataclasses.fields(Part)}

Modality = Literal["image", "text", "video"]
SortName = Literal["score", "time"]
FusionName = Literal["vector", "rrf", "weighted"]
assert set(Modality.__args__) == set(MODALITIES)  # type: ignore[attr-defined]
assert set(SortName.__args__) == set(SORTS) and set(FusionName.__args__) == set(FUSIONS)  # type: ignore[attr-defined]


# -- JSON in and out -----------------------------------------------------------


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(raw: bytes) -> Any:
    """JSON from a request body; NaN, Infinity and overflowing numbers are refused."""
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise QueryError(f"the body is not valid JSON: {exc}") from None


def query_from_json(data: Any, complete: bool = True) -> Query:
    """A :class:`Query` from ``Query.to_dict()`` JSON, typed and checked (never a 500).

    ``complete=False``: parts may still come (uploads), so it is not validated yet."""
    if not isinstance(data, dict):
        raise QueryError("the query must be a JSON object (Query.to_dict())")
    unknown = set(data) - _QUERY_FIELDS
    unknown |= {f"filters.{k}" for k in _dict(data.get("filters")) if k not in _FILTER_FIELDS}
    for part in data.get("parts") or []:
        unknown |= {f"parts.{k}" for k in _dict(part) if k not in _PART_FIELDS}
    if unknown:
        raise QueryError(f"unknown query field(s): {', '.join(sorted(unknown))}")
    try:
        query = _QUERY.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise QueryError(f"bad query: {where}: {first['msg']}") from None
    for part in query.parts:
        if part.kind in ("image", "video"):
            raise QueryError(
                f"{part.kind} parts can't name a file on the server: upload it (multipart"
                " field image or video) or give an indexed file's asset id as an asset part"
            )
        if part.kind == "asset" and not part.value.strip().isdigit():
            raise QueryError("asset parts take an asset id (a number), not a path")
    return bounded(query) if complete else query


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def bounded(query: Query) -> Query:
    """The query, with paging inside the server's limits and weights finite (QueryError)."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
    if not 0 <= query.offset <= MAX_OFFSET:
        raise QueryError(f"offset must be between 0 and {MAX_OFFSET}")
    for fld in dataclasses.fields(Filters):
        value = getattr(query.filters, fld.name)
        if isinstance(value, int | float) and not -(2**62) < value < 2**62:
            raise QueryError(f"filters.{fld.name} is out of range")
    for asset in (*query.more_like, *query.less_like):
        if not 0 <= asset < 2**62:
            raise QueryError(f"no indexed file has asset id {asset}")
    return query.validate()


def seconds(value: float) -> str:
    """A time for a URL: millisecond precision, no exponent, no trailing zeros (``3``, ``12.5``)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def hit_urls(hit: dict[str, Any]) -> dict[str, Any]:
    """``thumbnail_url`` and ``file_url`` of one hit of a search's JSON."""
    asset = hit["asset_id"]
    base = f"/api/assets/{asset}"
    if hit["modality"] == "video":
        at = hit.get("best_time") or hit.get("start") or 0.0
        hit["thumbnail_url"] = f"{base}/thumbnail?t={seconds(at)}"
        hit["file_url"] = f"{base}/file#t={seconds(hit.get('start') or 0.0)}"
    else:
        hit["thumbnail_url"] = f"{base}/thumbnail" if hit["modality"] == "image" else None
        hit["file_url"] = f"{base}/file"
    return hit


def result_json(result: SearchResult) -> dict[str, Any]:
    out = result.to_dict()
    out["results"] = [hit_urls(h) for h in out["results"]]
    return out


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise QueryError(f"{what} takes key=value, not {item!r}")
        out[key] = value
    return out


# -- uploads -----------------------------------------------------------------


@contextmanager
def uploaded(files: list[tuple[str, UploadFile]]) -> Iterator[list[tuple[str, str, bool]]]:
    """Write uploads to temporary files the server names; yield (kind, path, negative)."""
    folder = tempfile.mkdtemp(prefix="mmsearch-upload-")
    out = []
    try:
        for n, (field, upload) in enumerate(files):
            kind, negative = UPLOAD_FIELDS[field]
            suffix = os.path.splitext(upload.filename or "")[1].lower()
            suffix = suffix if suffix in UPLOAD_SUFFIXES else (".jpg" if kind == "image" else "")
            path = os.path.join(folder, f"upload-{n}{suffix}")
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


def _scrub(exc: MmsearchError, paths: list[str]) -> MmsearchError:
    """The error, with the server's temporary file names replaced by what they are."""
    message = str(exc)
    for path in paths:
        message = message.replace(path, "the uploaded file")
    return type(exc)(message)


# -- the background index job -----------------------------------------------------


class IndexJob:
    """One re-index of the existing roots at a time, in a thread, with its own Engine.

    The serving engine sees the new files on its next search (it catches up from
    SQLite as it would after an ``mmsearch index`` in another process).
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"state": "idle"}
        self.thread: threading.Thread | None = None

    def start(self) -> dict[str, Any]:
        with self.lock:
            if self.state["state"] == "running":
                raise HTTPException(409, "an index run is already going: see GET /api/index")
            self.state = {"state": "running", "started": time.time(), "done": 0, "total": None}
            self.thread = threading.Thread(target=self._run, name="mmsearch-index", daemon=True)
            self.thread.start()
            return dict(self.state)

    def status(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.state)

    def _progress(self, p: Any) -> None:
        with self.lock:
            self.state.update(done=p.done, total=p.total)

    def _run(self) -> None:
        try:
            with Engine.open(self.folder, create=False) as writer:
                roots = [r["path"] for r in writer.roots() if r["exists"]]
                report = writer.index(roots, on_progress=self._progress) if roots else None
            with self.lock:
                self.state.update(
                    state="done",
                    finished=time.time(),
                    roots=roots,
                    report=report.to_dict() if report else None,
                )
        except Exception as exc:  # the job reports, the server keeps serving
            with self.lock:
                self.state.update(
                    state="failed", finished=time.time(), error=" ".join(str(exc).split())
                )


class TagRequest(BaseModel):
    ids: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=10_000)
    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


# -- routes -------------------------------------------------------------------


def router(engine: Engine, config: Any) -> APIRouter:
    r = APIRouter(prefix="/api")
    job = IndexJob(engine.folder)
    writes = threading.Lock()

    def need_writes() -> None:
        if not config.allow_writes:
            raise HTTPException(403, "writes are off: start mmsearch serve with --allow-writes")

    @r.get("/health")
    def health() -> dict[str, str]:
        """``{"status": "ok"}`` while the server runs."""
        return {"status": "ok"}

    @r.get("/info")
    def info() -> dict[str, Any]:
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

    @r.get("/search")
    def search_get(
        q: Annotated[str | None, Param(max_length=2000, description="Text to search for.")] = None,
        k: Annotated[int, Param(ge=1, le=MAX_LIMIT, description="Results per page.")] = 20,
        offset: Annotated[int, Param(ge=0, le=MAX_OFFSET)] = 0,
        type: Annotated[list[Modality] | None, Param(description="Only these modalities.")] = None,
        path: Annotated[list[str] | None, Param(description="Only under this folder.")] = None,
        where: Annotated[list[str] | None, Param(description="Tag key=value (ANDed).")] = None,
        text_match: Annotated[str | None, Param(max_length=500)] = None,
        after: Annotated[str | None, Param(description="Modified on or after (ISO).")] = None,
        before: Annotated[str | None, Param(description="Modified before (ISO).")] = None,
        taken_after: Annotated[str | None, Param()] = None,
        taken_before: Annotated[str | None, Param()] = None,
        sort: SortName = "score",
        fusion: FusionName = "vector",
        like: Annotated[list[int] | None, Param(description="Indexed files (asset ids).")] = None,
        more: Annotated[list[int] | None, Param(description="Asset ids to move towards.")] = None,
        less: Annotated[list[int] | None, Param(description="Asset ids to move away from.")] = None,
        exclude: Annotated[
            list[str] | None, Param(alias="not", description="Text to avoid.")
        ] = None,
        color: Annotated[
            list[str] | None,
            Param(description="A colour part: NAME or #RRGGBB, optionally :SHARE (red:30%)."),
        ] = None,
        color_words: Annotated[
            bool, Param(description="Colour words in q (a red car) add colour parts.")
        ] = True,
        all: Annotated[bool, Param(description="No adaptive relevance cutoff.")] = False,
        diverse: bool = False,
        min_score: Annotated[float | None, Param(ge=-1, le=1)] = None,
    ) -> JSONResponse:
        """Search with simple parameters (what the page sends): ``mmsearch search --json``."""
        filters = Filters(
            modalities=list(type or []),
            paths=list(path or []),
            tags=_pairs(list(where or []), "where"),
            text_match=text_match or None,
            modified_after=after or None,
            modified_before=before or None,
            taken_after=taken_after or None,
            taken_before=taken_before or None,
        )
        query = Query(filters=filters)
        if q and q.strip():
            query.text(q)
        for asset in like or []:
            query.like(asset)
        for text in exclude or []:
            if text.strip():
                query.exclude(text)
        for value in color or []:
            if value.strip():
                query.color(value.strip())
        query.options(
            color_words=color_words,
            limit=k,
            offset=offset,
            sort=sort,
            fusion=fusion,
            cutoff=not all,
            diverse=diverse,
            min_score=min_score,
            more_like=list(more or []),
            less_like=list(less or []),
        )
        if not query.parts and not query.more_like:
            raise QueryError("give q (a text), color, like (an asset id) or more (asset ids)")
        return JSONResponse(result_json(engine.run(bounded(query))))

    @r.post(
        "/search",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _QUERY.json_schema()},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "query": {"type": "string", "description": "Query JSON"},
                                "image": {"type": "string", "format": "binary"},
                                "video": {"type": "string", "format": "binary"},
                                "not_image": {"type": "string", "format": "binary"},
                                "weight": {"type": "number"},
                            },
                        }
                    },
                },
            }
        },
    )
    async def search_post(request: Request) -> JSONResponse:
        """A whole query as JSON (``Query.to_dict()``, as ``--query-json``), or multipart with
        the JSON in field ``query`` and images or clips uploaded in ``image``, ``video`` or
        ``not_image``."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            return await _search_multipart(request)
        query = query_from_json(parse_json(await request.body()))
        return JSONResponse(result_json(await run_in_threadpool(engine.run, query)))

    async def _search_multipart(request: Request) -> JSONResponse:
        try:
            form = await request.form(max_files=8, max_fields=16)
        except HTTPException:
            raise
        except Exception as exc:  # the multipart parser's own complaints
            raise QueryError(f"bad multipart body: {exc}") from None
        files: list[tuple[str, UploadFile]] = []
        for field, value in form.multi_items():
            if field in UPLOAD_FIELDS and isinstance(value, UploadFile):
                files.append((field, value))
            elif field not in ("query", "weight"):
                raise QueryError(f"unknown form field {field!r}")
        raw = form.get("query")
        data = parse_json(raw.encode() if isinstance(raw, str) else b"{}") if raw else {}
        query = query_from_json(data, complete=False) if data else Query()
        try:
            weight = float(str(form.get("weight") or 1.0))
        except ValueError:
            raise QueryError("weight must be a number") from None
        if not math.isfinite(weight) or weight <= 0:
            raise QueryError("weight must be a positive number")
        try:
            with uploaded(files) as parts:
                for part_kind, path, negative in parts:
                    query.parts.append(Part(part_kind, path, 1.0 if negative else weight, negative))
                try:
                    result = await run_in_threadpool(engine.run, bounded(query))
                except MmsearchError as exc:
                    raise _scrub(exc, [p for _k, p, _n in parts]) from None
        finally:
            await form.close()
        return JSONResponse(result_json(result))

    @r.get("/assets/{asset_id}")
    def asset(asset_id: int) -> dict[str, Any]:
        """What ``mmsearch show --json`` prints for the file with this asset id."""
        facts = engine.show_asset(asset_id)
        facts["file_url"] = f"/api/assets/{asset_id}/file"
        facts["thumbnail_url"] = (
            f"/api/assets/{asset_id}/thumbnail" if facts["modality"] != "text" else None
        )
        return facts

    @r.get("/assets/{asset_id}/thumbnail", response_class=FileResponse)
    def thumbnail(
        asset_id: int,
        t: Annotated[float | None, Param(ge=0, le=1e7, description="Video time (s).")] = None,
    ) -> FileResponse:
        """A cached JPEG of an image, or of the video's indexed frame nearest ``t`` seconds."""
        path = engine.asset_thumbnail(asset_id, t)
        return FileResponse(
            path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
        )

    @r.get("/assets/{asset_id}/file", response_class=FileResponse)
    def file(asset_id: int) -> FileResponse:
        """The indexed file itself (HTTP Range supported, so a video can be seeked)."""
        facts = engine.show_asset(asset_id)
        real = engine.asset_file(asset_id)
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

    @r.post("/tags")
    def tags(body: TagRequest) -> dict[str, int]:
        """Set (``set``) or remove (``remove``) tags on files by asset id. Needs --allow-writes."""
        need_writes()
        changes: dict[str, str | None] = {**body.set, **{key: None for key in body.remove}}
        if not changes or any(not key.strip() for key in changes):
            raise QueryError("give tags to set ({key: value}) or keys to remove")
        paths = [engine.show_asset(i)["path"] for i in sorted(set(body.ids))]
        with writes:
            return {"tagged": engine.tag(paths, changes)}

    @r.post("/index", status_code=202)
    def index_start() -> dict[str, Any]:
        """Re-index the index's existing roots incrementally, in the background. Needs
        --allow-writes; one run at a time (409 while one goes)."""
        need_writes()
        return job.start()

    @r.get("/index")
    def index_status() -> dict[str, Any]:
        """The background index run: ``state`` idle, running, done or failed, with progress."""
        return job.status()

    return r
