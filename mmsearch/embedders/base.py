"""The embedder protocol and helpers shared by every embedder.

An embedder maps texts and images into one vector space. Every vector it
returns is float32 and L2-normalised, so a dot product is a cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from mmsearch.errors import ConfigError
from mmsearch.kinds import PRECISIONS


@dataclass(frozen=True)
class EmbedderIdentity:
    """What an index records about the embedder that built it.

    Two identities describe the same vector space when ``name``, ``model``,
    ``weights`` and ``dim`` are equal. ``options`` holds what is needed to
    re-create the embedder later (for example the path of a local weights
    file); it does not take part in the comparison.
    """

    name: str
    model: str
    weights: str
    dim: int
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def space(self) -> str:
        """A short file-name-safe label of the vector space."""
        raw = f"{self.name}-{self.model}-{self.weights}-{self.dim}"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)[:120]

    def describe(self) -> str:
        return f"{self.name} (model {self.model}, weights {self.weights}, dim {self.dim})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "weights": self.weights,
            "dim": self.dim,
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbedderIdentity:
        return cls(
            name=str(data["name"]),
            model=str(data["model"]),
            weights=str(data["weights"]),
            dim=int(data["dim"]),
            options=dict(data.get("options") or {}),
        )


@runtime_checkable
class Embedder(Protocol):
    """Maps texts and images into one L2-normalised vector space.

    ``image_size`` is the side of the model's square input; decoders use it to
    decode large photos at reduced size. ``max_tokens`` is the longest text the
    text encoder reads (special tokens excluded); ``token_spans`` returns the
    character span of each token of a text, so long texts can be chunked by
    tokens.

    ``embed_texts`` is the passage side: what is indexed (text chunks, OCR
    lines). An embedder whose encoder reads queries differently (E5's
    ``query:`` and ``passage:`` prefixes) may also have ``embed_queries``; it
    is optional, so embedders written before it keep working, and
    :func:`embed_queries` falls back to ``embed_texts`` where it is missing.
    """

    identity: EmbedderIdentity
    image_size: int
    max_tokens: int

    @property
    def dim(self) -> int: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...


def embed_queries(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """The query side of ``embedder`` for ``texts``: its ``embed_queries``, else ``embed_texts``."""
    query_side = getattr(embedder, "embed_queries", None)
    if callable(query_side):
        return np.asarray(query_side(texts), dtype=np.float32)
    return embedder.embed_texts(texts)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Return float32 rows of unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU runs bfloat16 matrix work natively (AVX512-BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str | None = None) -> str:
    """Pick ``bf16`` or ``fp32`` for CPU inference.

    ``auto`` (the default) picks bf16 where the CPU
    has native bf16 support, where open_clip in bf16 is several times faster
    than fp32 and its embeddings stay within rounding of fp32's
    (docs/benchmarks.md, section "Ingest"). Elsewhere bf16 is emulated and
    slower, so fp32 is used.
    """
    value = (precision or "auto").lower()
    if value not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {value!r}")
    if value == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return value
