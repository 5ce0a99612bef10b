"""Ranking a query: parts → candidates → calibration → fusion → negatives → cutoff → page.

1. **Parts.** ``vector`` fusion sums the parts' vectors (negatives subtract)
   into one query; ``rrf`` and ``weighted`` search each positive part on its
   own. Relevance feedback (``more_like``/``less_like``) moves each query
   vector by Rocchio's rule.
2. **Candidates** per query vector: files (best segment) and video frames,
   searched only among the ids the filters allow (see :mod:`mmsearch.filters`).
3. **Views and the modality gap.** A file's visual segments (pixels, frames)
   and textual ones (passages, OCR lines) are retrieved apart; when a ranking
   holds both, each group's cosines become z-scores against the same query's
   scores on a sample of that group, and a file takes its best view.
4. **Fusion** of the rankings: RRF (k = 60) or CombSUM over normalised scores.
5. **Negatives** (late modes): a candidate whose similarity to a negative part
   is at or above the threshold is dropped; the default threshold is the 90th
   percentile of that negative part's similarities to a sample of the index.
6. **Cutoff.** With ``cutoff`` on, a candidate must survive the adaptive
   cutoff (:func:`mmsearch.fusion.adaptive_cutoff`: a floor at the 95th
   percentile of background scores once the index holds 200+ segments, and the
   rank-scaled gap rule) and :func:`mmsearch.fusion.separation_cut` (a drop
   larger than 3 standard deviations of the scores below it) in at least one
   part's ranking; ``min_score`` drops
   candidates whose best cosine to a positive part is lower.
7. **Moments**: adjacent matching frames of a video merge into one result.
8. **Duplicates**: a result whose vector is ``collapse``-similar (cosine) to a
   better one folds into it, the threshold raised to what is rare between
   different files of this index (:meth:`Searcher.duplicate_floor`);
   ``diverse`` reorders by MMR (lambda 0.7).
9. **Order and page**: by score (ties by path and time) or by time, newest
   first; then ``offset``/``limit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmsearch.fusion import (
    adaptive_cutoff,
    calibrate_modalities,
    collapse_near_duplicates,
    early_fusion,
    mmr,
    ranked,
    rocchio,
    rrf,
    separation_cut,
    weighted_fusion,
)
from mmsearch.query import Part, Query
from mmsearch.results import Hit, SearchResult
from mmsearch.searcher import Candidate, Searcher, group_moments, moment_margin

NEGATIVE_PERCENTILE = 90.0
CUTOFF_PERCENTILE = 95.0
MIN_BACKGROUND = 200  # segments in the sample before the background floor is trusted
MIN_REFERENCE = 30  # segments per view group in the sample before calibrating (z-scores)
MMR_LAMBDA = 0.7


@dataclass
class EncodedPart:
    part: Part
    vector: np.ndarray


@dataclass
class _List:
    """One ranking: its query vector, weight, raw cosines and ranking scores."""

    label: str
    vector: np.ndarray
    weight: float
    raw: dict[int, float]
    scores: dict[int, float]
    keep: set[int]
    ocr: dict[int, Candidate]  # best OCR line per key, for the results


def rank(
    searcher: Searcher,
    query: Query,
    parts: list[EncodedPart],
    allowed: np.ndarray | None,
    feedback: tuple[np.ndarray, np.ndarray],
) -> SearchResult:
    """Run ``query`` (already validated and encoded) against ``searcher``."""
    background = searcher.background()
    want = max(3 * (query.offset + query.limit), 50)
    pool: dict[int, Candidate] = {}
    lists = [
        _ranking(searcher, label, vec, weight, want, allowed, background, query, pool)
        for label, vec, weight in _query_vectors(query, parts, feedback)
    ]
    fused = _fuse(query, lists)
    vectors = searcher.vectors_of([c.id for c in pool.values()])
    negatives = [p for p in parts if p.part.negative]
    if query.fusion != "vector":
        fused = _drop_negatives(fused, pool, vectors, negatives, query, background)
    if query.cutoff:
        kept = set().union(*(lst.keep for lst in lists))
        fused = {k: v for k, v in fused.items() if k in kept}
    positives = [p for p in parts if not p.part.negative]
    sims = {k: _similarities(vectors.get(pool[k].id), positives) for k in fused}
    if query.min_score is not None:
        fused = {k: v for k, v in fused.items() if max(sims[k], default=-1.0) >= query.min_score}
    hits = _hits(fused, pool, sims, lists, query, negatives, vectors)
    hits = _collapse_and_diversify(hits, vectors, query, searcher.duplicate_floor())
    if query.sort == "time":
        hits.sort(key=lambda h: h.time or "", reverse=True)
    total = len(hits)
    page = hits[query.offset : query.offset + query.limit]
    return SearchResult(page, total, query.fusion)


def _query_vectors(
    query: Query, parts: list[EncodedPart], feedback: tuple[np.ndarray, np.ndarray]
) -> list[tuple[str, np.ndarray, float]]:
    more, less = feedback

    def adjust(vec: np.ndarray) -> np.ndarray:
        if len(more) or len(less):
            return rocchio(vec, more if len(more) else None, less if len(less) else None)
        return vec

    positives = [p for p in parts if not p.part.negative]
    if not positives:  # feedback only: the mean of the liked files
        return [("more-like", adjust(np.mean(more, axis=0)), 1.0)]
    if query.fusion == "vector":
        stacked = np.stack([p.vector for p in parts])
        weights = [-p.part.weight if p.part.negative else p.part.weight for p in parts]
        return [("query", adjust(early_fusion(stacked, weights)), 1.0)]
    return [(p.part.describe(), adjust(p.vector), p.part.weight) for p in positives]


def _ranking(
    searcher: Searcher,
    label: str,
    vector: np.ndarray,
    weight: float,
    want: int,
    allowed: np.ndarray | None,
    background: dict[str, np.ndarray],
    query: Query,
    pool: dict[int, Candidate],
) -> _List:
    found = searcher.candidates(vector, want, allowed)
    scores, best, bg = _fuse_views(found, vector, background)
    for key, cand in best.items():
        if key not in pool or cand.similarity > pool[key].similarity:
            pool[key] = cand
    raw = {k: c.similarity for k, c in best.items()}
    keep: set[int] = set()
    if query.cutoff and scores:
        order = ranked(scores)
        values = [scores[k] for k in order]
        floor = list(bg) if bg is not None and len(bg) >= MIN_BACKGROUND else None
        n = adaptive_cutoff(values, background=floor, background_percentile=CUTOFF_PERCENTILE)
        head = separation_cut(values)
        keep = set(order[: min(n, head) if head is not None else n])
    ocr = {k: per["textual"] for k, per in found.items() if _is_ocr(per.get("textual"))}
    return _List(label, vector, weight, raw, scores, keep, ocr)


def _is_ocr(cand: Candidate | None) -> bool:
    return cand is not None and cand.view == "ocr"


def _fuse_views(
    found: dict[int, dict[str, Candidate]],
    vector: np.ndarray,
    background: dict[str, np.ndarray],
) -> tuple[dict[int, float], dict[int, Candidate], np.ndarray | None]:
    """One score per key from its views, and the background on that scale.

    When the candidates span both view groups (visual: pixels, frames;
    textual: passages, OCR lines), each group's cosines become z-scores against
    the same query's scores on a sample of that group
    (:func:`mmsearch.fusion.calibrate_modalities`), and a file scores by its
    best view (CombMAX): the words in a picture or the picture itself.
    Otherwise raw cosines are kept.
    """
    groups = sorted({g for per in found.values() for g in per})
    reference = {g: background[g] @ vector for g in background}
    everything = np.concatenate(list(reference.values())) if reference else None
    usable = len(groups) >= 2 and all(
        g in reference and len(reference[g]) >= MIN_REFERENCE and reference[g].std() > 0
        for g in groups
    )
    if not usable:
        best = {k: max(per.values(), key=lambda c: c.similarity) for k, per in found.items()}
        return {k: c.similarity for k, c in best.items()}, best, everything
    scores: dict[int, float] = {}
    best = {}
    for group in groups:
        raw = {k: per[group].similarity for k, per in found.items() if group in per}
        for key, z in calibrate_modalities({group: raw}, {group: reference[group]}).items():
            if key not in scores or z > scores[key]:
                scores[key], best[key] = z, found[key][group]
    bg = [(ref - ref.mean()) / ref.std(ddof=1) for ref in reference.values() if ref.std() > 0]
    return scores, best, np.concatenate(bg) if bg else None


def _fuse(query: Query, lists: list[_List]) -> dict[int, float]:
    if len(lists) == 1 or query.fusion == "vector":
        return dict(lists[0].scores)
    rankings = [lst.scores for lst in lists]
    weights = [lst.weight for lst in lists]
    if query.fusion == "rrf":
        return rrf(rankings, weights)
    return weighted_fusion(rankings, weights, method=query.normaliser)


def _drop_negatives(
    fused: dict[int, float],
    pool: dict[int, Candidate],
    vectors: dict[int, np.ndarray],
    negatives: list[EncodedPart],
    query: Query,
    background: dict[str, np.ndarray],
) -> dict[int, float]:
    for neg in negatives:
        threshold = query.negative_threshold
        if threshold is None:
            sample = [v @ neg.vector for v in background.values()]
            if not sample:
                continue
            threshold = float(np.percentile(np.concatenate(sample), NEGATIVE_PERCENTILE))
        fused = {
            k: v for k, v in fused.items() if float(vectors[pool[k].id] @ neg.vector) < threshold
        }
    return fused


def _similarities(vector: np.ndarray | None, parts: list[EncodedPart]) -> list[float]:
    if vector is None:
        return []
    return [float(vector @ p.vector) for p in parts]


def _hits(
    fused: dict[int, float],
    pool: dict[int, Candidate],
    sims: dict[int, list[float]],
    lists: list[_List],
    query: Query,
    negatives: list[EncodedPart],
    vectors: dict[int, np.ndarray],
) -> list[Hit]:
    """Results best first: files as they are, video frames merged into moments."""
    frames = [(score, pool[k]) for k, score in fused.items() if k < 0]
    hits = [_hit(pool[k], score, sims[k]) for k, score in fused.items() if k >= 0]
    for moment in group_moments(frames, moment_margin(s for s, _ in frames)):
        score, best = moment.best
        hit = _hit(best, score, sims[best.key])
        hit.start, hit.end = moment.start, moment.end
        hits.append(hit)
    ranks = [{k: i for i, k in enumerate(ranked(lst.scores), start=1)} for lst in lists]
    ocr = {k: c for lst in lists for k, c in lst.ocr.items()}
    for hit in hits:
        key = -hit.segment_id if hit.modality == "video" else hit.asset_id
        if key in ocr:
            hit.ocr_line = ocr[key].text
        vec = vectors.get(hit.segment_id)
        hit.explain = {
            "fusion": query.fusion,
            "segment_id": hit.segment_id,
            "view": hit.view,
            "parts": [
                {
                    "part": lst.label,
                    "similarity": round(float(vec @ lst.vector), 6) if vec is not None else None,
                    "rank": rank_of.get(key),
                }
                for lst, rank_of in zip(lists, ranks, strict=True)
            ],
        }
        if negatives and vec is not None:
            hit.explain["negatives"] = [
                {"part": n.part.describe(), "similarity": round(float(vec @ n.vector), 6)}
                for n in negatives
            ]
    hits.sort(key=lambda h: (-h.score, h.path, h.start or 0.0))
    return hits


def _hit(cand: Candidate, score: float, sims: list[float]) -> Hit:
    return Hit(
        path=cand.path,
        score=float(score),
        modality=cand.modality,
        asset_id=cand.asset_id,
        segment_id=cand.id,
        view=cand.view,
        similarity=max(sims, default=cand.similarity),
        snippet=cand.text,
        span=cand.span,
        start=cand.t_start,
        end=cand.t_end,
        best_time=cand.t_best,
        width=cand.width,
        height=cand.height,
        time=cand.time,
    )


def _collapse_and_diversify(
    hits: list[Hit], vectors: dict[int, np.ndarray], query: Query, floor: float
) -> list[Hit]:
    if len(hits) < 2:
        return hits
    dim = next(iter(vectors.values())).shape[0] if vectors else 1
    matrix = np.stack([vectors.get(h.segment_id, np.zeros(dim, np.float32)) for h in hits])
    order = list(range(len(hits)))
    if query.collapse is not None:
        threshold = min(1.0, max(query.collapse, floor))
        groups = collapse_near_duplicates(order, matrix, threshold=threshold)
        for kept, folded in groups:
            hits[kept].duplicates = [hits[i].path for i in folded]
        order = [kept for kept, _ in groups]
    if query.diverse and len(order) > 1:
        scores = np.asarray([hits[i].score for i in order], dtype=np.float64)
        spread = float(scores.max() - scores.min()) or 1.0
        relevance = list((scores - scores.min()) / spread)
        order = mmr(order, relevance, matrix[order], k=len(order), lambda_=MMR_LAMBDA)
    return [hits[i] for i in order]
