"""Turning query parts into vectors: texts, image files, short videos, indexed files."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from sqlalchemy import select

from mmsearch.embedders.base import Embedder, embed_queries, l2_normalise
from mmsearch.errors import QueryError
from mmsearch.media.decode import DecodeError, load_image, register_heif
from mmsearch.search.query import Part
from mmsearch.search.retrieve import Searcher
from mmsearch.settings import Settings
from mmsearch.store.schema import Asset

NO_VECTOR = np.zeros(0, dtype=np.float32)  # what a colour part encodes to


def _expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


class QueryEncoder:
    def __init__(
        self, embedder: Callable[[], Embedder], settings: Settings, searcher: Searcher
    ) -> None:
        self._embedder = embedder  # loaded when a part needs the model: --like needs none
        self.settings = settings
        self.searcher = searcher

    @property
    def embedder(self) -> Embedder:
        return self._embedder()

    def encode(self, parts: list[Part]) -> list[np.ndarray]:
        """One normalised vector per part (texts embedded in one batch).

        Text parts, negatives included, go through the embedder's query side
        (:func:`~mmsearch.embedders.base.embed_queries`); what was indexed went
        through its passage side. A colour part has no model vector: it gets
        an empty one (length 0), and ranks by palettes instead
        (:mod:`mmsearch.search.color`).
        """
        texts = [p.value for p in parts if p.kind == "text"]
        text_vecs = iter(embed_queries(self.embedder, texts)) if texts else iter(())
        out: list[np.ndarray] = []
        for part in parts:
            if part.kind == "color":
                out.append(NO_VECTOR)
            elif part.kind == "text":
                out.append(next(text_vecs))
            elif part.kind == "image":
                out.append(self.image(part.value))
            elif part.kind == "video":
                out.append(self.video(part.value))
            else:
                out.append(self.asset(part.value))
        return [l2_normalise(v)[0] if v.size else v for v in out]

    def image(self, value: str) -> np.ndarray:
        path = _expand(value)
        if not os.path.isfile(path):
            raise QueryError(f"query image {path} does not exist")
        register_heif()
        try:
            decoded = load_image(path, self.embedder.image_size)
        except DecodeError as exc:
            raise QueryError(f"can't read query image {path}: {exc}") from exc
        return self.embedder.embed_images([decoded.image])[0]

    def video(self, value: str) -> np.ndarray:
        """A short clip: the mean of its sampled frames' vectors (at most 32 frames)."""
        from mmsearch.media.video.frames import clip_images
        from mmsearch.media.video.reader import VideoDecodeError

        path = _expand(value)
        if not os.path.isfile(path):
            raise QueryError(f"query video {path} does not exist")
        try:
            images = clip_images(
                path,
                rate=self.settings.frame_rate,
                size=self.embedder.image_size,
                shot_threshold=self.settings.shot_threshold,
            )
        except VideoDecodeError as exc:
            raise QueryError(f"can't read query video {path}: {exc}") from exc
        return l2_normalise(self.embedder.embed_images(images).mean(axis=0))[0]

    def asset(self, value: str) -> np.ndarray:
        """An indexed file, by asset id or path: the mean of its stored vectors."""
        asset_id = self.asset_id(value)
        vectors = self.searcher.asset_vectors([asset_id])
        if not len(vectors):
            raise QueryError(f"indexed file {value} has no vectors")
        return vectors[0]

    def asset_id(self, value: str | int) -> int:
        meta = self.searcher.meta
        with meta.sessions() as s:
            if str(value).isdigit():
                found = s.scalar(select(Asset.id).where(Asset.id == int(value)))
            else:
                asset = meta.asset_at(s, _expand(str(value)))
                found = asset.id if asset is not None else None
        if found is None:
            raise QueryError(f"{value} is not an indexed file (give a path or an asset id)")
        return int(found)
