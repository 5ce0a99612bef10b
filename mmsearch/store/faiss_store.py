"""FAISS vector store: an index that picks itself by size, a fresh part for growth.

The store holds two parts, searched together (the two result lists merged by
score):

- the *main* part, built from every vector at once: exact (``IndexFlatIP``)
  below :data:`EXACT_MAX` vectors, above it an IVF index with 8-bit scalar
  codes (``IVF{nlist}_HNSW32,SQ8``, see :data:`IVF_CODES`): its lists come from a
  two-level spherical k-means (:func:`_two_level_centroids`), a small HNSW graph
  over their centroids picks the lists to look in, and the candidates are re-ranked
  exactly against the stored float16 vectors (a memory-mapped ``.f16.npy`` file);
  or HNSW when the ``ann`` setting asks for it. ``nprobe`` (``efSearch``) is tuned
  when the part is built: held-out stored vectors as queries, recall against
  exact search, the smallest setting with R@10 >= :data:`TARGET_RECALL` kept.
  A filter keeping at most :data:`SCAN_MAX` of its vectors is scored exactly
  over them instead;
- the *fresh* part: vectors added since, searched exactly. Removing a vector of
  the main part marks it deleted (an ID selector keeps it out of every search),
  so nothing removed is ever returned.

When the fresh part outgrows :func:`fresh_limit`, :meth:`FaissStore.save`
folds it into the main part (adding codes, no retraining); when the index has
grown past twice what it was trained on, when another kind of index fits its
size, or when a tenth of the main part is deleted, the main part is rebuilt
and retrained from SQLite's stored vectors (``source``, set by
:mod:`mmsearch.store.sync`).

Files (``PATH`` is ``vectors-SPACE.faiss``): ``PATH.json``, the stamp, written
last, names the generation ``G`` of the main part (``vectors-SPACE.gG.faiss``,
``.gG.ids.npy`` and for IVF ``.gG.f16.npy``) and the fresh file
(``vectors-SPACE.gG.fresh-S.npz``: the fresh ids and float16 vectors and the
deleted ids) with their counts. A save writes the main part only when it was
rebuilt or folded, then a new fresh file, then the stamp, each atomically; a
crash at any point leaves the previous stamp with the files it names, which an
engine then catches up from SQLite. Files no stamp names are deleted by the
next save. The main part is opened memory-mapped, so a cold query reads only
the pages it touches.

Ids are SQLite segment ids, never reused (see ``MetadataStore._next_segment_id``),
so a store whose (count, largest id) equals SQLite's holds the same segments.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import numpy as np

from mmsearch.errors import ConfigError, import_optional
from mmsearch.kinds import ANN_KINDS
from mmsearch.store.files import atomic_write, remove_dead_temporaries
from mmsearch.store.vectors import VectorFileError

EXACT_MAX = 20_000
"""Below this many vectors ``ann=auto`` searches exactly: measured here (2 cores, 512-d, one
thread per query) exact search takes 0.6 ms at 10k, 1.6 ms at 20k and 8 ms at 50k vectors."""
TARGET_RECALL = 0.95
RERANK = 10  # IVF candidates per wanted result, re-ranked exactly from the float16 vectors
RERANKS = (10, 30, 100)  # tried in turn when tuning, until the recall target is reached
TUNE_QUERIES = 200
TUNED_K = 10  # recall is tuned at R@10
FRESH_MIN = 10_000
FRESH_FRACTION = 0.05
DELETED_FRACTION = 0.1
RETRAIN_GROWTH = 2.0  # retrain when the index holds this many times what it was trained on
HNSW_M = 32
HNSW_EF_MAX = 4096
SCAN_MAX = 2048
"""A filter that keeps at most this many of the main part's vectors is searched exactly over
them (their stored vectors), not through the ANN index with an ID selector. Measured with
``python -m benchmarks.scale`` (its filter table, top 200): at 1M segments a scan of 2,048
allowed vectors took 10.8 ms against 15.9 ms through IVF, of 4,096 18.4 against 10.6 ms; at
100k, 5.2 against 4.3 ms at 2,048 and 2.7 against 3.9 at 1,024. Below a few hundred the IVF
path must look in every list (58 ms for 256 at 1M, 1.3 ms scanned)."""
PREAD_ROWS = 4096  # up to this many stored rows are read with pread, more through the map
IVF_CODES = "SQ8"
"""How IVF stores its vectors (built in ``FaissStore._train``): one byte per dimension. Fast-scan
PQ (``PQ128x4fs``, 64 bytes per 512-d vector) is 8x smaller but its codebooks trained 15x slower
here (IVF512 on 16k vectors: 65 s against 4.2 s for SQ8 on a busy 2-core machine), and the index
is retrained as it grows. Candidates are re-ranked from the float16 vectors either way."""
TRAIN_PER_LIST = 64  # training sample: this many vectors per IVF list
TRAIN_ITERATIONS = 20  # k-means iterations, at each of the two levels
# (32 vectors and 10 iterations: four builds over the same 100k vectors ranged 0.976-0.993 in
# R@10 at nprobe 16; 64 and 20: 0.988-0.997, for 9 s of training instead of 6)
QUANTIZER_EF = 64  # the HNSW coarse quantizer's efSearch (at least 2 x nprobe)
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
EF_SEARCHES = (16, 32, 64, 128, 256, 512)

VectorSource = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]


def _faiss() -> Any:
    return import_optional("faiss", "faiss", "the FAISS vector store")


def choose_kind(count: int, ann: str) -> str:
    """The main part's kind for ``count`` vectors under the ``ann`` setting."""
    if ann == "auto":
        return "exact" if count < EXACT_MAX else "ivf"
    if ann not in ANN_KINDS:
        raise ConfigError(f"ann must be one of {', '.join(ANN_KINDS)}, not {ann!r}")
    return ann


