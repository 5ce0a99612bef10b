"""The Engine: the one place that wires the parts of mmsearch together.

    from mmsearch import Engine
    with Engine.open("indexes/photos") as engine:
        report = engine.index(["~/Pictures"])
        hits = engine.search("a cat on a sofa", k=10)

The CLI and library users all go through it. It never prints:
one-line notices (for example "using the offline model because ...") go to
the ``on_notice`` callback, progress to ``on_progress``.

Where each part lives:

- :mod:`~mmsearch.engine.opening`: creating and reopening an index folder, and
  the checks that an existing one is opened with its own model, store and database;
- :mod:`~mmsearch.engine.core`: the parts an open index is wired from, and
  :meth:`~mmsearch.engine.core.EngineCore.writing`, the writer's ritual;
- :mod:`~mmsearch.engine.writes`: indexing, OCR, removing, moving roots, tags, imports;
- :mod:`~mmsearch.engine.searches`: queries;
- :mod:`~mmsearch.engine.facts`: read-only reports (info, roots, one file, duplicates).
"""

from __future__ import annotations

import os
from typing import Any

from mmsearch.embedders.base import Embedder, EmbedderIdentity
from mmsearch.engine.core import LOCK_NAME, EngineCore
from mmsearch.engine.facts import AssetLocation, Facts
from mmsearch.engine.opening import DB_NAME, NoticeCallback, open_index
from mmsearch.engine.searches import Searches
from mmsearch.engine.writes import Writes

__all__ = ["DB_NAME", "LOCK_NAME", "AssetLocation", "Engine", "EngineCore", "NoticeCallback"]


class Engine(Writes, Searches, Facts):
    """An open index: its metadata, vectors and embedder. Use :meth:`open`."""

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        create: bool = True,
        on_notice: NoticeCallback | None = None,
        identity: EmbedderIdentity | None = None,
        **settings: Any,
    ) -> Engine:
        """Open the index folder at ``path`` (default: setting ``index``).

        An existing index uses the embedder that built it; asking for another
        (``model=`` or ``embedder=``) raises :class:`EmbedderMismatchError`.
        A new index is created when ``create`` is true, with ``embedder`` or
        the one ``model`` names (default ``auto``). ``identity`` records a model
        without loading it (an index of imported vectors, see
        :meth:`import_embeddings`). Other keyword arguments are settings (see
        :mod:`mmsearch.settings`); ``db`` (a PostgreSQL URL) puts a new index's
        metadata in that database instead of the folder's SQLite file, and gives
        an existing one's password (see docs/postgres.md).
        """
        notice = on_notice or (lambda _msg: None)
        opened = open_index(
            path,
            model=model,
            embedder=embedder,
            create=create,
            on_notice=notice,
            identity=identity,
            settings=settings,
        )
        return cls(
            opened.folder, opened.manifest, opened.meta, opened.settings, opened.embedder, notice
        )

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
