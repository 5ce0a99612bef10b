"""Ranking a query, in this order (each step's numbers are the constants below):

1. parts → query vectors (``vector`` fusion sums them, the late modes keep
   them apart), moved by relevance feedback (Rocchio);
2. candidates per query vector, among the ids the filters allow; and one
   ranking per colour part (given, or a colour word of a text), by palette
   coverage among the allowed pictures (:mod:`mmsearch.search.color`);
3. views fused late: a file's visual and textual segments, put on one scale
   (calibrated) when a ranking holds both, and the file takes its best view;
4. fusion of the per-part rankings (RRF or weighted; under ``vector`` fusion
   the summed vector's ranking and any colour rankings by weighted z-scores);
5. negatives (late modes): candidates too similar to a negative part dropped;
6. the adaptive relevance cutoff, and ``min_score``;
7. video frames merged into moments;
8. near-duplicates collapsed, optionally MMR diversity;
9. order (score or time) and the page.

Why each rule is what it is: ``docs/design.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmsearch.search.color import ColorPart, color_notes, color_parts
from mmsearch.search.fusion import (
    adaptive_cutoff,
    calibrate_modalities,
    collapse_near_duplicates,
    early_fusion,
    exclude_similar,
    mmr,
    ranked,
    rocchio,
    rrf,
    separation_cut,
    weighted_fusion,
)
from mmsearch.search.moments import group_moments, moment_margin
from mmsearch.search.query import Part, Query
from mmsearch.search.results import Hit, Key, SearchResult
from mmsearch.search.retrieve import Candidate, Searcher

NEGATIVE_PERCENTILE = 90.0  # default --not-threshold: this percentile of the index's similarities
CUTOFF_PERCENTILE = 95.0  # a result must beat this percentile of the background scores
MIN_BACKGROUND = 200  # segments in the sample before the background floor is trusted
MIN_REFERENCE = 30  # segments per view group in the sample before calibrating (z-scores)
MMR_LAMBDA = 0.7  # --diverse: relevance against novelty
OVERFETCH_RESULTS = 3  # candidates fetched per result of the page (at least MIN_CANDIDATES)
MIN_CANDIDATES = 50
VECTOR_COLOR_FUSION = "weighted"  # vector fusion meets colour rankings by z-score CombSUM


@dataclass
class EncodedPart:
    part: Part
    vector: np.ndarray


@dataclass
class _List:
    """One ranking: its query vector, weight, raw cosines and ranking scores."""

    label: str
    vector: np.ndarray | None  # None for a colour ranking
    weight: float
    raw: dict[Key, float]
    scores: dict[Key, float]
    keep: set[Key]
    ocr: dict[Key, Candidate]  # best OCR line per key, for the results


def rank(
    searcher: Searcher,
    query: Query,
    parts: list[EncodedPart],
    allowed: np.ndarray | None,
    feedback: tuple[np.ndarray, np.ndarray],
) -> SearchResult:
    """Run ``query`` (already validated and encoded) against ``searcher``."""
    run = _Run.start(searcher, query, parts, allowed, feedback)
    run.retrieve()
    fused = run.drop_negatives(run.fuse())
    fused = run.apply_cutoff(fused)
    return run.page(run.collapse_and_diversify(run.hits(fused)))


@dataclass
class _Run:
    """One query's ranking: what every step reads, and what the steps build up.

    The steps are the methods, called in the order of the module docstring;
    ``pool`` (the best candidate per key, over every ranking), ``lists`` (one
    ranking per query vector or colour part), ``vectors`` (the stored vector
    of each pooled segment) and ``similarities`` (each kept key's cosine to
    each positive part) fill in as they run.
    """

    searcher: Searcher
    query: Query
    parts: list[EncodedPart]  # the parts with a vector: every kind but colours
    colors: list[ColorPart]
    allowed: np.ndarray | None
    feedback: tuple[np.ndarray, np.ndarray]
    background: dict[str, np.ndarray]
    want: int  # candidates fetched per ranking
    pool: dict[Key, Candidate] = field(default_factory=dict)
    lists: list[_List] = field(default_factory=list)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    similarities: dict[Key, list[float]] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        searcher: Searcher,
        query: Query,
        parts: list[EncodedPart],
        allowed: np.ndarray | None,
        feedback: tuple[np.ndarray, np.ndarray],
    ) -> _Run:
        return cls(
            searcher=searcher,
            query=query,
            parts=[p for p in parts if p.part.kind != "color"],  # colours have no vector
            colors=color_parts(query),
            allowed=allowed,
            feedback=feedback,
            background=searcher.background(),
            want=max(OVERFETCH_RESULTS * (query.offset + query.limit), MIN_CANDIDATES),
        )

    @property
    def positives(self) -> list[EncodedPart]:
        return [p for p in self.parts if not p.part.negative]

    @property
    def negatives(self) -> list[EncodedPart]:
        return [p for p in self.parts if p.part.negative]

    def retrieve(self) -> None:
        """Steps 1 to 3: one ranking per query vector and per colour part."""
        vectors = _query_vectors(self.query, self.parts, self.feedback)
        self.lists = [self._ranking(label, vec, weight) for label, vec, weight in vectors]
        self.lists += [self._color_ranking(c) for c in self.colors]
        if _fusion_of(self.query, len(self.lists)) == "weighted":
            self._complete_color_rankings(self.lists[len(self.lists) - len(self.colors) :])
        self.vectors = self.searcher.vectors_of([c.segment_id for c in self.pool.values()])

    def _ranking(self, label: str, vector: np.ndarray, weight: float) -> _List:
        """One query vector's ranking (its views fused), and what its cutoff keeps."""
        found = self.searcher.candidates(vector, self.want, self.allowed)
        scores, best, bg = _fuse_views(found, vector, self.background)
        for key, cand in best.items():
            if key not in self.pool or cand.similarity > self.pool[key].similarity:
                self.pool[key] = cand
        raw = {k: c.similarity for k, c in best.items()}
        keep = _cutoff(scores, bg) if self.query.cutoff and scores else set()
        ocr = {k: per["textual"] for k, per in found.items() if _is_ocr(per.get("textual"))}
        return _List(label, vector, weight, raw, scores, keep, ocr)

    def _color_ranking(self, part: ColorPart) -> _List:
        """One colour part's ranking: matching pictures by coverage, best first.

        A given colour part keeps all its matches past the relevance cutoff (it
        is a query of its own: ``--color red`` lists the red pictures); a colour
        word only reorders what the other parts found (``"a red car"`` lists cars,
        red ones first, never a red apple).
        """
        colors = self.searcher.colors
        found = colors.ranking(part.color, self.want, self.allowed, also=set(self.pool))
        new = {k: v for k, v in found.items() if k not in self.pool}
        self.pool.update(self.searcher.candidates_for(new))
        scores = {k: cov for k, (_, cov) in found.items() if k in self.pool}
        keep = set() if part.from_words else set(scores)
        return _List(part.label, None, part.weight, dict(scores), scores, keep, {})

    def _complete_color_rankings(self, lists: list[_List]) -> None:
        """Weighted fusion: give each colour ranking every candidate, with its true coverage.

        Weighted fusion puts each ranking on one scale (min-max or z-scores) over
        the items it holds. A colour ranking of only its matches would be scaled
        against itself (one match alone normalises to nothing); over all candidates
        its matches stand out from the pictures without the colour (coverage 0).
        Ranks, and so RRF, are left as they are: only matches count there.
        """
        for part, lst in zip(self.colors, lists, strict=True):
            full = self.searcher.colors.coverage_of(part.color, set(self.pool))
            lst.scores = {**full, **lst.scores}
            lst.raw = dict(lst.scores)

    def fuse(self) -> dict[Key, float]:
        """Step 4: the rankings fused; ``vector`` fusion has one, unless colour parts add theirs."""
        if not self.lists:
            return {}
        if len(self.lists) == 1:  # under vector fusion, more than one means colour rankings
            return dict(self.lists[0].scores)
        rankings = [lst.scores for lst in self.lists]
        weights = [lst.weight for lst in self.lists]
        if _fusion_of(self.query, len(self.lists)) == "rrf":
            return rrf(rankings, weights)
        return weighted_fusion(rankings, weights, method=self.query.normaliser)

    def drop_negatives(self, fused: dict[Key, float]) -> dict[Key, float]:
        """Step 5 (late modes; ``vector`` fusion subtracted them from the query vector)."""
        if self.query.fusion == "vector":
            return fused
        for neg in self.negatives:
            threshold = self.query.negative_threshold
            if threshold is None:
                sample = [v @ neg.vector for v in self.background.values()]
                if not sample:
                    continue
                threshold = float(np.percentile(np.concatenate(sample), NEGATIVE_PERCENTILE))
            to_negative = {
                k: float(self.vectors[self.pool[k].segment_id] @ neg.vector) for k in fused
            }
            fused = exclude_similar(fused, to_negative, threshold)
        return fused

    def apply_cutoff(self, fused: dict[Key, float]) -> dict[Key, float]:
        """Step 6: what some ranking's cutoff keeps, then ``min_score`` on the best cosine."""
        if self.query.cutoff:
            kept = set().union(*(lst.keep for lst in self.lists))
            fused = {k: v for k, v in fused.items() if k in kept}
        positives = self.positives
        self.similarities = {
            k: _similarities(self.vectors.get(self.pool[k].segment_id), positives) for k in fused
        }
        floor = self.query.min_score
        if floor is not None:
            sims = self.similarities
            fused = {k: v for k, v in fused.items() if max(sims[k], default=-1.0) >= floor}
        return fused

    def hits(self, fused: dict[Key, float]) -> list[Hit]:
        """Step 7: results best first, files as they are, video frames merged into moments."""
        pool, sims = self.pool, self.similarities
        frames = [(score, pool[k]) for k, score in fused.items() if k.is_frame]
        hits = [_hit(pool[k], score, sims[k]) for k, score in fused.items() if not k.is_frame]
        for moment in group_moments(frames, moment_margin(s for s, _ in frames)):
            score, best = moment.best
            hit = _hit(best, score, sims[best.key])
            hit.start, hit.end = moment.start, moment.end
            hits.append(hit)
        ranks = [{k: i for i, k in enumerate(ranked(lst.scores), start=1)} for lst in self.lists]
        ocr = {k: c for lst in self.lists for k, c in lst.ocr.items()}
        for hit in hits:
            if hit.key in ocr:
                hit.ocr_line = ocr[hit.key].snippet
            hit.explain = self._explain(hit, ranks)
        hits.sort(key=lambda h: (-h.score, h.path, h.start or 0.0))
        return hits

    def _explain(self, hit: Hit, ranks: list[dict[Key, int]]) -> dict[str, Any]:
        """Why ``hit`` ranks where it does: each ranking's view of it, palette, negatives."""
        vec = self.vectors.get(hit.segment_id)
        explain: dict[str, Any] = {
            "fusion": self.query.fusion,
            "segment_id": hit.segment_id,
            "view": hit.view,
            "parts": [
                _explain_part(lst, rank_of, hit.key, vec)
                for lst, rank_of in zip(self.lists, ranks, strict=True)
            ],
        }
        if any(lst.vector is None for lst in self.lists):
            explain["palette"] = self.searcher.colors.describe(hit.key)
        negatives = self.negatives
        if negatives and vec is not None:
            explain["negatives"] = [
                {"part": n.part.describe(), "similarity": round(float(vec @ n.vector), 6)}
                for n in negatives
            ]
        return explain

    def collapse_and_diversify(self, hits: list[Hit]) -> list[Hit]:
        """Step 8: near-duplicates folded into their best hit, then optionally MMR."""
        if len(hits) < 2:
            return hits
        query, vectors = self.query, self.vectors
        dim = next(iter(vectors.values())).shape[0] if vectors else 1
        matrix = np.stack([vectors.get(h.segment_id, np.zeros(dim, np.float32)) for h in hits])
        order = list(range(len(hits)))
        if query.collapse is not None:
            floor = self.searcher.duplicate_floor(self.background)
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

    def page(self, hits: list[Hit]) -> SearchResult:
        """Step 9: order (score, or time) and the page asked for."""
        query = self.query
        if query.sort == "time":
            hits.sort(key=lambda h: h.time or "", reverse=True)
        page = hits[query.offset : query.offset + query.limit]
        notes = color_notes(self.searcher.colors, self.colors)
        return SearchResult(page, len(hits), query.fusion, notes=notes)


