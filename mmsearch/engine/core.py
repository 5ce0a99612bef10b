"""The parts an open index is wired from, and the one way of changing them.

:class:`EngineCore` holds the metadata store (the source of truth), the vector
store kept in step with it, the searcher and the embedder, loaded on first use.
Every change to the index goes through :meth:`EngineCore.writing`, the writer's
ritual; searches share the vector store under a
:class:`~mmsearch.store.locking.SharedLock`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from mmsearch.embedders import embedder_from_identity
from mmsearch.embedders.base import Embedder, EmbedderIdentity
from mmsearch.engine.opening import NoticeCallback, check_same_space
from mmsearch.search.retrieve import Searcher
from mmsearch.search.stats_cache import FILE_NAME as STATS_NAME
from mmsearch.settings import Settings
from mmsearch.store import database
from mmsearch.store.backends import open_vector_store, recorded_spec
from mmsearch.store.locking import AdvisoryLock, SharedLock, WriterLock
from mmsearch.store.manifest import Manifest
from mmsearch.store.metadata import MetadataStore
from mmsearch.store.sync import catch_up, in_step, load_or_rebuild, save_written
from mmsearch.store.vectors import VectorStore

LOCK_NAME = "writer.lock"


class EngineCore:
    """An open index's parts; :class:`~mmsearch.engine.Engine` adds what is done with them."""

    def __init__(
        self,
        folder: str,
        manifest: Manifest,
        meta: MetadataStore,
        settings: Settings,
        embedder: Embedder | None = None,
        on_notice: NoticeCallback | None = None,
    ) -> None:
        self.folder = folder
        self.manifest = manifest
        self.meta = meta
        self.settings = settings
        self._embedder = embedder
        self.on_notice = on_notice or (lambda _msg: None)
        on_server = (
            AdvisoryLock(meta.engine, database.lock_key(meta.engine.url, "writer"), meta.url)
            if meta.postgres
            else None
        )
        self._lock = WriterLock(os.path.join(folder, LOCK_NAME), on_server)
        self._vectors_guard = SharedLock()
        self.vectors = self._open_vectors()
        self.searcher = Searcher(meta, self.vectors, os.path.join(folder, STATS_NAME))

    def close(self) -> None:
        self.meta.close()

    @property
    def identity(self) -> EmbedderIdentity:
        return self.manifest.embedder

    @property
    def embedder(self) -> Embedder:
        """The index's embedder, loaded on first use (``info`` and ``rm`` never load it)."""
        if self._embedder is None:
            self._embedder = embedder_from_identity(
                self.identity, precision=self.settings.precision
            )
            check_same_space(self.folder, self.identity, None, self._embedder)
        return self._embedder

    # -- the vector store, kept in step with the metadata ---------------------

    def _vector_store(self) -> VectorStore:
        """A fresh, unloaded handle on the index's vector store."""
        recorded = self.manifest.vector_store
        # a password is never recorded: a --vectors naming the same store supplies it
        given = self.settings.vectors if "vectors" in self.settings.given else recorded
        spec = given if recorded_spec(given) == recorded else recorded
        return open_vector_store(
            spec, self.folder, self.identity.space, self.identity.dim, self.manifest.ann
        )

    def _open_vectors(self) -> VectorStore:
        store = self._vector_store()
        load_or_rebuild(self.meta, store, self.on_notice)
        return store

    def refresh(self) -> None:
        """Catch the vector cache up with the metadata (files another process indexed).

        Safe to call from many threads: searches share the vector store, and
        catching up takes it alone, once. Every search and every write calls it first.
        """
        if in_step(self.meta, self.vectors):
            return
        with self._vectors_guard.exclusive():
            catch_up(self.meta, self.vectors)

    # -- the writer's ritual ----------------------------------------------------

    @contextmanager
    def writing(self, *, catch_up: bool = True) -> Iterator[None]:
        """Hold the index as its one writer; every change to the index runs inside this.

        1. Take the writer lock (:mod:`mmsearch.store.locking`): while another
           process or engine writes, :class:`~mmsearch.errors.IndexUnusableError`
           comes at once, before anything is read or changed.
        2. Catch the vector store up with the metadata (another process may have
           written since this engine opened). ``catch_up=False`` is for a repair,
           which rebuilds the store from the metadata anyway.
        3. Run the work: the body of the ``with``.
        4. Save the vector store when the work changed segments and left it
           unsaved, recording that it holds the metadata's present segments.
        5. Warm the search statistics: write them for the index as it now is, so
           the next query (often a new process) reads them instead of sampling the
           segments itself (``docs/benchmarks.md``, "Cold start").

        When the work raises, steps 4 and 5 are skipped and the lock is released:
        what the work committed stays, and the next catch-up brings the vector
        store level with it. Re-entrant: watch mode holds it across its bursts.
        """
        with self._lock:
            if catch_up:
                self.refresh()
            yield
            if not in_step(self.meta, self.vectors):
                save_written(self.meta, self.vectors)
            self.searcher.background()
