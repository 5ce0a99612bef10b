"""Searching the FAISS store's main part, with or without a filter.

A filter arrives as allowed ids. When it keeps at most
:data:`~mmsearch.store.vectors.SCAN_MAX` of the main part's live vectors they
are scored exactly, from the stored float16 rows; more go through the index with
a FAISS ID selector: IVF starting at the ``nprobe`` the filter's share of the
vectors needs and widening while too few are found, HNSW widening ``efSearch``
and scanning when a graph walk can't reach enough. IVF candidates are re-ranked
exactly from the stored float16 vectors. Deleted ids are kept out of every
search by an ``IDSelectorNot``.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from mmsearch.store.faiss_tune import RERANK, TUNED_K, top_k
from mmsearch.store.vectors import SCAN_MAX

HNSW_EF_MAX = 4096
PREAD_ROWS = 4096  # up to this many stored rows are read with pread, more through the map
QUANTIZER_EF = 64  # the HNSW coarse quantizer's efSearch (at least 2 x nprobe)


@contextlib.contextmanager
def one_thread_for_few(faiss: Any, n_queries: int) -> Iterator[None]:
    """One thread for one query: on a busy machine OpenMP wake-ups cost more than they save."""
    before = faiss.omp_get_max_threads()
    if n_queries <= 2 and before > 1:
        faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        if n_queries <= 2 and before > 1:
            faiss.omp_set_num_threads(before)


class MainPartSearch:
    """The main part's reading and searching, for :class:`~mmsearch.store.faiss_store.FaissStore`.

    The attributes are the store's: ``main`` is the FAISS index, ``main_ids`` its
    sorted ids, ``main_vecs`` their float16 rows (IVF only) and ``deleted`` the
    sorted ids marked deleted.
    """

    dim: int
    kind: str
    main: Any
    main_ids: np.ndarray
    main_vecs: np.ndarray | None
    deleted: np.ndarray
    params: dict[str, Any]
    _faiss: Any
    _quantizer_is_hnsw: bool | None

    def _main_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The main part's vectors of ``ids`` (float32), in order; ``KeyError`` for one it
        does not hold."""
        main_ids = np.asarray(self.main_ids)
        rows, known = positions(ids, main_ids)
        if not known.all():
            raise KeyError(int(ids[np.flatnonzero(~known)[0]]))
        if self.main_vecs is not None:
            return self._main_rows(rows)
        out = np.zeros((len(ids), self.dim), np.float32)
        for n, row in enumerate(rows.tolist()):  # exact and HNSW keep float32 vectors
            out[n] = self.main.reconstruct(int(main_ids[row]))
        return out

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

    def _allowed_main(self, allowed: np.ndarray) -> np.ndarray:
        """The ids of ``allowed`` the main part holds and has not deleted, sorted."""
        mine = np.unique(allowed[member(allowed, self.main_ids)])
        if len(self.deleted):
            mine = mine[~member(mine, self.deleted)]
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
        sims = queries @ self._main_vectors(mine).T
        return top_k(sims, np.broadcast_to(mine, sims.shape), k)

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
        # list gets the same spare, not k times it: more candidates barely raise a deep
        # list's recall and cost as many more reads (docs/benchmarks.md, "Large libraries")
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


def member(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in ``sorted_ids`` (a sorted, perhaps memory-mapped array).

    A binary search per value touches a few pages of the id file, where
    ``np.isin`` would read and sort all of it (a million ids, every filtered query).
    """
    return positions(values, sorted_ids)[1]


def positions(values: np.ndarray, sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``values``' row in ``sorted_ids`` (by binary search), and whether it is there."""
    if not len(sorted_ids):
        return np.zeros(len(values), np.int64), np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return at, np.asarray(sorted_ids[at] == values)