def _cutoff(scores: dict[Key, float], background: np.ndarray | None) -> set[Key]:
    """The keys one ranking keeps: the adaptive cutoff, cut shorter where a head stands apart."""
    order = ranked(scores)
    values = [scores[k] for k in order]
    floor = None
    if background is not None and len(background) >= MIN_BACKGROUND:
        floor = list(background)
    n = adaptive_cutoff(values, background=floor, background_percentile=CUTOFF_PERCENTILE)
    head = separation_cut(values)
    return set(order[: min(n, head) if head is not None else n])


def _query_vectors(
    query: Query, parts: list[EncodedPart], feedback: tuple[np.ndarray, np.ndarray]
) -> list[tuple[str, np.ndarray, float]]:
    more, less = feedback

    def adjust(vec: np.ndarray) -> np.ndarray:
        if len(more) or len(less):
            return rocchio(vec, more if len(more) else None, less if len(less) else None)
        return vec

    positives = [p for p in parts if not p.part.negative]
    if not positives and not len(more):  # colour parts only
        return []
    if not positives:  # feedback only: the mean of the liked files
        return [("more-like", adjust(np.mean(more, axis=0)), 1.0)]
    if query.fusion == "vector":
        stacked = np.stack([p.vector for p in parts])
        weights = [-p.part.weight if p.part.negative else p.part.weight for p in parts]
        return [("query", adjust(early_fusion(stacked, weights)), 1.0)]
    return [(p.part.describe(), adjust(p.vector), p.part.weight) for p in positives]


