"""The project's vocabularies, each named once: a ``Literal`` type and the tuple of its values.

Everything else (settings choices, CLI choices, query validation, storage)
takes its values from here, so a new modality or fusion mode is added in one
place.
"""

from __future__ import annotations

from typing import Literal, get_args

Modality = Literal["image", "text", "video"]
"""What kind of file an asset is."""
MODALITIES: tuple[Modality, ...] = get_args(Modality)

View = Literal["pixels", "chunk", "frame", "ocr"]
"""What kind of segment: an image's pixels, a text passage, a video frame, an OCR line."""
VIEWS: tuple[View, ...] = get_args(View)
VISUAL_VIEWS: tuple[View, ...] = ("pixels", "frame")
"""Views read from pixels; the others (passages, OCR lines) are read from words."""
MAIN_VIEW: dict[Modality, View] = {"image": "pixels", "text": "chunk", "video": "frame"}
"""The view a file of each modality is indexed by first (others, like OCR lines, add to it)."""

OcrPolicy = Literal["auto", "on", "off"]
"""When to read the words in pictures: a cheap detector decides, always, never."""
OCR_POLICIES: tuple[OcrPolicy, ...] = get_args(OcrPolicy)
OCR_STRENGTH: dict[str, int] = {"off": 0, "auto": 1, "on": 2}
"""How thoroughly each policy reads: a pass at a stronger policy re-reads what a weaker one did."""

PartKind = Literal["text", "image", "video", "asset", "color"]
"""What a query part is: a text, an image file, a video clip, an indexed file, a colour.

A ``color`` part has no model vector: it ranks pictures by their palettes and
is fused late with the other parts (see ``docs/color.md``)."""
PART_KINDS: tuple[PartKind, ...] = get_args(PartKind)

Fusion = Literal["vector", "rrf", "weighted"]
"""How a query's parts are combined: summed vectors, or per-part rankings fused late."""
FUSIONS: tuple[Fusion, ...] = get_args(Fusion)
DEFAULT_FUSION: Fusion = "vector"

Normaliser = Literal["minmax", "zscore"]
"""How ``weighted`` fusion puts each ranking's scores on one scale."""
NORMALISERS: tuple[Normaliser, ...] = get_args(Normaliser)

Sort = Literal["score", "time"]
"""Result order: by relevance, or newest first."""
SORTS: tuple[Sort, ...] = get_args(Sort)

Precision = Literal["auto", "bf16", "fp32"]
"""Model precision on the CPU."""
PRECISIONS: tuple[Precision, ...] = get_args(Precision)

DuplicateTier = Literal["exact", "near", "similar"]
"""How alike a duplicate group's files are: the same bytes, the same picture, the same scene."""
DUPLICATE_TIERS: tuple[DuplicateTier, ...] = get_args(DuplicateTier)

AnnKind = Literal["auto", "exact", "ivf", "hnsw"]
"""The vector index: chosen by size (auto), exact, IVF with fast-scan PQ and a re-rank, HNSW."""
ANN_KINDS: tuple[AnnKind, ...] = get_args(AnnKind)