def nlist_for(count: int) -> int:
    """IVF lists: the power of two nearest ``4 * sqrt(count)`` (autofaiss's rule of thumb)."""
    return int(2 ** round(math.log2(max(64.0, 4 * math.sqrt(max(count, 1))))))


def fresh_limit(main_count: int) -> int:
    """How many vectors the exact fresh part may hold before it is folded into the main part."""
    return max(FRESH_MIN, int(FRESH_FRACTION * main_count))


@contextlib.contextmanager
def _threads(faiss: Any, n_queries: int) -> Iterator[None]:
    """One thread for one query: on a busy machine OpenMP wake-ups cost more than they save."""
    before = faiss.omp_get_max_threads()
    if n_queries <= 2 and before > 1:
        faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        if n_queries <= 2 and before > 1:
            faiss.omp_set_num_threads(before)


def _top(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row the ``k`` best (score, id) pairs, best first, ties by id; padded with -1."""
    n = len(scores)
    out_s = np.full((n, k), -np.inf, np.float32)
    out_i = np.full((n, k), -1, np.int64)
    for row in range(n):
        valid = ids[row] >= 0
        s, i = scores[row][valid], ids[row][valid]
        order = np.lexsort((i, -s))[:k]
        out_s[row, : len(order)] = s[order]
        out_i[row, : len(order)] = i[order]
    return out_s, out_i


class FaissStore:
    # Called with the target path just before each file of a save is renamed into place;
    # the crash tests' launcher sets it to hold a process there (tests/support/pausing_cli.py).
    before_rename: ClassVar[Callable[[str], None] | None] = None
    local_vectors = True  # see VectorStore.local_vectors and SCAN_MAX

    def __init__(self, path: str, dim: int, ann: str = "auto") -> None:
        self.path = path
        self.stamp_path = path + ".json"
        self.dim = dim
        self.ann = ann
        choose_kind(0, ann)  # validates
        self.source: VectorSource | None = None
        self._faiss = _faiss()
        self.loaded_from_disk = False
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

    # -- names -------------------------------------------------------------

    def _base(self) -> str:
        return self.path[: -len(".faiss")] if self.path.endswith(".faiss") else self.path

    def _names(self, gen: int, seq: int) -> dict[str, str]:
        base = os.path.basename(self._base())
        names = {
            "main": f"{base}.g{gen}.faiss",
            "ids": f"{base}.g{gen}.ids.npy",
            "fresh": f"{base}.g{gen}.fresh-{seq}.npz",
        }
        if self.kind == "ivf":
            names["vectors"] = f"{base}.g{gen}.f16.npy"
        return names

    def _file(self, name: str) -> str:
        return os.path.join(os.path.dirname(self.path), name)

    # -- loading -----------------------------------------------------------

    def load(self) -> None:
        """Read the files the stamp names; raise :class:`VectorFileError` if they are untrusted."""
        for attempt in range(3):  # a writer may replace the files between the stamp and them
            try:
                self._load()
                return
            except VectorFileError:
                if attempt == 2:
                    raise
                time.sleep(0.05)

    def _load(self) -> None:
        if not os.path.exists(self.stamp_path):
            raise VectorFileError("missing")
        try:
            with open(self.stamp_path, encoding="utf-8") as f:
                stamp = json.load(f)
        except (OSError, ValueError) as exc:
            raise VectorFileError(f"unreadable ({exc})") from exc
        if stamp.get("format") == 1:
            self._load_v1(stamp)
            return
        try:
            self._load_v2(stamp)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            self._empty_state()
            raise VectorFileError(f"unreadable ({exc})") from exc

    def _load_v1(self, stamp: dict[str, Any]) -> None:
        """An index written before the fresh part: one exact ``IndexIDMap2`` file."""
        try:
            index = self._faiss.read_index(self.path)
        except (OSError, RuntimeError) as exc:
            raise VectorFileError(f"unreadable ({exc})") from exc
        if index.d != self.dim or index.ntotal != stamp.get("count"):
            raise VectorFileError("does not match its stamp")
        self._empty_state()
        self.main = index
        self.main_ids = np.sort(self._faiss.vector_to_array(index.id_map).astype(np.int64))
        self.trained_on = len(self.main_ids)
        self._main_dirty = True  # rewritten in the new layout by the next save
        self.loaded_from_disk = True

    def _load_v2(self, stamp: dict[str, Any]) -> None:
        if int(stamp["dim"]) != self.dim:
            raise VectorFileError("does not match its stamp")
        names: dict[str, str] = stamp["files"]
        kind = str(stamp["kind"])
        main = None
        main_count = int(stamp["main_count"])
        main_ids = np.zeros(0, np.int64)
        main_vecs = None
        if main_count:
            flags = self._faiss.IO_FLAG_MMAP if kind != "hnsw" else 0
            main = self._faiss.read_index(self._file(names["main"]), flags)
            main_ids = np.load(self._file(names["ids"]), mmap_mode="r")
            if kind == "ivf":
                main_vecs = np.load(self._file(names["vectors"]), mmap_mode="r")
                if main_vecs.shape != (main_count, self.dim):
                    raise VectorFileError("does not match its stamp")
            if main.ntotal != main_count or len(main_ids) != main_count or main.d != self.dim:
                raise VectorFileError("does not match its stamp")
        with np.load(self._file(names["fresh"])) as fresh:
            fresh_ids = fresh["ids"].astype(np.int64)
            fresh_vecs = fresh["vectors"].astype(np.float32).reshape(-1, self.dim)
            deleted = fresh["deleted"].astype(np.int64)
        if len(fresh_ids) != int(stamp["fresh_count"]) or len(deleted) != int(
            stamp["deleted_count"]
        ):
            raise VectorFileError("does not match its stamp")
        self._empty_state()
        self.kind, self.main, self.main_ids, self.main_vecs = kind, main, main_ids, main_vecs
        self._set_fresh(fresh_ids, fresh_vecs)
        self.deleted = deleted
        self.params = dict(stamp.get("params") or {})
        self.trained_on = int(stamp.get("trained_on", main_count))
        self.gen, self.seq = int(stamp["gen"]), int(stamp["seq"])
        self._written = dict(names)
        self._main_dirty = self._fresh_dirty = False
        synced = stamp.get("synced_to")
        self.synced_to = self._saved_sync = (int(synced[0]), int(synced[1])) if synced else None
        self.loaded_from_disk = True

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
            at, in_fresh = _positions(ids, self.fresh_ids[order])
            out[in_fresh] = self.fresh_vecs[order[at[in_fresh]]]
        rest = np.flatnonzero(~in_fresh)
        if not len(rest):
            return out
        main_ids = np.asarray(self.main_ids)
        rows, known = _positions(ids[rest], main_ids)
        if not known.all():
            raise KeyError(int(ids[rest][np.flatnonzero(~known)[0]]))
        if self.main_vecs is not None:
            out[rest] = self._main_rows(rows)
        else:
            for n, row in zip(rest.tolist(), rows.tolist(), strict=True):
                out[n] = self._main_vector(row, int(main_ids[row]))
        return out

    def _main_vector(self, row: int, seg_id: int) -> np.ndarray:
        if self.main_vecs is not None:
            return self._main_rows(np.array([row]))[0]
        return np.asarray(self.main.reconstruct(seg_id), dtype=np.float32)

    def _main_rows(self, rows: np.ndarray) -> np.ndarray:
        """The main part's stored vectors at ``rows`` (float32).

        A few rows of a memory-mapped file are read with ``pread``, not through the map: a
        fault on a mapped file maps a whole page-cache folio (up to megabytes on current
        kernels) into the process, so a re-rank's hundred scattered rows would leave most
        of the file resident in every process that searched once.
        """
        vecs = self.main_vecs
        assert vecs is not None
        if not isinstance(vecs, np.memmap) or vecs.filename is None or len(rows) > PREAD_ROWS:
            return np.asarray(vecs[rows], dtype=np.float32)
        width = self.dim * vecs.itemsize
        out = np.empty((len(rows), self.dim), vecs.dtype)
        fd = os.open(vecs.filename, os.O_RDONLY)
        try:
            for n, row in enumerate(rows.tolist()):
                out[n] = np.frombuffer(os.pread(fd, width, vecs.offset + row * width), vecs.dtype)
        finally:
            os.close(fd)
        return out.astype(np.float32)

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
        in_main = ids[_member(ids, self.main_ids)]
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
            with _threads(self._faiss, n):
                parts.append(self._search_main(queries, k, allowed))
        scores = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        return _top(scores, ids, k)

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

    def _allowed_main(self, allowed: np.ndarray) -> np.ndarray:
        """The ids of ``allowed`` the main part holds and has not deleted, sorted."""
        mine = np.unique(allowed[_member(allowed, self.main_ids)])
        if len(self.deleted):
            mine = mine[~_member(mine, self.deleted)]
        return mine

    def _selector(self, mine: np.ndarray | None) -> Any:
        """An ID selector for the main part: ``mine`` only, or every live vector."""
        faiss = self._faiss
        if mine is not None:
            return faiss.IDSelectorBatch(np.ascontiguousarray(mine, dtype=np.int64))
        if not len(self.deleted):
            return None
        return faiss.IDSelectorNot(faiss.IDSelectorBatch(self.deleted))

    def _search_main(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        n = len(queries)
        mine = None if allowed is None else self._allowed_main(allowed)
        live = len(self.main_ids) - len(self.deleted)
        reachable = live if mine is None else len(mine)
        if reachable == 0:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        want = min(k, reachable)
        if mine is not None and self.kind != "exact" and reachable <= SCAN_MAX:
            return self._scan_main(queries, want, mine)  # few allowed: score them all
        sel = self._selector(mine)
        if self.kind == "exact":
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
            return self.main.search(queries, want, params=params)  # type: ignore[no-any-return]
        if self.kind == "hnsw":
            ef = max(int(self.params.get("ef_search", 64)), want)
            while True:
                params = faiss.SearchParametersHNSW(efSearch=ef)
                if sel is not None:
                    params.sel = sel
                scores, ids = self.main.search(queries, want, params=params)
                if (ids >= 0).sum(axis=1).min() >= want:
                    return scores, ids
                if ef >= HNSW_EF_MAX:  # a graph walk can't reach enough allowed vectors
                    return self._scan_main(queries, want, mine)
                ef *= 4
        nlist = int(self.main.nlist)
        nprobe = int(self.params.get("nprobe", 16))
        if mine is not None:  # lists a filter's share of vectors needs to hold `want` of them
            nprobe = max(nprobe, math.ceil(2 * want * nlist / reachable))
        while True:
            scores, ids = self._search_ivf(queries, want, sel, min(nprobe, nlist))
            short = (ids >= 0).sum(axis=1).min() < want
            if not short or nprobe >= nlist:
                return scores, ids
            nprobe *= 4  # fewer than expected in the lists looked at: look in more

    def _scan_main(
        self, queries: np.ndarray, k: int, mine: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores over the main part's live vectors (``mine`` only, if given)."""
        if mine is None:
            mine = np.setdiff1d(np.asarray(self.main_ids), self.deleted, assume_unique=True)
        sims = queries @ self.vectors_of(mine).T
        return _top(sims, np.broadcast_to(mine, sims.shape), k)

    def _hnsw_quantizer(self) -> bool:
        """Whether the IVF part's coarse quantizer is a graph (indexes built before: flat)."""
        if self._quantizer_is_hnsw is None:
            quantizer = self._faiss.downcast_index(self.main.quantizer)
            self._quantizer_is_hnsw = isinstance(quantizer, self._faiss.IndexHNSW)
        return self._quantizer_is_hnsw

    def _search_ivf(
        self, queries: np.ndarray, k: int, sel: Any, nprobe: int
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = self._faiss
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if sel is not None:
            params.sel = sel
        # the graph quantizer must look at least nprobe lists deep; `coarse` is kept in a
        # local so the parameters it points to live until the search below has run
        coarse = None
        if self._hnsw_quantizer():
            coarse = faiss.SearchParametersHNSW(efSearch=max(QUANTIZER_EF, 2 * nprobe))
            params.quantizer_params = coarse
        # the tuned factor buys (rerank - 1) * 10 spare candidates for a top 10; a deeper
        # list gets the same spare, not k times it: at 1M, k = 200, nprobe 4, R@200 is 0.986
        # with 290 candidates and with 2,000 (bounded by nprobe), at a seventh of the reads
        spare = (int(self.params.get("rerank", RERANK)) - 1) * min(k, TUNED_K)
        fetch = min(k + spare, len(self.main_ids))
        _, cand = self.main.search(queries, fetch, params=params)
        assert self.main_vecs is not None
        out_s = np.full((len(queries), k), -np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        for row in range(len(queries)):
            found = cand[row][cand[row] >= 0]
            if not len(found):
                continue
            sims = self._main_rows(np.searchsorted(self.main_ids, found)) @ queries[row]
            order = np.lexsort((found, -sims))[:k]
            out_s[row, : len(order)] = sims[order]
            out_i[row, : len(order)] = found[order]
        return out_s, out_i

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
            return [(self.fresh_ids, self.fresh_vecs)]  # (1M re-read from SQLite: ~10 s)
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
            self.main = self._train(kind, vecs16)
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

    def _train(self, kind: str, vecs16: np.ndarray) -> Any:
        faiss = self._faiss
        if kind == "exact":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 80
            return faiss.IndexIDMap2(hnsw)
        nlist = nlist_for(len(vecs16))
        rng = np.random.default_rng(0)
        sample_size = min(len(vecs16), TRAIN_PER_LIST * nlist)
        sample = vecs16[np.sort(rng.choice(len(vecs16), sample_size, replace=False))]
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        centroids = _two_level_centroids(faiss, sample, nlist)
        quantizer = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        quantizer.add(centroids)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer,
            self.dim,
            len(centroids),
            faiss.ScalarQuantizer.QT_8bit,  # IVF_CODES
            faiss.METRIC_INNER_PRODUCT,
        )
        index.own_fields = True
        quantizer.this.disown()  # the index owns (and frees) its quantizer
        index.train(sample)  # the quantizer holds nlist centroids: only the codes are trained
        nlist = len(centroids)
        self.params = {"index": f"IVF{nlist}_HNSW{HNSW_M},{IVF_CODES}", "nlist": nlist}
        return index

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
        for start in range(0, len(ids), 65_536):
            part = np.ascontiguousarray(vecs16[start : start + 65_536], dtype=np.float32)
            self.main.add_with_ids(part, ids[start : start + 65_536])
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
            self.main = self._faiss.read_index(self._file(self._written["main"]))
        self.main_ids = np.array(self.main_ids)
        if self.main_vecs is not None:
            self.main_vecs = np.array(self.main_vecs)

    def _tune(self, queries: np.ndarray) -> None:
        """Smallest ``nprobe`` / ``efSearch`` reaching R@10 >= TARGET_RECALL on held-out vectors.

        ``queries`` are stored vectors not (yet) in the main part; recall is measured
        against exact search over the main part.
        """
        if self.kind == "exact" or not len(self.main_ids) or not len(queries):
            if self.kind == "exact":
                self.params = {}
            return
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        truth = self._exact_neighbours(queries, 10)
        name = "nprobe" if self.kind == "ivf" else "ef_search"
        if self.kind == "ivf":
            nprobes = [p for p in NPROBES if p < self.main.nlist] + [int(self.main.nlist)]
            plans = [(r, nprobes) for r in RERANKS]
        else:
            plans = [(RERANK, list(EF_SEARCHES))]

        def recall_at(rerank: int, value: int) -> float:
            self.params.update({name: value, "rerank": rerank})
            _, found = self._search_main(queries, TUNED_K, None)
            return _recall_at_10(found, truth)

        # recall grows with nprobe (efSearch): find the largest rerank factor needed at the
        # widest setting, then the smallest setting reaching the target, by bisection
        rerank, values = plans[-1]
        for rerank, values in plans:
            if recall_at(rerank, values[-1]) >= TARGET_RECALL:
                break
        lo, hi = 0, len(values) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if recall_at(rerank, values[mid]) >= TARGET_RECALL:
                hi = mid
            else:
                lo = mid + 1
        recall = recall_at(rerank, values[lo])
        self.params.update({name: values[lo], "rerank": rerank})
        self.params["recall_at_10"] = round(recall, 4)
        self.params["tuned_on"] = len(queries)

    def _exact_neighbours(self, queries: np.ndarray, k: int) -> np.ndarray:
        """The ids of each query's ``k`` nearest live vectors of the main part, exactly."""
        best_s = np.zeros((len(queries), 0), np.float32)
        best_i = np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(self.main_ids), 131_072):
            rows = slice(start, start + 131_072)
            block_ids = np.asarray(self.main_ids[rows])
            sims = queries @ np.asarray(self._main_block(rows), dtype=np.float32).T
            if len(self.deleted):
                sims[:, np.isin(block_ids, self.deleted)] = -np.inf
            take = min(k, sims.shape[1])
            part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
            best_s = np.concatenate([best_s, np.take_along_axis(sims, part, 1)], axis=1)
            best_i = np.concatenate([best_i, block_ids[part]], axis=1)
        return _top(best_s, best_i, k)[1]

    def _main_block(self, rows: slice) -> np.ndarray:
        if self.main_vecs is not None:
            return np.asarray(self.main_vecs[rows])
        ids = np.asarray(self.main_ids[rows])
        return np.stack([self.main.reconstruct(int(i)) for i in ids])

    # -- saving ------------------------------------------------------------

    def save(self) -> None:
        """Write what changed (the main part only when rebuilt or folded), then the stamp."""
        self.maintain()
        folder = os.path.dirname(self.path) or "."
        base = os.path.basename(self._base())
        for entry in os.listdir(folder):
            if entry.startswith(base):
                remove_dead_temporaries(os.path.join(folder, entry.split(".tmp-")[0]))
        if not self._main_dirty and not self._fresh_dirty and self._written:
            if self.synced_to != self._saved_sync:  # only the stamp has news
                self._write_stamp(self.gen, self.seq, dict(self._written))
            return
        gen = self.gen + 1 if self._main_dirty or not self._written else self.gen
        seq = self.seq + 1
        names = self._names(gen, seq)
        hook = FaissStore.before_rename
        if self._main_dirty or not self._written:
            if self.main is not None and len(self.main_ids):
                data = self._faiss.serialize_index(self.main).tobytes()
                atomic_write(self._file(names["main"]), data, hook)
                atomic_write(self._file(names["ids"]), _npy(np.asarray(self.main_ids)), hook)
                if self.main_vecs is not None:
                    vec_bytes = _npy(np.asarray(self.main_vecs, dtype=np.float16))
                    atomic_write(self._file(names["vectors"]), vec_bytes, hook)
        else:
            for key in ("main", "ids", "vectors"):
                if key in self._written:
                    names[key] = self._written[key]
        fresh = io.BytesIO()
        np.savez(
            fresh,
            ids=self.fresh_ids,
            vectors=self.fresh_vecs.astype(np.float16),
            deleted=self.deleted,
        )
        atomic_write(self._file(names["fresh"]), fresh.getvalue(), hook)
        self._write_stamp(gen, seq, names)
        was_dirty = self._main_dirty
        self.gen, self.seq, self._written = gen, seq, names
        self._main_dirty = self._fresh_dirty = False
        self._remove_unnamed(folder, base, names)
        if was_dirty and self.main is not None and self.kind != "hnsw" and len(self.main_ids):
            self._reopen_mapped(names)

    def _write_stamp(self, gen: int, seq: int, names: dict[str, str]) -> None:
        stamp = {
            "format": 2,
            "kind": self.kind,
            "gen": gen,
            "seq": seq,
            "files": names,
            "dim": self.dim,
            "main_count": len(self.main_ids) if self.main is not None else 0,
            "fresh_count": len(self.fresh_ids),
            "deleted_count": len(self.deleted),
            "count": self.count,
            "max_id": self.max_id,
            "trained_on": self.trained_on,
            "params": self.params,
            "synced_to": list(self.synced_to) if self.synced_to is not None else None,
            "saved_at": time.time(),
        }
        atomic_write(self.stamp_path, json.dumps(stamp).encode(), FaissStore.before_rename)
        self._saved_sync = self.synced_to

    def _remove_unnamed(self, folder: str, base: str, names: dict[str, str]) -> None:
        keep = set(names.values()) | {os.path.basename(self.stamp_path)}
        for entry in os.listdir(folder):
            if not entry.startswith(base + ".") or entry in keep or ".tmp-" in entry:
                continue
            rest = entry[len(base) :]
            if rest == ".faiss" or rest.startswith(".g"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, entry))

    def _reopen_mapped(self, names: dict[str, str]) -> None:
        """Drop the in-memory copy of a just-written main part for its memory-mapped file."""
        self.main = self._faiss.read_index(self._file(names["main"]), self._faiss.IO_FLAG_MMAP)
        self.main_ids = np.load(self._file(names["ids"]), mmap_mode="r")
        if "vectors" in names:
            self.main_vecs = np.load(self._file(names["vectors"]), mmap_mode="r")


