"""Keeping the vector file in step with SQLite, the source of truth.

The vector file is a cache of the vectors SQLite holds. Opening an index loads
it; when it is missing or damaged it is rebuilt from SQLite, and when it is
behind (another process added segments since it was written, or a crash came
between the SQLite commit and the vector save) the newer segments are replayed
into it. Anything else that does not add up (fewer or other ids than SQLite
has) is rebuilt from scratch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from sqlalchemy import select

from mmsearch.store.metadata import MetadataStore
from mmsearch.store.schema import Segment
from mmsearch.store.vectors import VectorFileError, VectorStore


def load_or_rebuild(
    meta: MetadataStore, store: VectorStore, on_notice: Callable[[str], None]
) -> None:
    """Load ``store`` from its file and catch it up, or rebuild it when the file is unusable.

    The store is also given SQLite as the source it retrains from when its main
    part is due for a rebuild (see :mod:`mmsearch.store.faiss_store`).
    """
    store.source = lambda: _all_vectors(meta)  # type: ignore[attr-defined]
    try:
        store.load()
    except VectorFileError as exc:
        if meta.segment_stats()[0]:
            on_notice(f"vector file {exc}; rebuilding it from the index database")
        rebuild(meta, store)
        return
    catch_up(meta, store)


def _all_vectors(meta: MetadataStore) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    with meta.sessions() as s:
        yield from meta.vectors(s, batch=65_536)


def rebuild(meta: MetadataStore, store: VectorStore) -> None:
    """Empty ``store``, build it over every vector SQLite holds and save it."""
    stamp = meta.segment_stamp()  # before reading: a later commit makes the next check recount
    store.reset()
    store.rebuild_main(_all_vectors(meta))
    store.synced_to = stamp
    store.save()


def in_step(meta: MetadataStore, store: VectorStore) -> bool:
    """Whether ``store`` was saved or caught up at SQLite's present state (no count needed)."""
    return _level(store, meta.segment_stamp())


def _level(store: VectorStore, stamp: tuple[int, int]) -> bool:
    return store.synced_to == stamp and store.max_id == stamp[0]


def catch_up(meta: MetadataStore, store: VectorStore) -> None:
    """Bring ``store`` level with SQLite: replay newer segments, or rebuild.

    When the store's :attr:`~VectorStore.synced_to` is SQLite's present stamp
    nothing is counted; otherwise the segments are counted once and the stamp
    read before the count is recorded, so the next call is free.
    """
    stamp = meta.segment_stamp()
    if _level(store, stamp):
        return
    count, top = meta.segment_stats()
    if (store.count, store.max_id) == (count, top):
        store.synced_to = stamp
        return
    if top > store.max_id and store.count <= count:
        with meta.sessions() as s:
            newer = list(s.scalars(select(Segment.id).where(Segment.id > store.max_id)))
            for ids, vecs in meta.vectors(s, newer):
                store.add(ids, vecs)
        if (store.count, store.max_id) == (count, top):
            store.synced_to = stamp
            return
    rebuild(meta, store)


def save_written(meta: MetadataStore, store: VectorStore) -> None:
    """Save a writer's ``store``, recording that it holds SQLite's present segments.

    Only for the writer (it holds the index's writer lock) after every change it
    committed to SQLite has reached ``store`` as well: then the store matches
    SQLite exactly, and a reader opening it later need not count the segments.
    """
    store.synced_to = meta.segment_stamp()
    store.save()
