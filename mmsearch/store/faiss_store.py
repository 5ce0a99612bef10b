"""FAISS vector store: exact inner-product search with SQLite segment ids.

The index is an ``IndexIDMap2`` over ``IndexFlatIP``. It is written atomically
(temporary file, fsync, rename) with a small JSON stamp beside it recording how
many vectors it holds and the largest id; a file that disagrees with its stamp
(a crash between the two renames) is not trusted. An engine compares the count
and the largest id held with SQLite's to tell whether the file is behind; that
is sound because SQLite never gives a segment id twice (see
``MetadataStore._next_segment_id``). A save first deletes temporary files left
by processes that died while saving.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from mmsearch.errors import import_optional
from mmsearch.store.files import atomic_write, remove_dead_temporaries
from mmsearch.store.vectors import VectorFileError


def _faiss() -> Any:
    return import_optional("faiss", "faiss", "the FAISS vector store")


class FaissStore:
    # Called with the target path just before each file of a save is renamed into place;
    # the crash tests' launcher sets it to hold a process there (tests/support/pausing_cli.py).
    before_rename: ClassVar[Callable[[str], None] | None] = None

    def __init__(self, path: str, dim: int) -> None:
        self.path = path
        self.stamp_path = path + ".json"
        self.dim = dim
        self._faiss = _faiss()
        self.index = self._empty()
        self._max_id = 0
        self.loaded_from_disk = False

    def _empty(self) -> Any:
        return self._faiss.IndexIDMap2(self._faiss.IndexFlatIP(self.dim))

    def load(self) -> None:
        """Read the file; raise :class:`VectorFileError` when it can't be trusted."""
        if not os.path.exists(self.path):
            raise VectorFileError("missing")
        try:
            with open(self.stamp_path, encoding="utf-8") as f:
                stamp = json.load(f)
            index = self._faiss.read_index(self.path)
        except (OSError, ValueError, RuntimeError) as exc:
            raise VectorFileError(f"unreadable ({exc})") from exc
        if index.d != self.dim or index.ntotal != stamp.get("count"):
            raise VectorFileError("does not match its stamp")
        self.index = index
        self._max_id = self._largest_id()
        self.loaded_from_disk = True

    def _largest_id(self) -> int:
        return int(self.ids().max()) if self.count else 0

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    @property
    def max_id(self) -> int:
        return self._max_id

    def ids(self) -> np.ndarray:
        return self._faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self._max_id = max(self._max_id, int(ids.max()))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        selector = self._faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        self.index.remove_ids(selector)
        if self._max_id in ids:
            self._max_id = self._largest_id()

    def reset(self) -> None:
        self.index = self._empty()
        self._max_id = 0

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.count == 0 or k <= 0:
            n = len(queries)
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        k = min(k, self.count)
        if allowed_ids is None:
            scores, ids = self.index.search(queries, k)
        else:
            allowed = np.ascontiguousarray(allowed_ids, dtype=np.int64)
            if len(allowed) == 0:
                n = len(queries)
                return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
            params = self._faiss.SearchParameters(sel=self._faiss.IDSelectorBatch(allowed))
            scores, ids = self.index.search(queries, min(k, len(allowed)), params=params)
        return scores, ids

    def save(self) -> None:
        remove_dead_temporaries(self.path)
        remove_dead_temporaries(self.stamp_path)
        data = self._faiss.serialize_index(self.index).tobytes()
        atomic_write(self.path, data, FaissStore.before_rename)
        stamp = {"format": 1, "count": self.count, "max_id": self._max_id, "dim": self.dim}
        atomic_write(self.stamp_path, json.dumps(stamp).encode(), FaissStore.before_rename)