def _two_level_centroids(faiss: Any, sample: np.ndarray, nlist: int) -> np.ndarray:
    """About ``nlist`` unit-norm k-means centroids of ``sample``, clustered in two levels.

    √nlist coarse clusters first, then each split into a share of the lists in
    proportion to its size: each k-means compares a point with √nlist centroids,
    not nlist, so at 1M segments (4,096 lists) training takes seconds instead of
    minutes, at the same recall for a given nprobe (faiss.contrib.clustering does
    the same for L2; this is its inner-product, spherical form).
    """
    dim = sample.shape[1]

    def kmeans(points: np.ndarray, k: int) -> Any:
        km = faiss.Kmeans(
            dim,
            k,
            niter=TRAIN_ITERATIONS,
            spherical=True,
            seed=1234,
            min_points_per_centroid=1,  # no warning: a small share is still clustered
            max_points_per_centroid=len(points),
        )
        km.train(points)
        return km

    coarse = max(1, min(round(math.sqrt(nlist)), len(sample)))
    top = kmeans(sample, coarse)
    _, assigned = top.index.search(sample, 1)
    assigned = assigned.ravel()
    sizes = np.bincount(assigned, minlength=coarse)
    shares = np.diff(np.concatenate([[0], np.cumsum(sizes) * nlist // max(1, len(sample))]))
    parts = []
    for cluster in range(coarse):
        members = sample[assigned == cluster]
        k = min(int(shares[cluster]), len(members))
        if k == 1:
            centre = members.mean(axis=0, keepdims=True)
            parts.append(centre / max(float(np.linalg.norm(centre)), 1e-12))
        elif k > 1:
            parts.append(kmeans(members, k).centroids)
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)


def _member(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``sorted_ids`` (a sorted, perhaps memory-mapped array).

    A binary search per value touches a few pages of the id file, where
    ``np.isin`` would read and sort all of it (a million ids, every filtered query).
    """
    return _positions(values, sorted_ids)[1]


def _positions(values: np.ndarray, sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``values``' row in ``sorted_ids`` (by binary search), and whether it is there."""
    if not len(sorted_ids):
        return np.zeros(len(values), np.int64), np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return at, np.asarray(sorted_ids[at] == values)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    """The share of each query's 10 true neighbours found among its first 10 results."""
    hits = sum(
        len({int(i) for i in f[:10] if i >= 0} & {int(i) for i in t[:10]})
        for f, t in zip(found, truth, strict=True)
    )
    return hits / max(1, sum(int((t[:10] >= 0).sum()) for t in truth))
