"""Who may ask what: loopback hosts, the token, the size of a request.

One pure ASGI middleware (:class:`Guard`) runs before any route:

- with no token, a server bound to a loopback address answers only requests
  whose ``Host`` header names a loopback host, so a web page on another site
  can't reach it through DNS rebinding;
- with a token, every request must carry it: ``Authorization: Bearer T``, the
  ``mmsearch_token`` cookie the page sets (``/?token=T`` once), or a
  ``token=T`` query parameter (for clients that can't set headers, such as
  clip-retrieval's ``ClipClient``);
- a request body larger than the upload limit is refused with 413 before it is
  read whole: at once when ``Content-Length`` says so, otherwise as soon as the
  bytes received pass the limit.

Files are never named by a request, only by asset id; :func:`file_under_root` is the
check every file served by id passes (see :mod:`mmsearch.server.files`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException

from mmsearch.errors import PathError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "mmsearch_token"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) only ever means this machine."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8765`` -> ``::1``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def file_under_root(path: str, root: str, asset_id: int) -> str:
    """The real path of an indexed file, checked: it exists and, with symlinks resolved,
    still lies under its root. :class:`PathError` otherwise (nothing else is opened)."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root or real == real_root:
        raise PathError(f"asset {asset_id} resolves outside its library folder")
    if not os.path.isfile(real):
        raise PathError(f"asset {asset_id} is no longer on disk")
    return real


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the limit of {limit / 1e6:g} MB")


def tokens_of(scope: Scope) -> list[str]:
    """Every token the request carries (header, cookie, query parameter)."""
    found: list[str] = []
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                found.append(credentials.strip())
        elif key == b"cookie":
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header carries no token
                continue
            if TOKEN_COOKIE in cookie:
                found.append(cookie[TOKEN_COOKIE].value)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    found.extend(query.get("token", []))
    return found


def token_matches(given: list[str], expected: str) -> bool:
    ok = False
    for candidate in given:
        ok |= hmac.compare_digest(candidate.encode(), expected.encode())
    return ok


class Guard:
    """Host check, token check and body limit, before the application sees a request."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        max_body: int,
        loopback_only: bool,
    ) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        if self.loopback_only and not self.token:
            host = headers.get(b"host", b"").decode("latin-1")
            if not is_loopback(_host_name(host)):
                await _refuse(send, 421, "this server answers only to localhost (Host header)")
                return
        if self.token and not token_matches(tokens_of(scope), self.token):
            if scope["method"] == "OPTIONS" and headers.get(b"access-control-request-method"):
                await self.app(scope, receive, send)  # CORS preflight: no credentials, by design
                return
            await _refuse(send, 401, "a token is needed: Authorization: Bearer TOKEN")
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _refuse(send, 400, "bad Content-Length header")
                return
            if declared > self.max_body:
                await _refuse(send, 413, str(BodyTooLarge(self.max_body).detail))
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except BodyTooLarge as exc:
            if started:
                raise
            await _refuse(send, 413, str(exc.detail))


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
