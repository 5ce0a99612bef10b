"""Fuse and rerank search results: pure functions over score mappings and vectors.

Conventions
-----------
* A *ranking* is a ``Mapping[K, float]`` from item id to score, higher is better (an id is
  any hashable, orderable value: an int, or a tuple such as a search key). Rank 1 is
  the highest score; equal scores are ordered by ascending id, so every function here is
  deterministic. Functions returning a ranking give a plain ``dict`` in best-first order
  (``list(result)`` gives the ids best first; ``ranked`` does the same for any mapping).
* Where vectors are needed the ranking is given as ``order`` (ids, best first) plus a parallel
  ``(len(order), d)`` array of embeddings. Cosine similarity is the dot product of L2-normalised
  rows; rows are normalised here, so callers may pass raw embeddings.
* Query vectors come back L2-normalised ``float32``, ready for a FAISS inner-product index.
  Nothing here touches an index, a database or the disk.

Contents
--------
ranked                    ids of a ranking, best first (ties by id)
rrf                       Reciprocal Rank Fusion (Cormack, Clarke & Büttcher 2009)
normalise_scores          min-max or z-score normalisation of one ranking
weighted_fusion           CombSUM over normalised scores (Fox & Shaw 1994)
early_fusion              one query vector from weighted parts (negative weights subtract)
exclude_similar           drop candidates too similar to a negative query part
collapse_near_duplicates  fold near-identical results into the better-ranked one
mmr                       Maximal Marginal Relevance diversification (Carbonell & Goldstein 1998)
rocchio                   Rocchio relevance feedback (Rocchio 1971)
adaptive_cutoff           how many leading results to keep (background floor + scaled-gap rule)
separation_cut            where a head of results stands apart from the tail (gap vs tail std)
calibrate_modalities      z-score each modality against its own reference scores (modality gap)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from mmsearch.errors import QueryError
from mmsearch.kinds import NORMALISERS


class _Id(Hashable, Protocol):
    """What an item id must be: hashable, and ordered (ties are broken by id)."""

    def __lt__(self, other: Any, /) -> bool: ...


K = TypeVar("K", bound=_Id)

_ZERO_NORM = 1e-9  # below this a combined unit-vector sum is treated as cancelled out


class ZeroQueryError(QueryError, ValueError):
    """The query's parts cancel out (a part and its negation): a user's query, not a bug."""


def ranked(scores: Mapping[K, float]) -> list[K]:
    """Ids of ``scores`` best first; equal scores in ascending id order."""
    return sorted(scores, key=lambda item: (-scores[item], item))


def _best_first(scores: Mapping[K, float]) -> dict[K, float]:
    return {item: float(scores[item]) for item in ranked(scores)}


def _weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise ValueError(f"got {len(weights)} weights for {n} inputs")
    if not all(math.isfinite(w) for w in weights):
        raise ValueError(f"weights must be finite, got {list(weights)}")
    return [float(w) for w in weights]


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float64); all-zero rows stay zero."""
    rows = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    out = np.zeros_like(rows)
    np.divide(rows, norms, out=out, where=norms > 0)
    return out


def _aligned_unit_rows(order: Sequence[int], vectors: np.ndarray) -> np.ndarray:
    rows = np.asarray(vectors)
    if rows.ndim != 2 or rows.shape[0] != len(order):
        raise ValueError(f"vectors must have shape ({len(order)}, d), got {rows.shape}")
    return _unit_rows(rows)


def _unit(vector: np.ndarray, what: str) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if not norm > _ZERO_NORM:
        raise ZeroQueryError(
            f"{what}: the result is an all-zero vector and has no direction"
            " (do a positive and a negative part cancel out?)"
        )
    return (vector / norm).astype(np.float32)