def _is_ocr(cand: Candidate | None) -> bool:
    return cand is not None and cand.view == "ocr"


def _fuse_views(
    found: dict[Key, dict[str, Candidate]],
    vector: np.ndarray,
    background: dict[str, np.ndarray],
) -> tuple[dict[Key, float], dict[Key, Candidate], np.ndarray | None]:
    """One score per key from its views, and the background on that scale.

    When the candidates span both view groups (visual: pixels, frames;
    textual: passages, OCR lines), each group's cosines become z-scores against
    the same query's scores on a sample of that group
    (:func:`mmsearch.search.fusion.calibrate_modalities`), and a file scores by its
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
    scores: dict[Key, float] = {}
    best = {}
    for group in groups:
        raw = {k: per[group].similarity for k, per in found.items() if group in per}
        for key, z in calibrate_modalities({group: raw}, {group: reference[group]}).items():
            if key not in scores or z > scores[key]:
                scores[key], best[key] = z, found[key][group]
    bg = [(ref - ref.mean()) / ref.std(ddof=1) for ref in reference.values() if ref.std() > 0]
    return scores, best, np.concatenate(bg) if bg else None


def _fusion_of(query: Query, n_lists: int) -> str:
    """The late fusion that combines ``n_lists`` rankings: the query's, or for ``vector``
    fusion (one ranking, plus colour rankings) ``VECTOR_COLOR_FUSION``."""
    if query.fusion == "vector":
        return VECTOR_COLOR_FUSION if n_lists > 1 else "vector"
    return query.fusion


def _similarities(vector: np.ndarray | None, parts: list[EncodedPart]) -> list[float]:
    if vector is None:
        return []
    return [float(vector @ p.vector) for p in parts]


def _explain_part(
    lst: _List, rank_of: dict[Key, int], key: Key, vec: np.ndarray | None
) -> dict[str, Any]:
    """How one ranking saw a hit: its cosine (or, for a colour, its coverage) and rank."""
    if lst.vector is None:
        return {
            "part": lst.label,
            "coverage": round(lst.raw.get(key, 0.0), 4),
            "rank": rank_of.get(key),
        }
    similarity = round(float(vec @ lst.vector), 6) if vec is not None else None
    return {"part": lst.label, "similarity": similarity, "rank": rank_of.get(key)}


def _hit(cand: Candidate, score: float, sims: list[float]) -> Hit:
    return Hit.from_match(cand, float(score), max(sims, default=cand.similarity))
