"""``mmsearch serve``: an HTTP API and a web page over one :class:`~mmsearch.engine.Engine`.

    from mmsearch.server import ServerConfig, create_app

See :mod:`mmsearch.server.app` (the application), :mod:`mmsearch.server.config`
(what it was asked for), :mod:`mmsearch.server.api` (``/api``, and where each of its
parts lives), :mod:`mmsearch.server.clip_compat` (clip-retrieval's endpoints) and
:mod:`mmsearch.server.security` (hosts, token, request sizes, files under
their root). Needs ``fastapi`` and ``uvicorn`` (in the default install).
"""

from __future__ import annotations

from mmsearch.server.app import create_app
from mmsearch.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
