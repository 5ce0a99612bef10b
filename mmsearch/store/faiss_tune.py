"""Tuning the FAISS main part's search setting to a recall target.

When the main part is built or folded, stored vectors held out of it serve as
queries; their true neighbours come from exact search over the main part
(:func:`exact_neighbours`), and :func:`tune` keeps the smallest ``nprobe``
(IVF) or ``efSearch`` (HNSW), with the smallest re-rank factor, whose R@10
reaches :data:`TARGET_RECALL`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TARGET_RECALL = 0.95
RERANK = 10  # IVF candidates per wanted result, re-ranked exactly from the float16 vectors
RERANKS = (10, 30, 100)  # tried in turn when tuning, until the recall target is reached
TUNE_QUERIES = 200
TUNED_K = 10  # recall is tuned at R@10
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
EF_SEARCHES = (16, 32, 64, 128, 256, 512)
EXACT_BLOCK = 131_072  # stored vectors scored at once when finding the true neighbours

Searcher = Callable[[dict[str, int]], np.ndarray]
"""Search the main part with these settings (``nprobe`` or ``ef_search``, and ``rerank``);
return each query's first :data:`TUNED_K` ids."""


def tune(kind: str, nlist: int, truth: np.ndarray, search: Searcher) -> dict[str, float]:
    """The smallest setting of ``kind`` (``ivf``, ``hnsw``) reaching :data:`TARGET_RECALL`.

    ``truth`` holds each query's true 10 nearest ids; ``search`` finds them with a
    setting. Returns the setting (``nprobe`` or ``ef_search``), ``rerank`` and the
    ``recall_at_10`` it reached.
    """
    name = "nprobe" if kind == "ivf" else "ef_search"
    if kind == "ivf":
        nprobes = [p for p in NPROBES if p < nlist] + [nlist]
        plans = [(r, nprobes) for r in RERANKS]
    else:
        plans = [(RERANK, list(EF_SEARCHES))]

    def recall_at(rerank: int, value: int) -> float:
        return recall_at_10(search({name: value, "rerank": rerank}), truth)

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
    return {name: values[lo], "rerank": rerank, "recall_at_10": round(recall, 4)}


def exact_neighbours(
    queries: np.ndarray,
    k: int,
    ids: np.ndarray,
    deleted: np.ndarray,
    block: Callable[[slice], np.ndarray],
) -> np.ndarray:
    """The ids of each query's ``k`` nearest live vectors, exactly.

    ``ids`` are the stored ids (sorted, perhaps memory-mapped), ``deleted`` those
    not to return, and ``block(rows)`` the stored vectors at ``rows``.
    """
    best_s = np.zeros((len(queries), 0), np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(ids), EXACT_BLOCK):
        rows = slice(start, start + EXACT_BLOCK)
        block_ids = np.asarray(ids[rows])
        sims = queries @ np.asarray(block(rows), dtype=np.float32).T
        if len(deleted):
            sims[:, np.isin(block_ids, deleted)] = -np.inf
        take = min(k, sims.shape[1])
        part = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        best_s = np.concatenate([best_s, np.take_along_axis(sims, part, 1)], axis=1)
        best_i = np.concatenate([best_i, block_ids[part]], axis=1)
    return top_k(best_s, best_i, k)[1]


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
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


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    """The share of each query's 10 true neighbours found among its first 10 results."""
    hits = sum(
        len({int(i) for i in f[:10] if i >= 0} & {int(i) for i in t[:10]})
        for f, t in zip(found, truth, strict=True)
    )
    return hits / max(1, sum(int((t[:10] >= 0).sum()) for t in truth))
