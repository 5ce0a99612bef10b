"""A small deterministic embedder for tests and for trying mmsearch without a model.

Texts: the normalised sum of one pseudo-random unit vector per lower-cased word,
each derived from ``hashlib.blake2b`` of the word (never Python's salted
``hash()``), so texts that share words are similar.

Images: a shared-space trick so cross-modal tests mean something. Each image is
described by the colour names nearest to its mean colour (``red``, ``green``,
``blue``, ``yellow``, ``white``, ``black``, ...) and embedded like the text of
those words, plus a smaller component, a fixed random projection of its 8x8 colour layout,
so that a text query "red" finds red images, two different red images are still
told apart, and near-identical images (two frames of a static shot) stay
near-identical.

An optional ``modality_offset`` adds a fixed direction, one that texts never
use, to every image vector (then renormalises): it imitates the "modality gap"
of CLIP-style spaces, where text-image similarities sit on a smaller scale than
text-text ones.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image

from mmsearch.embedders.base import EmbedderIdentity, l2_normalise
from mmsearch.errors import ConfigError

_WORD = re.compile(r"\w+", re.UNICODE)

# Named colours in RGB; an image is described by the two nearest to its mean colour.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 30),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
    "orange": (250, 140, 20),
    "purple": (140, 40, 180),
    "white": (245, 245, 245),
    "black": (10, 10, 10),
    "grey": (128, 128, 128),
    "brown": (120, 70, 30),
}


def _word_vector(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class HashEmbedder:
    """Deterministic bag-of-words / colour embedder; see the module docstring."""

    image_size = 64

    def __init__(self, dim: int = 64, max_tokens: int = 32, modality_offset: float = 0.0) -> None:
        if dim < 8:
            raise ConfigError("hash embedder dim must be at least 8")
        if max_tokens < 4:
            raise ConfigError("hash embedder max_tokens must be at least 4")
        self._dim = int(dim)
        self.max_tokens = int(max_tokens)
        self.modality_offset = float(modality_offset)
        weights = "blake2b-v2" + (f"-gap{self.modality_offset:g}-v2" if modality_offset else "")
        self.identity = EmbedderIdentity(
            name="hash",
            model="bag-of-words",
            weights=weights,
            dim=self._dim,
            options={
                "dim": self._dim,
                "max_tokens": self.max_tokens,
                "modality_offset": self.modality_offset,
            },
        )
        seed = int.from_bytes(hashlib.blake2b(b"pixels", digest_size=8).digest(), "little")
        self._projection = np.random.default_rng(seed).standard_normal((self._dim, 192))
        # The gap lives in the last dimension, which texts never use when an offset is
        # set: text->image cosines shrink by 1/sqrt(1 + offset^2), as in CLIP spaces.
        self._gap = np.zeros(self._dim, dtype=np.float32)
        self._gap[-1] = 1.0
        self.calls = {"texts": 0, "images": 0}

    @property
    def dim(self) -> int:
        return self._dim

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def _text_vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self._dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            vec += _word_vector(word, self._dim)
        if not vec.any():
            vec = _word_vector("\0empty", self._dim)
        if self.modality_offset:
            vec[-1] = 0.0
        return vec / np.linalg.norm(vec)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls["texts"] += len(texts)
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return l2_normalise(np.stack([self._text_vector(t) for t in texts]))

    def _image_vector(self, image: Image.Image) -> np.ndarray:
        rgb = np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.BOX), np.float32)
        mean = rgb.reshape(-1, 3).mean(axis=0)
        names = sorted(COLOURS, key=lambda n: float(np.sum((np.array(COLOURS[n]) - mean) ** 2)))
        colour = self._text_vector(" ".join(names[:1])) * 0.85 + self._text_vector(names[1]) * 0.15
        layout = (rgb - mean).reshape(-1)  # the 8x8 colour layout, mean removed
        detail = self._projection @ layout
        norm = float(np.linalg.norm(detail))
        detail = detail / norm if norm > 1e-6 else detail
        vec = colour / np.linalg.norm(colour) + 0.35 * detail
        vec /= np.linalg.norm(vec)
        if self.modality_offset:
            vec = vec + self.modality_offset * self._gap
        return vec

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.calls["images"] += len(images)
        if not images:
            return np.zeros((0, self._dim), dtype=np.float32)
        return l2_normalise(np.stack([self._image_vector(im) for im in images]))
