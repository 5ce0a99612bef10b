"""The vector-store protocol and its registry.

A vector store holds one space's vectors under the SQLite segment ids and
answers inner-product (cosine, for normalised vectors) top-k queries,
optionally restricted to a set of allowed ids. It is a derived cache: the
engine rebuilds it from SQLite whenever it is missing, corrupt or behind.

The backends and how one is chosen by name: :mod:`mmsearch.store.backends`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

SCAN_MAX = 2048
"""A filter that keeps at most this many segments is scored exactly over their vectors, not
searched through the vector index with a filter: below it, finding the top k among few
allowed vectors makes an approximate index look almost everywhere, and scoring them all is
faster. A store that holds its vectors here (:attr:`VectorStore.local_vectors`) scans them
itself; for the others the searcher scans them from the metadata store. See
``docs/benchmarks.md``, "Large libraries" → "Filtered search crossover"."""


class VectorFileError(Exception):
    """The stored vectors are missing, unreadable or disagree with their stamp: rebuild them."""


class VectorStore(Protocol):
    dim: int
    synced_to: tuple[int, int] | None
    """The metadata store's :meth:`~mmsearch.store.metadata.MetadataStore.segment_stamp` when
    this store was last known to hold exactly its segments (``None``: not known). A store
    that keeps it across a save lets a new process skip counting every segment at open."""

    local_vectors: bool
    """Whether the store holds its vectors on this machine and reads them (:meth:`vectors_of`)
    faster than the metadata store can: then the searcher reads candidates' vectors from it
    and leaves small filters (:data:`SCAN_MAX`) to :meth:`search`, which scores them exactly
    itself. Otherwise
    (a server's round trip) both come from the metadata store."""

    def load(self) -> None:
        """Read what is stored; raise :class:`VectorFileError` when it can't be trusted."""
        ...

    def ids(self) -> np.ndarray: ...

    @property
    def count(self) -> int: ...

    @property
    def max_id(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The held vectors of ``ids`` (float32), in order; ``KeyError`` for an unknown id."""
        ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(scores, ids)`` of shape (n_queries, k), best first; missing ids are -1."""
        ...

    def rebuild_main(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """Build the (reset) store over ``batches`` of ``(ids, vectors)``: every vector at once."""
        ...

    def describe(self) -> dict[str, Any]:
        """What ``info`` shows of the index behind the store (its kind, parts, settings)."""
        ...

    def save(self) -> None: ...

    def reset(self) -> None: ...
