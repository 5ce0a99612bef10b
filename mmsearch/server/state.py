"""What the routes take from the application: the engine, the config, the index job and the
write lock, set once by :func:`mmsearch.server.app.create_app` (FastAPI dependencies)."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Request

from mmsearch.engine import Engine
from mmsearch.server.config import ServerConfig
from mmsearch.server.index_job import IndexJob


def attach(state: object, engine: Engine, config: ServerConfig) -> None:
    """Put what the routes need on ``app.state``."""
    state.engine = engine  # type: ignore[attr-defined]
    state.config = config  # type: ignore[attr-defined]
    state.index_job = IndexJob(engine.folder)  # type: ignore[attr-defined]
    state.writes = threading.Lock()  # type: ignore[attr-defined]


async def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


async def _config(request: Request) -> ServerConfig:
    return request.app.state.config  # type: ignore[no-any-return]


async def _index_job(request: Request) -> IndexJob:
    return request.app.state.index_job  # type: ignore[no-any-return]


async def _writes(request: Request) -> threading.Lock:
    return request.app.state.writes  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(_engine)]
ConfigDep = Annotated[ServerConfig, Depends(_config)]
IndexJobDep = Annotated[IndexJob, Depends(_index_job)]
WritesDep = Annotated[threading.Lock, Depends(_writes)]
