"""The application: :func:`create_app` puts the API, clip-retrieval's endpoints and the page
over one open :class:`~mmsearch.engine.Engine`.

    from mmsearch import Engine
    from mmsearch.server import ServerConfig, create_app
    app = create_app(Engine.open("indexes/photos", create=False), ServerConfig())
    # uvicorn.run(app, host="127.0.0.1", port=8765)

There is no search logic here: requests become :class:`~mmsearch.search.query.Query`
objects and engine calls, results become JSON. Every error is ``{"error": "one line"}``:
4xx for what the client got wrong, 500 (logged, no traceback sent) for the server's bugs.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmsearch.engine import Engine
from mmsearch.errors import (
    ConfigError,
    IndexUnusableError,
    MissingDependencyError,
    MmsearchError,
    PathError,
    QueryError,
)
from mmsearch.server import api, clip_compat
from mmsearch.server.config import ServerConfig
from mmsearch.server.security import TOKEN_COOKIE, Guard, is_loopback, token_matches
from mmsearch.server.state import attach
from mmsearch.version import __version__

LOG = logging.getLogger("mmsearch.server")
STATIC = os.path.join(os.path.dirname(__file__), "static")
CLIP_PATHS = ("/knn-service", "/indices-list", "/metadata")


def status_of(exc: MmsearchError) -> int:
    """The HTTP status of a library error."""
    if isinstance(exc, PathError):
        return 404
    if isinstance(exc, QueryError | ConfigError):
        return 400
    if isinstance(exc, IndexUnusableError):
        return 409
    if isinstance(exc, MissingDependencyError):
        return 501
    return 500


def one_line(message: object) -> str:
    return " ".join(str(message).split()) or "error"


def error(status: int, message: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        problems.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "bad request: " + "; ".join(problems)


def create_app(engine: Engine, config: ServerConfig | None = None) -> FastAPI:
    """The ASGI application over ``engine`` (kept open for the app's life)."""
    config = config or ServerConfig()
    app = FastAPI(
        title="mmsearch",
        version=__version__,
        description="Multimodal search over an mmsearch index: text, images and video moments.",
    )
    attach(app.state, engine, config)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, _validation_message(exc))

    @app.exception_handler(MmsearchError)
    async def library_error(_request: Request, exc: MmsearchError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            LOG.error("request failed: %s", exc, exc_info=exc)
        return error(status, exc)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        LOG.error("unexpected error", exc_info=exc)
        return error(500, f"internal error ({type(exc).__name__}); see the server's log")

    app.include_router(api.router())
    app.include_router(clip_compat.router)

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        given = request.query_params.get("token")
        if config.token and given and token_matches([given], config.token):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = "/" + ("?" + urlencode(rest) if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
            return response
        return _static("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        return _static(name)

    app.add_middleware(Headers)
    loopback = is_loopback(config.host)
    app.add_middleware(Guard, token=config.token, max_body=config.max_body, loopback_only=loopback)
    return app


class Headers:
    """CORS on clip-retrieval's endpoints (its front end lives on other origins), and
    ``nosniff`` / ``no-referrer`` on every answer. Pure ASGI: no cost per request to speak of."""

    CORS = (
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
        (b"access-control-allow-headers", b"*"),
    )
    ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cors = scope["path"] in CLIP_PATHS
        extra = (self.CORS if cors else ()) + self.ALWAYS
        if cors and scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": list(extra)})
            await send({"type": "http.response.body", "body": b""})
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _v in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra if k not in have),
                ]
            await send(message)

        await self.app(scope, receive, sending)


_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def _static(name: str) -> Response:
    """A file of the page, by name from a fixed list (no path from the request is opened)."""
    files = {n for n in os.listdir(STATIC) if os.path.splitext(n)[1] in _STATIC_TYPES}
    if name not in files:
        return error(404, f"no such page file: {name}")
    headers = {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self';"
            " style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'"
        ),
    }
    media_type = _STATIC_TYPES[os.path.splitext(name)[1]]
    return FileResponse(os.path.join(STATIC, name), media_type=media_type, headers=headers)
