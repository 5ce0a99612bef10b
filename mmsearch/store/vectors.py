"""The vector-store protocol and its registry.

A vector store holds one space's vectors under the SQLite segment ids and
answers inner-product (cosine, for normalised vectors) top-k queries,
optionally restricted to a set of allowed ids. It is a derived cache: the
engine rebuilds it from SQLite whenever it is missing, corrupt or behind.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from mmsearch.errors import ConfigError


class VectorStore(Protocol):
    dim: int

    @property
    def count(self) -> int: ...

    @property
    def max_id(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(scores, ids)`` of shape (n_queries, k), best first; missing ids are -1."""
        ...

    def save(self) -> None: ...

    def reset(self) -> None: ...


def open_vector_store(backend: str, path: str, dim: int, ann: str = "auto") -> VectorStore:
    """Open (or create empty) the store ``backend`` at ``path``; ``ann`` picks its index."""
    if backend == "faiss":
        from mmsearch.store.faiss_store import FaissStore

        return FaissStore(path, dim, ann)
    raise ConfigError(f"unknown vector store {backend!r}; available: faiss")
