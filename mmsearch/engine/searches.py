"""Searching an index: a query's parts encoded, filtered, retrieved and ranked.

Safe from many threads (``mmsearch serve``): searches share the vector store,
and catching it up with another process's writes takes it alone, once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmsearch.embedders.base import l2_normalise
from mmsearch.engine.core import EngineCore
from mmsearch.errors import QueryError
from mmsearch.search.encode import QueryEncoder
from mmsearch.search.filters import allowed_segment_ids
from mmsearch.search.query import Part, Query, simple_query
from mmsearch.search.rank import EncodedPart, rank
from mmsearch.search.results import Hit, SearchResult


class Searches(EngineCore):
    """The engine's searches; see :class:`~mmsearch.engine.Engine`."""

    def encode_query(
        self,
        text: str | None = None,
        image: str | os.PathLike[str] | None = None,
        video: str | os.PathLike[str] | None = None,
    ) -> np.ndarray:
        """One normalised vector from a text, an image file and/or a short video (summed)."""
        query = simple_query(text, image, video, {})
        return l2_normalise(np.sum(self._encoder().encode(query.parts), axis=0))[0]

    def _encoder(self) -> QueryEncoder:
        return QueryEncoder(lambda: self.embedder, self.settings, self.searcher)

    def search(
        self,
        query: Query | str | None = None,
        *,
        image: str | os.PathLike[str] | None = None,
        video: str | os.PathLike[str] | None = None,
        k: int = 10,
        modalities: Sequence[str] | None = None,
        **options: Any,
    ) -> list[Hit]:
        """The best matches for a :class:`Query`, or a text / image / clip, best first.

        Images and text documents appear once each (their best segment);
        videos once per distinct moment, with ``start``, ``end`` and
        ``best_time``. Keyword ``options`` are :class:`Query` options
        (``fusion``, ``cutoff``, ``min_score``, ``offset``, ...).
        """
        if not isinstance(query, Query):
            query = simple_query(query, image, video, options)
            query.limit = k
            if modalities:
                query.filters.modalities = list(modalities)
        return self.run(query).hits

    def run(self, query: Query) -> SearchResult:
        """Run a full :class:`Query`: hits of the requested page, and the total."""
        query.validate()
        self.refresh()
        with self._vectors_guard.shared():
            encoder = self._encoder()
            vectors = encoder.encode(query.parts)
            parts = [EncodedPart(p, v) for p, v in zip(query.parts, vectors, strict=True)]
            return self._ranked(query, parts, encoder)

    def run_vector(self, vector: Sequence[float] | np.ndarray, query: Query) -> SearchResult:
        """Run ``query`` (filters, paging, ranking) with a raw vector in the index's space as
        its one positive part, in place of ``query.parts``.

        Raises :class:`QueryError` when the vector has the wrong length or is all zeros.
        """
        raw = np.asarray(vector, dtype=np.float32).reshape(-1)
        if raw.shape[0] != self.identity.dim or not np.isfinite(raw).all():
            raise QueryError(
                f"the vector must be {self.identity.dim} finite numbers (this index's dimension)"
            )
        if not np.any(raw):
            raise QueryError("the vector is all zeros")
        query.parts = [Part("text", "<vector>")]
        query.validate()
        self.refresh()
        with self._vectors_guard.shared():
            encoded = [EncodedPart(query.parts[0], l2_normalise(raw[None, :])[0])]
            return self._ranked(query, encoded, self._encoder())

    def _ranked(
        self, query: Query, parts: list[EncodedPart], encoder: QueryEncoder
    ) -> SearchResult:
        more = self.searcher.asset_vectors([encoder.asset_id(a) for a in query.more_like])
        less = self.searcher.asset_vectors([encoder.asset_id(a) for a in query.less_like])
        with self.meta.sessions() as s:
            allowed = allowed_segment_ids(s, query.filters)
        if allowed is not None and len(allowed) == 0:
            return SearchResult([], 0, query.fusion)
        return rank(self.searcher, query, parts, allowed, (more, less))
