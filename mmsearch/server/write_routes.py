"""``/api/tags`` and ``/api/index``: tagging and re-indexing, only with ``--allow-writes``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from mmsearch.errors import QueryError
from mmsearch.server.config import ServerConfig
from mmsearch.server.state import ConfigDep, EngineDep, IndexJobDep, WritesDep

router = APIRouter(prefix="/api")


class TagRequest(BaseModel):
    ids: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, max_length=10_000)
    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


def _need_writes(config: ServerConfig) -> None:
    if not config.allow_writes:
        raise HTTPException(403, "writes are off: start mmsearch serve with --allow-writes")


@router.post("/tags")
def tags(
    body: TagRequest, engine: EngineDep, config: ConfigDep, writes: WritesDep
) -> dict[str, int]:
    """Set (``set``) or remove (``remove``) tags on files by asset id. Needs --allow-writes."""
    _need_writes(config)
    changes: dict[str, str | None] = {**body.set, **{key: None for key in body.remove}}
    if not changes or any(not key.strip() for key in changes):
        raise QueryError("give tags to set ({key: value}) or keys to remove")
    paths = [engine.show_asset(i)["path"] for i in sorted(set(body.ids))]
    with writes:
        return {"tagged": engine.tag(paths, changes)}


@router.post("/index", status_code=202)
def index_start(config: ConfigDep, job: IndexJobDep) -> dict[str, Any]:
    """Re-index the index's existing roots incrementally, in the background. Needs
    --allow-writes; one run at a time (409 while one goes)."""
    _need_writes(config)
    return job.start()


@router.get("/index")
def index_status(job: IndexJobDep) -> dict[str, Any]:
    """The background index run: ``state`` idle, running, done or failed, with progress."""
    return job.status()
