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
    store.reset()
    store.rebuild_main(_all_vectors(meta))
    store.save()


def catch_up(meta: MetadataStore, store: VectorStore) -> None:
    """Bring ``store`` level with SQLite: replay newer segments, or rebuild."""
    count, top = meta.segment_stats()
    if (store.count, store.max_id) == (count, top):
        return
    if top > store.max_id and store.count <= count:
        with meta.sessions() as s:
            newer = list(s.scalars(select(Segment.id).where(Segment.id > store.max_id)))
            for ids, vecs in meta.vectors(s, newer):
                store.add(ids, vecs)
        if (store.count, store.max_id) == (count, top):
            return
    rebuild(meta, store)
