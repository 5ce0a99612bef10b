"""FAISS vector store: an index that picks itself by size, a fresh part for growth.

The store holds two parts, searched together (the two result lists merged by
score):

- the *main* part, built from every vector at once: exact or IVF or HNSW, by
  size and the ``ann`` setting (:mod:`mmsearch.store.faiss_build`), its search
  setting tuned to a recall target when it is built
  (:mod:`mmsearch.store.faiss_tune`). IVF candidates are re-ranked exactly
  against the stored float16 vectors (a memory-mapped ``.f16.npy`` file). A
  filter keeping at most :data:`~mmsearch.store.vectors.SCAN_MAX` of its vectors
  is scored exactly over them instead (searching it, a filter included:
  :mod:`mmsearch.store.faiss_search`);
- the *fresh* part: vectors added since, searched exactly. Removing a vector of
  the main part marks it deleted (an ID selector keeps it out of every search),
  so nothing removed is ever returned.

When the fresh part outgrows :func:`fresh_limit`, :meth:`FaissStore.save`
folds it into the main part (adding codes, no retraining); when the index has
grown past twice what it was trained on, when another kind of index fits its
size, or when a tenth of the main part is deleted, the main part is rebuilt
and retrained from SQLite's stored vectors (``source``, set by
:mod:`mmsearch.store.sync`). The files, and how a save survives a crash:
:mod:`mmsearch.store.faiss_files`.

Ids are SQLite segment ids, never reused (see :func:`mmsearch.store.ids.reserve_ids`),
so a store whose (count, largest id) equals SQLite's holds the same segments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from mmsearch.store.faiss_build import choose_kind, load_faiss, train_index
from mmsearch.store.faiss_files import FaissFiles, Stored
from mmsearch.store.faiss_search import MainPartSearch, member, one_thread_for_few, positions
from mmsearch.store.faiss_tune import TUNE_QUERIES, TUNED_K, exact_neighbours, top_k, tune

# When the main part is folded into or rebuilt (see maintain()); how close a grown index
# stays to a fresh build: docs/benchmarks.md, "Large libraries" -> "Growth"
FRESH_MIN = 10_000
FRESH_FRACTION = 0.05
DELETED_FRACTION = 0.1
RETRAIN_GROWTH = 2.0  # retrain when the index holds this many times what it was trained on
ADD_BATCH = 65_536  # vectors converted to float32 and added to the main part at once

VectorSource = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


def fresh_limit(main_count: int) -> int:
    """How many vectors the exact fresh part may hold before it is folded into the main part."""
    return max(FRESH_MIN, int(FRESH_FRACTION * main_count))


class FaissStore(MainPartSearch):
    """One space's vectors in a main and a fresh part, in files beside SQLite."""

    # Called with the target path just before each file of a save is renamed into place;
    # the crash tests' launcher sets it to hold a process there (tests/support/pausing_cli.py).
    before_rename: ClassVar[Callable[[str], None] | None] = None
    local_vectors = True  # see VectorStore.local_vectors and SCAN_MAX

    def __init__(self, path: str, dim: int, ann: str = "auto") -> None:
        self.path = path
        self.dim = dim
        self.ann = ann
        choose_kind(0, ann)  # validates
        self.source: VectorSource | None = None
        self._faiss = load_faiss()
        self.files = FaissFiles(path, dim, self._faiss)
        self.stamp_path = self.files.stamp_path
        self.last_build: dict[str, Any] = {}
        self._empty_state()

    def _empty_state(self) -> None:
        self.kind = "exact"
        self.main: Any = None
        self._quantizer_is_hnsw: bool | None = None
        self.main_ids = np.zeros(0, np.int64)  # sorted
        self.main_vecs: np.ndarray | None = None  # float16 rows of main_ids (IVF only)
        self.deleted = np.zeros(0, np.int64)  # sorted, a subset of main_ids
        self._fresh_chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self.params: dict[str, Any] = {}
        self.trained_on = 0
        self.gen = 0
        self.seq = 0
        self._main_dirty = False
        self._fresh_dirty = True
        self._written: dict[str, str] = {}
        self.synced_to: tuple[int, int] | None = None  # see VectorStore.synced_to
        self._saved_sync: tuple[int, int] | None = None

    # -- the fresh part, kept as chunks so that many small adds cost no copying --

    @property
    def fresh_ids(self) -> np.ndarray:
        return self._fresh()[0]

    @property
    def fresh_vecs(self) -> np.ndarray:
        return self._fresh()[1]

    def _fresh(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._fresh_chunks:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        if len(self._fresh_chunks) > 1:
            ids = np.concatenate([c[0] for c in self._fresh_chunks])
            vecs = np.concatenate([c[1] for c in self._fresh_chunks])
            self._fresh_chunks = [(ids, vecs)]
        return self._fresh_chunks[0]

    def _set_fresh(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        self._fresh_chunks = [(ids, vecs)] if len(ids) else []

    # -- loading -----------------------------------------------------------

    def load(self) -> None:
        """Read the files the stamp names; raise :class:`VectorFileError` if they are untrusted.

        A store that fails to load is left empty.
        """
        try:
            stored = self.files.read()
        except Exception:
            self._empty_state()
            raise
        self._take(stored)

    def _take(self, stored: Stored) -> None:
        self._empty_state()
        self.kind, self.main = stored.kind, stored.main
        self.main_ids, self.main_vecs = stored.main_ids, stored.main_vecs
        self._set_fresh(stored.fresh_ids, stored.fresh_vecs)
        self.deleted = stored.deleted
        self.params = stored.params
        self.trained_on = stored.trained_on
        self.gen, self.seq, self._written = stored.gen, stored.seq, stored.names
        self.synced_to = self._saved_sync = stored.synced_to
        self._main_dirty = stored.legacy  # rewritten in the present layout by the next save
        self._fresh_dirty = stored.legacy

    # -- facts -------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.main_ids) - len(self.deleted) + len(self.fresh_ids)

    @property
    def max_id(self) -> int:
        top = int(self.fresh_ids.max()) if len(self.fresh_ids) else 0
        for i in range(len(self.main_ids) - 1, -1, -1):
            candidate = int(self.main_ids[i])
            if candidate <= top:
                break
            if not self._is_deleted(candidate):
                return candidate
        return top

    def _is_deleted(self, seg_id: int) -> bool:
        at = int(np.searchsorted(self.deleted, seg_id))
        return at < len(self.deleted) and int(self.deleted[at]) == seg_id

    def ids(self) -> np.ndarray:
        """Every id the store would return (main minus deleted, then fresh)."""
        live = np.setdiff1d(np.asarray(self.main_ids), self.deleted, assume_unique=True)
        return np.concatenate([live, self.fresh_ids]).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        """What ``info`` shows: the kind of index, its parts and its tuned search setting."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "ann": self.ann,
            "main": len(self.main_ids),
            "fresh": len(self.fresh_ids),
            "deleted": len(self.deleted),
            "trained_on": self.trained_on,
        }
        out.update(self.params)
        return out

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The held vectors of ``ids`` (float32), in order; ``KeyError`` for an unknown id."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.zeros((len(ids), self.dim), np.float32)
        in_fresh = np.zeros(len(ids), bool)
        if len(self.fresh_ids) and len(ids):
            order = np.argsort(self.fresh_ids, kind="stable")
            at, in_fresh = positions(ids, self.fresh_ids[order])
            out[in_fresh] = self.fresh_vecs[order[at[in_fresh]]]
        rest = np.flatnonzero(~in_fresh)
        if len(rest):
            out[rest] = self._main_vectors(ids[rest])
        return out

    # -- changes -----------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self._fresh_chunks.append((ids, vecs))
        self._fresh_dirty = True
        self.synced_to = None

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        if len(self.fresh_ids):
            keep = ~np.isin(self.fresh_ids, ids)
            if not keep.all():
                self._set_fresh(self.fresh_ids[keep], self.fresh_vecs[keep])
        in_main = ids[member(ids, self.main_ids)]
        if len(in_main):
            self.deleted = np.union1d(self.deleted, in_main)
        self._fresh_dirty = True
        self.synced_to = None

    def reset(self) -> None:
        self._empty_state()
        self._main_dirty = True

    # -- searching ---------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        n = len(queries)
        if self.count == 0 or k <= 0:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        allowed = None if allowed_ids is None else np.asarray(allowed_ids, dtype=np.int64)
        if allowed is not None and len(allowed) == 0:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        k = min(k, self.count if allowed is None else len(allowed))
        parts = [self._search_fresh(queries, k, allowed)]
        if len(self.main_ids) > len(self.deleted):
            with one_thread_for_few(self._faiss, n):
                parts.append(self._search_main(queries, k, allowed))
        scores = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        return top_k(scores, ids, k)

    def _search_fresh(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        ids, vecs = self.fresh_ids, self.fresh_vecs
        if allowed is not None and len(ids):
            keep = np.isin(ids, allowed)
            ids, vecs = ids[keep], vecs[keep]
        if len(ids) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        sims = queries @ vecs.T
        take = min(k, len(ids))
        part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        return np.take_along_axis(sims, part, 1), ids[part]

    # -- keeping the main part in shape -------------------------------------

    def needs_rebuild(self) -> bool:
        """Whether the main part should be retrained and rebuilt from every vector."""
        total = self.count
        kind = choose_kind(total, self.ann)
        if kind != self.kind and (total or self.main is not None):
            return True
        if kind != "exact" and self.trained_on and total > RETRAIN_GROWTH * self.trained_on:
            return True
        return len(self.deleted) > DELETED_FRACTION * max(len(self.main_ids), 1)

    def needs_fold(self) -> bool:
        return len(self.fresh_ids) > fresh_limit(len(self.main_ids))

    def maintain(self) -> str | None:
        """Rebuild or fold the main part when due; return what was done."""
        if self.needs_rebuild():
            self.rebuild_main(self._source_batches())
            return "rebuilt"
        if self.needs_fold():
            self.fold()
            return "folded"
        return None

    def _source_batches(self) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        if len(self.main_ids) == 0:  # a first build: the fresh part holds every vector
            return [(self.fresh_ids, self.fresh_vecs)]  # (not re-read from SQLite)
        if self.source is not None:
            return self.source()
        live = self.ids()  # no SQLite at hand (a store used on its own): its own vectors
        return [(live, self.vectors_of(live))]

    def rebuild_main(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """Build the main part from scratch over ``batches`` of (ids, vectors); fresh emptied."""
        id_parts, vec_parts = [], []
        for ids, vecs in batches:
            id_parts.append(np.asarray(ids, dtype=np.int64))
            vec_parts.append(np.asarray(vecs, dtype=np.float16).reshape(-1, self.dim))
        ids = np.concatenate(id_parts) if id_parts else np.zeros(0, np.int64)
        vecs16 = np.concatenate(vec_parts) if vec_parts else np.zeros((0, self.dim), np.float16)
        order = np.argsort(ids, kind="stable")
        ids, vecs16 = ids[order], vecs16[order]
        del id_parts, vec_parts
        started = time.perf_counter()
        kind = choose_kind(len(ids), self.ann)
        synced = self.synced_to  # same vectors, so still level with SQLite if it was
        self._empty_state()
        self.kind, self.synced_to = kind, synced
        self._main_dirty = True
        trained = 0.0
        if len(ids):
            self.main, self.params = train_index(self._faiss, kind, vecs16)
            self.trained_on = len(ids)
            trained = self._add_tuning(ids, vecs16, started)
        else:
            self._tune(np.zeros((0, self.dim), np.float32))
        self.last_build = {
            "action": "rebuilt",
            "kind": kind,
            "vectors": len(ids),
            "build_seconds": round(trained, 3),
            "tune_seconds": round(time.perf_counter() - started - trained, 3),
        }

    def _add_tuning(self, ids: np.ndarray, vecs16: np.ndarray, started: float) -> float:
        """Add all but a held-out sample, tune on the sample, add it; return the adding time."""
        rng = np.random.default_rng(len(ids))
        held = np.zeros(len(ids), bool)
        if self.kind != "exact" and len(self.main_ids) + len(ids) > 2 * TUNE_QUERIES:
            held[rng.choice(len(ids), min(TUNE_QUERIES, len(ids) // 2), replace=False)] = True
        self._add_to_main(ids[~held], vecs16[~held])
        added = time.perf_counter() - started
        self._tune(np.asarray(vecs16[held], dtype=np.float32))
        if held.any():
            self._add_to_main(ids[held], vecs16[held])
        return added

    def _add_to_main(self, ids: np.ndarray, vecs16: np.ndarray) -> None:
        for start in range(0, len(ids), ADD_BATCH):
            part = np.ascontiguousarray(vecs16[start : start + ADD_BATCH], dtype=np.float32)
            self.main.add_with_ids(part, ids[start : start + ADD_BATCH])
        main_ids = np.concatenate([np.asarray(self.main_ids), ids])
        order = np.argsort(main_ids, kind="stable")
        in_order = bool((order == np.arange(len(order))).all())
        self.main_ids = main_ids if in_order else main_ids[order]
        if self.kind == "ivf":
            old = self.main_vecs if self.main_vecs is not None else np.zeros((0, self.dim))
            vecs = np.concatenate([np.asarray(old, dtype=np.float16), vecs16])
            self.main_vecs = vecs if in_order else vecs[order]

    def fold(self) -> None:
        """Move the fresh part into the main part (its trained quantizer kept) and retune."""
        started = time.perf_counter()
        ids, vecs = self.fresh_ids, self.fresh_vecs
        if self.main is None:
            self.rebuild_main([(ids, vecs)])
            return
        order = np.argsort(ids, kind="stable")
        ids, vecs16 = ids[order], vecs[order].astype(np.float16)
        if len(self.main_ids) and len(ids) and int(ids[0]) <= int(self.main_ids[-1]):
            self.rebuild_main(self._source_batches())  # ids out of order: can't append
            return
        self._writable_main()
        added = self._add_tuning(ids, vecs16, started)
        self._set_fresh(np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32))
        self._main_dirty = self._fresh_dirty = True
        self.last_build = {
            "action": "folded",
            "kind": self.kind,
            "vectors": len(ids),
            "build_seconds": round(added, 3),
            "tune_seconds": round(time.perf_counter() - started - added, 3),
        }

    def _writable_main(self) -> None:
        """A memory-mapped main part can't take new vectors: read it into memory first."""
        if self._written.get("main") and not self._main_dirty:
            self.main = self.files.read_main(self._written, mapped=False)
        self.main_ids = np.array(self.main_ids)
        if self.main_vecs is not None:
            self.main_vecs = np.array(self.main_vecs)

    def _tune(self, queries: np.ndarray) -> None:
        """Tune ``nprobe`` / ``efSearch`` on ``queries``: stored vectors not (yet) in the main
        part, their true neighbours found by exact search over it (see ``faiss_tune.py``)."""
        if self.kind == "exact" or not len(self.main_ids) or not len(queries):
            if self.kind == "exact":
                self.params = {}
            return
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        truth = exact_neighbours(queries, 10, self.main_ids, self.deleted, self._main_block)

        def search(setting: dict[str, int]) -> np.ndarray:
            self.params.update(setting)
            return self._search_main(queries, TUNED_K, None)[1]

        nlist = int(self.main.nlist) if self.kind == "ivf" else 0
        self.params.update(tune(self.kind, nlist, truth, search))
        self.params["tuned_on"] = len(queries)

    def _main_block(self, rows: slice) -> np.ndarray:
        if self.main_vecs is not None:
            return np.asarray(self.main_vecs[rows])
        ids = np.asarray(self.main_ids[rows])
        return np.stack([self.main.reconstruct(int(i)) for i in ids])

    # -- saving ------------------------------------------------------------

    def save(self) -> None:
        """Write what changed (the main part only when rebuilt or folded), then the stamp."""
        self.maintain()
        files, hook = self.files, FaissStore.before_rename
        files.remove_temporaries()
        if not self._main_dirty and not self._fresh_dirty and self._written:
            if self.synced_to != self._saved_sync:  # only the stamp has news
                self._write_stamp(self.gen, self.seq, dict(self._written))
            return
        main_changed = self._main_dirty or not self._written
        gen = self.gen + 1 if main_changed else self.gen
        seq = self.seq + 1
        names = files.names(gen, seq, self.kind)
        if not main_changed:
            names.update({k: v for k, v in self._written.items() if k != "fresh"})
        elif self.main is not None and len(self.main_ids):
            files.write_main(names, self.main, self.main_ids, self.main_vecs, hook)
        files.write_fresh(names, self.fresh_ids, self.fresh_vecs, self.deleted, hook)
        self._write_stamp(gen, seq, names)
        was_dirty = self._main_dirty
        self.gen, self.seq, self._written = gen, seq, names
        self._main_dirty = self._fresh_dirty = False
        files.remove_unnamed(names)
        if was_dirty and self.main is not None and self.kind != "hnsw" and len(self.main_ids):
            # drop the in-memory copy of the main part just written for its mapped file
            self.main, self.main_ids, self.main_vecs = files.read_mapped(names)

    def _write_stamp(self, gen: int, seq: int, names: dict[str, str]) -> None:
        facts = {
            "kind": self.kind,
            "main_count": len(self.main_ids) if self.main is not None else 0,
            "fresh_count": len(self.fresh_ids),
            "deleted_count": len(self.deleted),
            "count": self.count,
            "max_id": self.max_id,
            "trained_on": self.trained_on,
            "params": self.params,
            "synced_to": list(self.synced_to) if self.synced_to is not None else None,
        }
        self.files.write_stamp(gen, seq, names, facts, FaissStore.before_rename)
        self._saved_sync = self.synced_to