def rrf(
    rankings: Sequence[Mapping[K, float]],
    weights: Sequence[float] | None = None,
    k: float = 60.0,
) -> dict[K, float]:
    """Reciprocal Rank Fusion: ``score(d) = sum_i w_i / (k + rank_i(d))``.

    Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual
    Rank Learning Methods", SIGIR 2009. Ranks start at 1 (ties within a ranking broken by
    ascending id); an item missing from a ranking gets nothing from it. Only ranks are used,
    so rankings on incomparable score scales fuse safely. ``weights`` default to 1 each.

    ``k = 60`` is the constant fixed in the paper: it damps the top ranks, so that agreement
    between rankings outweighs a single first place (1/61 vs 1/62 barely differ, while an item
    in both lists gets roughly twice the score). ``k <= 0`` raises ``ValueError``, as in
    LanceDB's ``RRFReranker``: it removes the damping, and ``k <= -1`` divides by zero or
    reverses the order of the leading ranks.
    """
    if not k > 0:
        raise ValueError(f"k must be > 0, got {k}")
    fused: dict[K, float] = {}
    for ranking, weight in zip(rankings, _weights(weights, len(rankings)), strict=True):
        for rank, item in enumerate(ranked(ranking), start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return _best_first(fused)


def normalise_scores(scores: Mapping[K, float], method: str = "minmax") -> dict[K, float]:
    """Rescale one ranking's scores; keys keep their input order.

    ``"minmax"`` maps to [0, 1] (best 1, worst 0; all-equal scores give 1.0 each: they are all
    the best). ``"zscore"`` gives ``(s - mean) / std`` with the population std (all-equal
    scores give 0.0 each). Any other method raises ``ValueError``.
    """
    if method not in NORMALISERS:
        raise ValueError(f"unknown normalisation method {method!r}; expected one of {NORMALISERS}")
    if not scores:
        return {}
    ids = list(scores)
    values = np.array([scores[item] for item in ids], dtype=np.float64)
    lo, hi = values.min(), values.max()
    if method == "minmax":
        out = np.ones_like(values) if hi == lo else (values - lo) / (hi - lo)
    else:
        out = np.zeros_like(values) if hi == lo else (values - values.mean()) / values.std()
    return {item: float(v) for item, v in zip(ids, out, strict=True)}


def weighted_fusion(
    rankings: Sequence[Mapping[K, float]],
    weights: Sequence[float] | None = None,
    method: str = "minmax",
) -> dict[K, float]:
    """CombSUM: ``score(d) = sum_i w_i * normalised_i(d)``, best first.

    Fox & Shaw, "Combination of Multiple Searches", TREC-2 (1994). Each ranking is first
    normalised with :func:`normalise_scores` (``method``). An item missing from a ranking gets
    that ranking's *minimum* normalised value: a retriever that did not return an item rated it
    no better than its worst returned one. For min-max that is 0, the classic CombSUM; for
    z-scores it is the lowest z, not 0 (which would be the average, and would reward items for
    being absent). An empty ranking contributes nothing. ``weights`` default to 1 each.
    """
    if method not in NORMALISERS:
        raise ValueError(f"unknown normalisation method {method!r}; expected one of {NORMALISERS}")
    ws = _weights(weights, len(rankings))
    normed = [normalise_scores(ranking, method) for ranking in rankings]
    items = sorted(set().union(*normed))
    fused = dict.fromkeys(items, 0.0)
    for norm, weight in zip(normed, ws, strict=True):
        if not norm:
            continue
        floor = min(norm.values())
        for item in items:
            fused[item] += weight * norm.get(item, floor)
    return _best_first(fused)


def early_fusion(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """One query vector from ``n`` parts: ``normalise(sum_i w_i * v_i / |v_i|)``.

    ``vectors`` is ``(n, d)``, one embedded query part per row (e.g. the text "beach" and an
    example photo). Parts are L2-normalised first so each counts by its weight only; a negative
    weight subtracts that part's direction ("beach, but not this photo"). Returns a unit
    ``float32`` vector of shape ``(d,)``. Raises ``ValueError`` for a shape mismatch, a zero
    part vector, or weights that cancel the parts out to an all-zero vector.
    """
    parts = np.asarray(vectors, dtype=np.float64)
    if parts.ndim != 2 or parts.shape[0] == 0:
        raise ValueError(f"vectors must have shape (n, d) with n >= 1, got {parts.shape}")
    ws = np.array(_weights(weights, parts.shape[0]))
    zero = np.flatnonzero(np.linalg.norm(parts, axis=1) == 0)
    if zero.size:
        raise ZeroQueryError(f"query part {int(zero[0])} is a zero vector and has no direction")
    return _unit(ws @ _unit_rows(parts), "early_fusion: the weighted query parts cancel out")


def exclude_similar(
    candidates: Mapping[K, float],
    similarity_to_negative: Mapping[K, float],
    threshold: float,
) -> dict[K, float]:
    """Drop candidates whose similarity to a negative query part is ``>= threshold``.

    ``similarity_to_negative`` maps id to its (highest) cosine to the negative part(s); ids
    not in it are kept. Input order is kept.
    """
    return {
        item: score
        for item, score in candidates.items()
        if not similarity_to_negative.get(item, -math.inf) >= threshold
    }


COLLAPSE_MATRIX_MAX = 4096  # results up to this many: one pairwise product (64 MB at most)


def collapse_near_duplicates(
    order: Sequence[int], vectors: np.ndarray, threshold: float = 0.95
) -> list[tuple[int, list[int]]]:
    """Fold near-identical results (e.g. consecutive video frames, burst photos).

    Walk ``order`` best first; an item whose cosine to an already kept item is ``>= threshold``
    folds into the first (best-ranked) such item, otherwise it is kept. Returns
    ``[(kept_id, [folded ids, best first]), ...]`` in ranking order. ``vectors[i]`` belongs to
    ``order[i]``. 0.95 cosine is near-identity for CLIP-style embeddings: distinct photos of
    the same scene usually score lower, re-encodes and neighbouring frames higher.
    """
    unit = _aligned_unit_rows(order, vectors)
    # every pair's cosine at once (a few hundred results: one small product), else per item
    pairs = unit @ unit.T if len(order) <= COLLAPSE_MATRIX_MAX else None
    groups: list[tuple[int, list[int]]] = []
    kept_rows: list[int] = []
    for pos, item in enumerate(order):
        if kept_rows:
            sims = pairs[pos, kept_rows] if pairs is not None else unit[kept_rows] @ unit[pos]
            hits = np.flatnonzero(sims >= threshold)
            if hits.size:
                groups[int(hits[0])][1].append(item)
                continue
        kept_rows.append(pos)
        groups.append((item, []))
    return groups


def mmr(
    order: Sequence[int],
    relevance: Sequence[float],
    vectors: np.ndarray,
    k: int,
    lambda_: float = 0.7,
) -> list[int]:
    """Maximal Marginal Relevance: ``k`` ids picked for relevance and diversity.

    Carbonell & Goldstein, "The Use of MMR, Diversity-Based Reranking for Reordering Documents
    and Producing Summaries", SIGIR 1998. Greedily picks
    ``argmax_d lambda_ * rel(d) - (1 - lambda_) * max_{s in S} cos(d, s)`` over the unpicked
    items, S being those already picked (the first pick is the most relevant). ``lambda_ = 1``
    is the plain relevance order, 0 pure diversity. ``relevance`` should be on the cosine scale
    (e.g. the query similarity) for the trade-off to mean what ``lambda_`` says; 0.7 favours
    relevance while still pushing near-duplicates down. Ties go to the earlier item in
    ``order``. Raises ``ValueError`` for ``lambda_`` outside [0, 1], ``k < 0`` or misaligned
    inputs; ``k`` larger than the list returns all of it.
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1], got {lambda_}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    unit = _aligned_unit_rows(order, vectors)
    rel = np.asarray(relevance, dtype=np.float64)
    if rel.shape != (len(order),):
        raise ValueError(f"relevance must have {len(order)} values, got shape {rel.shape}")
    picked: list[int] = []
    max_sim = np.full(len(order), -np.inf)
    for step in range(min(k, len(order))):
        gain = rel.copy() if step == 0 else lambda_ * rel - (1.0 - lambda_) * max_sim
        gain[picked] = -np.inf
        pos = int(np.argmax(gain))
        picked.append(pos)
        max_sim = np.maximum(max_sim, unit @ unit[pos])
    return [order[pos] for pos in picked]


def rocchio(
    query: np.ndarray,
    positives: np.ndarray | None = None,
    negatives: np.ndarray | None = None,
    alpha: float = 1.0,
    beta: float = 0.75,
    gamma: float = 0.15,
) -> np.ndarray:
    """Rocchio relevance feedback: ``normalise(alpha q + beta mean(P) - gamma mean(N))``.

    Rocchio, "Relevance feedback in information retrieval", in The SMART Retrieval System
    (1971). Defaults alpha=1, beta=0.75, gamma=0.15 are the values Manning, Raghavan & Schütze,
    Introduction to Information Retrieval (2008), ch. 9.1.1, give as reasonable: positive
    feedback is worth more than negative. The query and each feedback row are L2-normalised
    first, so the weights compare directions, not magnitudes. (The book's clipping of negative
    term weights does not apply to dense embeddings.) ``positives``/``negatives`` are ``(m, d)``
    (a single ``(d,)`` row is accepted); ``None`` or empty skips that term. Returns a unit
    ``float32`` ``(d,)`` vector; raises ``ValueError`` for negative coefficients, mismatched
    dimensions, a zero query or an all-zero result.
    """
    if min(alpha, beta, gamma) < 0:
        raise ValueError(f"alpha, beta, gamma must be >= 0, got {alpha}, {beta}, {gamma}")
    q = np.asarray(query, dtype=np.float64)
    if q.ndim != 1 or not np.linalg.norm(q) > 0:
        raise ValueError(f"query must be a non-zero 1-d vector, got shape {q.shape}")
    out = alpha * q / np.linalg.norm(q)
    for rows, coef in ((positives, beta), (negatives, -gamma)):
        if rows is None:
            continue
        fb = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if fb.size == 0:
            continue
        if fb.ndim != 2 or fb.shape[1] != q.shape[0]:
            raise ValueError(f"feedback vectors must have shape (m, {q.shape[0]}), got {fb.shape}")
        out = out + coef * _unit_rows(fb).mean(axis=0)
    return _unit(out, "rocchio: feedback cancels the query out")


def _gap_cut(top: np.ndarray, ratio: float, min_gap: float) -> int | None:
    """Rank after which the largest rank-scaled drop in ``top`` stands out, or None."""
    drops = top[:-1] - top[1:]
    if drops.size == 0:
        return None
    scaled = drops * np.arange(1, drops.size + 1)
    j = int(np.argmax(scaled))
    if scaled[j] > ratio * float(np.median(scaled)) and drops[j] > min_gap:
        return j + 1
    return None


def adaptive_cutoff(
    scores: Sequence[float],
    *,
    min_keep: int = 1,
    background: Sequence[float] | None = None,
    background_percentile: float = 99.0,
    min_score: float | None = None,
    gap_ratio: float = 10.0,
    gap_window: int = 50,
    min_gap: float = 1e-6,
) -> int:
    """How many leading results of ``scores`` (sorted best first) are worth keeping.

    Two cuts; the smaller count wins, then at least ``min_keep`` (if there are that many):

    1. Floor. Keep the results scoring above ``max(percentile(background,
       background_percentile), min_score)``. ``background`` is the query's scores against a
       random sample of the index: almost all of those items are irrelevant, so it is the
       score distribution of noise, and by default a result must beat 99% of it. (Use a
       sample of ~1000 or more for a stable 99th percentile.) Without background or
       ``min_score`` there is no floor.
    2. Scaled gap. Over the first ``gap_window`` scores, drop ``k`` (between ranks k and
       k+1) is weighted by ``k``; if the largest weighted drop exceeds ``gap_ratio`` times
       the median weighted drop (and its raw drop exceeds ``min_gap``), cut there.

    Why the drops are weighted by rank, and why ratio 10: ``docs/design.md`` (Cutoff).
    ``min_gap`` keeps float noise from counting as a gap when most drops are ties. Pass
    ``gap_ratio=math.inf`` to disable the gap cut. Raises ``ValueError`` if ``scores`` is
    not sorted best first or a parameter is out of range.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or np.any(np.diff(s) > 0):
        raise ValueError("scores must be a 1-d sequence sorted best first")
    if min_keep < 0 or gap_window < 2 or not gap_ratio > 0:
        raise ValueError("need min_keep >= 0, gap_window >= 2 and gap_ratio > 0")
    if not 0.0 <= background_percentile <= 100.0:
        raise ValueError(f"background_percentile must be in [0, 100], got {background_percentile}")
    floor = -math.inf
    if background is not None and len(background) > 0:
        floor = float(
            np.percentile(np.asarray(background, dtype=np.float64), background_percentile)
        )
    if min_score is not None:
        floor = max(floor, min_score)
    keep = int(np.count_nonzero(s > floor))
    gap = _gap_cut(s[:gap_window], gap_ratio, min_gap)
    if gap is not None:
        keep = min(keep, gap)
    return min(s.size, max(keep, min_keep))


def separation_cut(
    scores: Sequence[float], *, sigmas: float = 3.0, min_tail: int = 5, window: int = 200
) -> int | None:
    """Where a head of results stands clearly apart from the tail, or ``None``.

    For each drop ``scores[i] - scores[i+1]`` (sorted best first) with at least
    ``min_tail`` scores after it, among the first ``window``, compare it with
    the spread of all the scores below it; cut after the drop with the largest
    ratio when that ratio exceeds ``sigmas``. Unlike the rank-scaled gap rule of
    :func:`adaptive_cutoff`, it needs no assumption about the tail's shape, and
    holds for small indexes whose scores are spread evenly: without a gap, the
    top drop of n Gaussian scores is a fraction of one standard deviation of the
    rest (about 0.3 for n = 10,000), far below 3.

    The spread is the median absolute deviation scaled to a standard deviation
    (:func:`robust_spread`), not the standard deviation itself: a few candidates
    far below the rest (a blank image, a text in another language) would
    inflate the standard deviation and hide a head that stands apart.
    """
    s = np.asarray(scores, dtype=np.float64)
    n = min(window, len(s) - min_tail)
    if n <= 0:
        return None
    spread = np.array([robust_spread(s[i + 1 :]) for i in range(n)])
    drop = s[:n] - s[1 : n + 1]
    usable = (spread > 1e-12) & (drop > 0)  # a flat tail or a tie is no separation
    ratio = np.where(usable, drop / np.where(usable, spread, 1.0), 0.0)
    best = int(np.argmax(ratio))  # the first of equal ratios
    return best + 1 if ratio[best] > sigmas else None


MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): the MAD of a Gaussian times this is its sigma


def robust_spread(values: Sequence[float] | np.ndarray) -> float:
    """The median absolute deviation of ``values``, scaled to a standard deviation.

    For Gaussian scores it estimates the same sigma as the standard deviation,
    but up to half the values can lie anywhere without moving it (breakdown
    point 50%; Rousseeuw & Croux, "Alternatives to the Median Absolute
    Deviation", JASA 1993). 0.0 for fewer than two values.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


def calibrate_modalities(
    scores_by_modality: Mapping[str, Mapping[K, float]],
    reference: Mapping[str, Sequence[float]],
) -> dict[K, float]:
    """Put each modality's raw scores on one scale, fixing the CLIP "modality gap".

    In CLIP-style spaces a text query scores text segments on a different (higher) scale than
    images, so raw scores would rank every text above every image. Each raw score ``s`` of
    modality ``m`` becomes ``(s - mean_m) / std_m``, with mean and sample std of
    ``reference[m]``: the same query's scores against a random sample of that modality's
    segments. The result says how many noise standard deviations above that modality's typical
    score the result is, which is comparable across modalities and strictly increasing within
    one. Chosen over the empirical percentile (CDF) of the reference, which is equally
    comparable but saturates at 1.0 for everything above the sample's maximum: exactly where
    the top results live, so it would tie them all.

    Returns one best-first ranking over all modalities (ids must be unique across them).
    Raises ``ValueError`` for a modality without at least 2 reference scores, a reference with
    zero spread, or an id under two modalities.
    """
    fused: dict[K, float] = {}
    for modality, scores in scores_by_modality.items():
        if not scores:
            continue
        ref = np.asarray(reference.get(modality, ()), dtype=np.float64)
        if ref.size < 2:
            raise ValueError(f"modality {modality!r} needs at least 2 reference scores")
        std = float(ref.std(ddof=1))
        if not std > 0:
            raise ValueError(f"reference scores of modality {modality!r} have zero spread")
        mean = float(ref.mean())
        for item, score in scores.items():
            if item in fused:
                raise ValueError(f"id {item} appears under more than one modality")
            fused[item] = (score - mean) / std
    return _best_first(fused)
