"""Query and passage sides: a query's text parts use ``embed_queries`` where an embedder has one.

No model: two small embedders stand in, one with a query side that differs
from its passage side, one written before the query side existed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from mmsearch.embedders import Embedder, EmbedderIdentity
from mmsearch.embedders.base import embed_queries
from mmsearch.embedders.hashing import HashEmbedder
from mmsearch.search.encode import QueryEncoder
from mmsearch.search.query import Part
from mmsearch.settings import Settings

DIM = 4


class PassageOnly:
    """A third-party embedder from before ``embed_queries``: texts map to axis 0."""

    identity = EmbedderIdentity("passage-only", "m", "w", DIM)
    image_size = 8
    max_tokens = 16

    @property
    def dim(self) -> int:
        return DIM

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        out[:, 0] = 1.0
        return out

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.zeros((len(images), DIM), dtype=np.float32)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))] if text else []


class TwoSided(PassageOnly):
    """Queries map to axis 1, passages to axis 0, as E5's prefixes would move them."""

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        out[:, 1] = 1.0
        return out


def _encode(embedder: Embedder, parts: list[Part]) -> list[np.ndarray]:
    encoder = QueryEncoder(lambda: embedder, Settings.resolve(), searcher=None)  # type: ignore[arg-type]
    return encoder.encode(parts)


def test_an_embedder_without_a_query_side_is_still_an_embedder() -> None:
    embedder = PassageOnly()
    assert isinstance(embedder, Embedder)
    assert np.array_equal(embed_queries(embedder, ["x"]), embedder.embed_texts(["x"]))
    [vector] = _encode(embedder, [Part("text", "a cat")])
    assert vector[0] == 1.0


def test_text_parts_and_negatives_use_the_query_side() -> None:
    embedder = TwoSided()
    assert isinstance(embedder, Embedder)
    parts = [Part("text", "a cat"), Part("text", "a dog", 1.0, True)]
    for vector in _encode(embedder, parts):
        assert vector[1] == 1.0 and vector[0] == 0.0


def test_the_hash_embedder_has_one_side() -> None:
    embedder = HashEmbedder()
    texts = ["a red bicycle", "一杯咖啡"]
    assert np.array_equal(embed_queries(embedder, texts), embedder.embed_texts(texts))
